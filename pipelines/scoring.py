"""The champion model as the decide step uses it: `models:/<name>@champion`, loaded once per run.

No champion, or a registry that cannot be reached, is not a failure of the day: the list is
decided by the bandit alone, with a warning in the run log and a note on every decision.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bandits import quality_from_auc
from pipelines.decide import ModelHandle
from pipelines.errors import UserError
from pipelines.settings import Settings

log = logging.getLogger(__name__)


def load_model_for_decide(settings: Settings | None = None) -> tuple[ModelHandle | None, str | None]:
    """The champion as a ModelHandle, or (None, why not) for the bandit-alone fallback."""
    from pipelines.retrain import load_champion_model, model_name

    try:
        champion = load_champion_model(settings)
    except UserError as exc:
        log.warning("model registry unavailable, deciding with the bandit alone: %s", exc)
        return None, f"no model: registry unavailable ({str(exc)[:200]})"
    if champion is None:
        log.warning("no champion model for %s yet, deciding with the bandit alone", model_name(settings))
        return None, "no model: no champion registered yet"
    model = champion.model

    def scorer(
        customers: pd.DataFrame, arms: list[dict[str, str]], allowed: np.ndarray | None = None
    ) -> np.ndarray:
        return model.score_matrix(customers, arms, allowed=allowed)  # NaN where not allowed

    quality = quality_from_auc(champion.quality) if np.isfinite(champion.quality) else 0.0
    log.info("deciding with champion version %s (quality %.2f)", champion.version, quality)
    return ModelHandle(version=str(champion.version), scorer=scorer, quality=quality), None


def champion_summary(settings: Settings | None = None) -> dict | None:
    """The current champion's version and key metrics, for the demo summary."""
    from ml.registry import list_versions
    from pipelines.retrain import registry_target

    try:
        versions = list_versions(registry_target(settings))
    except Exception as exc:  # the summary must not fail the demo
        return {"error": str(exc)[:200]}
    return next((v for v in versions if "champion" in str(v.get("aliases", ""))), None)
