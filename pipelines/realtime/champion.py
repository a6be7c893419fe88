"""The serving model follows the registry's ``champion`` alias without a restart.

Every ``realtime_model_check_seconds`` a worker asks the registry which version holds the alias
(one small registry read). A new version is loaded beside the current one and swapped in by one
reference assignment, so requests never see a half-loaded model. A version that fails to load
keeps the previous model serving, raises a ``model_unavailable`` warning in ``ops.alerts`` for
the day, and is retried only when the alias moves again or after ``RETRY_FAILED_SECONDS`` (a
corrupt artifact does not get better by downloading it every few seconds). A registry that
cannot be reached changes nothing: the current model keeps serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from pipelines.decide import ModelHandle
from pipelines.scoring import load_model_for_decide, model_alert, model_handle
from pipelines.settings import Settings

log = logging.getLogger(__name__)

RETRY_FAILED_SECONDS = 300.0


class ChampionWatcher:
    """The model a worker decides with (``model``, or None and ``note`` saying why) and the last
    problem loading a newer champion (``problem``, for /readyz)."""

    def __init__(self, settings: Settings, engine: sa.Engine, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self.engine = engine
        self.now = now
        # (model or None, why none): one tuple, swapped whole, so a request never pairs the new
        # model with the old note.
        self.serving: tuple[ModelHandle | None, str | None] = load_model_for_decide(settings)
        self.problem: str | None = None
        self._failed: tuple[str, float] | None = None  # (version, monotonic time of the failure)

    @property
    def model(self) -> ModelHandle | None:
        return self.serving[0]

    @property
    def note(self) -> str | None:
        return self.serving[1]

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def check(self) -> bool:
        """Follow the alias once; True when the serving model changed."""
        from ml.registry import ModelUnavailable, champion_version, load_champion
        from pipelines.retrain import registry_target

        try:
            target = registry_target(self.settings)
            wanted = champion_version(target)
        except Exception as exc:  # noqa: BLE001 - registry down: keep serving what is loaded
            log.info("registry unreachable, keeping model %s: %s", self.version, type(exc).__name__)
            return False
        if wanted == self.version:
            return False
        if wanted is None:  # the alias was removed: nothing to serve but the bandit
            self.serving, self.problem = (None, "no model: no champion registered yet"), None
            log.warning("the champion alias was removed: deciding with the bandit alone")
            return True
        if self._failed_recently(wanted):
            return False
        try:
            champion = load_champion(target.model_name, tracking_uri=target.tracking_uri)
        except ModelUnavailable as exc:
            self._keep_previous(wanted, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - registry went down mid-load: try again next check
            log.info("champion %s not loaded this time: %s", wanted, type(exc).__name__)
            return False
        if champion is None:  # pragma: no cover - the alias moved away between the two reads
            return False
        self.serving, self.problem, self._failed = (model_handle(champion), None), None, None
        log.info("now deciding with champion version %s", champion.version)
        return True

    def _failed_recently(self, version: str) -> bool:
        if self._failed is None or self._failed[0] != version:
            return False
        return time.monotonic() - self._failed[1] < RETRY_FAILED_SECONDS

    def _keep_previous(self, version: str, exc: Exception) -> None:
        serving = f"version {self.version}" if self.model is not None else "the bandit alone"
        self.problem = f"champion version {version} failed to load, still serving {serving}: {exc}"[:300]
        self._failed = (version, time.monotonic())
        log.error("champion version %s failed to load, keeping %s", version, serving)
        message = f"the service could not load champion version {version} and keeps serving {serving}: {exc}"
        try:
            model_alert(
                self.engine,
                self.now().date(),
                self.problem,
                {"cause": "artifact", "version": version, "error": str(exc)[:1000], "where": "realtime"},
                message=message[:1000],
            )
        except sa.exc.SQLAlchemyError:
            log.warning("the model alert could not be written: the database is unreachable")
