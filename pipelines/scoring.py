"""The champion model as the decide step uses it (filled in by the model issue)."""

from __future__ import annotations

import logging

from pipelines.decide import ModelHandle

log = logging.getLogger(__name__)


def load_model_for_decide() -> tuple[ModelHandle | None, str | None]:
    return None, "no champion model: bandit alone"


def champion_summary() -> dict | None:
    return None
