"""The champion model as the decide step uses it: `models:/<name>@champion`, loaded once per run.

No champion, a registry that cannot be reached, or a champion whose artifact cannot be
loaded (deleted, truncated, corrupt) is not a failure of the day: the list is decided by the
bandit alone, with a warning in the run log and a note on every decision. The last two are
not normal, so they also raise a warning in ``ops.alerts`` for the day (kind
``model_unavailable``) when the caller passes the day and the engine.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bandits import quality_from_auc
from pipelines.decide import ModelHandle
from pipelines.errors import UserError
from pipelines.settings import Settings

log = logging.getLogger(__name__)


MODEL_ALERT_KIND = "model_unavailable"


def load_model_for_decide(
    settings: Settings | None = None, *, day: date | None = None, engine: sa.Engine | None = None
) -> tuple[ModelHandle | None, str | None]:
    """The champion as a ModelHandle, or (None, why not) for the bandit-alone fallback.

    Parameters
    ----------
    settings : Settings, optional
    day, engine : optional
        The decide step's logical date and database: when both are given, an unreachable
        registry or an unloadable champion also writes a warning to ``ops.alerts`` for
        ``day`` (one per day, kind ``model_unavailable``, replaced on a re-run).
    """
    from ml.registry import ModelUnavailable
    from pipelines.retrain import load_champion_model, model_name

    try:
        champion = load_champion_model(settings)
    except ModelUnavailable as exc:
        log.warning("champion model cannot be loaded, deciding with the bandit alone: %s", exc)
        note = f"no model: champion unavailable ({str(exc)[:200]})"
        model_alert(engine, day, note, {"cause": "artifact", "error": str(exc)[:1000]})
        return None, note
    except UserError as exc:
        log.warning("model registry unavailable, deciding with the bandit alone: %s", exc)
        note = f"no model: registry unavailable ({str(exc)[:200]})"
        model_alert(engine, day, note, {"cause": "registry", "error": str(exc)[:1000]})
        return None, note
    if champion is None:
        log.warning("no champion model for %s yet, deciding with the bandit alone", model_name(settings))
        return None, "no model: no champion registered yet"
    handle = model_handle(champion)
    log.info("deciding with champion version %s (quality %.2f)", handle.version, handle.quality)
    return handle, None


def model_handle(champion) -> ModelHandle:  # noqa: ANN001 - an ml.registry.Champion
    """A loaded champion as the decide step scores with it (quality from its validation AUC)."""
    model = champion.model

    def scorer(
        customers: pd.DataFrame, arms: list[dict[str, str]], allowed: np.ndarray | None = None
    ) -> np.ndarray:
        return model.score_matrix(customers, arms, allowed=allowed)  # NaN where not allowed

    quality = quality_from_auc(champion.quality) if np.isfinite(champion.quality) else 0.0
    return ModelHandle(version=str(champion.version), scorer=scorer, quality=quality, model=model)


def model_alert(
    engine: sa.Engine | None, day: date | None, note: str, details: dict, message: str | None = None
) -> None:
    """Upsert the day's model_unavailable warning (every decide task of the day hits the same row)."""
    if engine is None or day is None:
        return
    message = message or f"{day}: lists decided by the bandit alone, the champion model was not used: {note}"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
                   values (:d, null, :k, 'warning', :m, cast(:details as jsonb))
                   on conflict (alert_date, (coalesce(campaign_id, 0)), kind)
                   do update set message = excluded.message, details = excluded.details,
                                 severity = excluded.severity"""
            ),
            {"d": day, "k": MODEL_ALERT_KIND, "m": message, "details": json.dumps(details)},
        )


def champion_summary(settings: Settings | None = None) -> dict | None:
    """The current champion's version and key metrics, for the demo summary.

    Without a champion: ``{"error": why}`` naming the newest version and the gate's reason
    when the gate refused it, None when nothing was registered.
    """
    from ml.registry import list_versions
    from pipelines.retrain import registry_target

    try:
        versions = list_versions(registry_target(settings))
    except Exception as exc:  # the summary must not fail the demo
        return {"error": str(exc)[:200]}
    champion = next((v for v in versions if "champion" in v.get("aliases", [])), None)
    if champion is None and versions:
        newest = versions[0]
        if newest["gate"]["passed"] is False:
            reason = newest["gate"]["reason"][:300]
            return {"error": f"version {newest['version']} refused by the gate: {reason}"}
    return champion
