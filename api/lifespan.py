"""Start-up and shutdown: the database engine, the readiness record, the decision components.

The decision engine plugs in through ``COMPONENTS`` (or ``create_app(components=...)``): e.g.
``Component("realtime", load=lambda state: RealtimeEngine.start(state.engine, state.settings),
close=lambda engine: engine.close())``. Everything here runs once per worker process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import FastAPI

from api.state import Component, ServiceState
from pipelines import migrate
from pipelines.db import database_url
from pipelines.errors import ServiceUnavailable
from pipelines.readiness import registry_uri
from pipelines.realtime.offline import Offline
from pipelines.realtime.snapshot import Snapshot
from pipelines.settings import Settings

log = logging.getLogger("api")


class RealtimeEngine:
    """One worker's decision state: the stats snapshot, the champion model (or why there is none),
    and two daemon threads: one swaps in ``snapshot.refresh(...)`` every
    ``realtime_refresh_seconds``, so matured feedback reaches every worker within that interval
    plus one refresh; one follows the registry's champion alias every
    ``realtime_model_check_seconds`` (pipelines.realtime.champion). Threads, not asyncio tasks:
    both do blocking I/O and must not stall the event loop; a slow model download must not delay
    the statistics either.

    The service starts while the database is down: the snapshot is then loaded by the refresh
    thread as soon as the database answers, and until then every decision is refused with 503.
    """

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._offset = timedelta(seconds=settings.realtime_clock_offset_seconds)
        self._snapshot: Snapshot | None = None
        self.snapshot_problem: str | None = None
        self._load_snapshot()
        from pipelines.realtime.champion import ChampionWatcher  # imports ml/mlflow: only when serving

        self.champion = ChampionWatcher(settings, engine, self.now)
        self.refreshed_at = datetime.now(UTC)
        self.offline = Offline(settings, engine.url)  # circuit breaker, local spool, eligibility cache
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._every,
                args=(settings.realtime_refresh_seconds, self.refresh),
                name="snapshot-refresh",
                daemon=True,
            ),
            threading.Thread(
                target=self._every,
                args=(settings.realtime_model_check_seconds, self.champion.check),
                name="champion-watch",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def now(self) -> datetime:
        """The service's clock: wall-clock UTC (shifted only by the tests' offset setting)."""
        return datetime.now(UTC) + self._offset

    @property
    def snapshot(self) -> Snapshot:
        """The statistics to decide with; ServiceUnavailable (503) until they could be loaded once."""
        if self._snapshot is None:
            raise ServiceUnavailable(self.problems()[0])
        return self._snapshot

    @property
    def loaded_snapshot(self) -> Snapshot | None:
        """The snapshot, or None while none could be loaded (readers fall back to the marts)."""
        return self._snapshot

    def problems(self) -> list[str]:
        """What /readyz reports for the engine (empty when it decides as designed)."""
        found = []
        if self._snapshot is None:
            found.append(f"the decision engine has no statistics yet: {self.snapshot_problem}")
        found += self.offline.problems()  # circuit open since ..., N decisions spooled
        return found + ([self.champion.problem] if self.champion.problem else [])

    def _load_snapshot(self) -> None:
        try:
            self._snapshot = Snapshot.load(self.engine, now=self.now())
            self.snapshot_problem = None
            self.refreshed_at = datetime.now(UTC)
        except sa.exc.SQLAlchemyError as exc:
            self.snapshot_problem = f"the database is unreachable ({type(exc).__name__}); retrying"
            log.error("snapshot not loaded, retrying every refresh: %s", type(exc).__name__)

    def refresh(self) -> None:
        try:
            if self._snapshot is None:
                self._load_snapshot()
            elif not self.offline.circuit.is_open():  # the database is known down: keep what we have
                self._snapshot = self._snapshot.refresh(self.engine, now=self.now())  # one reference swap
                self.refreshed_at = datetime.now(UTC)
        finally:
            self.offline.tick(self.engine, self.now())  # probe, replay the spool, close the circuit

    def _every(self, seconds: float, work) -> None:  # noqa: ANN001
        while not self._stop.wait(seconds):
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - keep serving the last state; retry next tick
                log.warning("%s failed, serving the previous state: %s", work.__name__, type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.offline.close()


# The stats snapshot and the champion model load here (pipelines/realtime), in this order.
COMPONENTS: tuple[Component, ...] = (
    Component(
        "realtime",
        load=lambda state: RealtimeEngine(state.engine, state.settings),
        close=lambda realtime: realtime.close(),
    ),
)


def service_engine(settings: Settings) -> sa.Engine:
    """The service's own pool: created without connecting, so that the service starts (and says
    degraded on /readyz) while the database is down; short connect timeout so requests fail fast."""
    return sa.create_engine(
        database_url(settings),
        pool_pre_ping=True,
        pool_size=settings.realtime_db_pool_size,
        max_overflow=settings.realtime_db_pool_size,
        pool_timeout=5,
        connect_args={"connect_timeout": 2},
    )


def make_lifespan(settings: Settings, components: Sequence[Component]):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = service_engine(settings)
        state = ServiceState(
            settings=settings,
            engine=engine,
            head_revision=migrate.head_revision(engine),  # from the code's migration scripts: no I/O
            registry_uri=registry_uri(settings),
            started_at=datetime.now(UTC),
        )
        for component in components:
            try:
                state.components[component.name] = component.load(state)
            except Exception as exc:  # noqa: BLE001  # a failed load degrades, it does not crash
                state.load_problems[component.name] = f"{component.name} not loaded: {exc}".splitlines()[0]
                log.error("component %s failed to load: %s", component.name, type(exc).__name__)
        app.state.service = state
        try:
            yield
        finally:
            for component in reversed(components):
                if component.close is not None and component.name in state.components:
                    component.close(state.components[component.name])
            engine.dispose()

    return lifespan
