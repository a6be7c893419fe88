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
from pipelines.decide import ModelHandle
from pipelines.readiness import registry_uri
from pipelines.realtime.offline import Offline
from pipelines.realtime.snapshot import Snapshot
from pipelines.settings import Settings

log = logging.getLogger("api")


class RealtimeEngine:
    """One worker's decision state: the stats snapshot, the champion model (or why there is none),
    and a daemon thread that swaps in ``snapshot.refresh(...)`` every ``realtime_refresh_seconds``,
    so matured feedback reaches every worker within that interval plus one refresh. A thread, not
    an asyncio task: the refresh is blocking database work and must not stall the event loop."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._offset = timedelta(seconds=settings.realtime_clock_offset_seconds)
        self.snapshot = Snapshot.load(engine, now=self.now())
        from pipelines.scoring import load_model_for_decide  # imports ml/mlflow: only when serving

        self.model: ModelHandle | None
        self.model, self.model_note = load_model_for_decide(settings)
        self.refreshed_at = datetime.now(UTC)
        self.offline = Offline(settings, engine.url)  # circuit breaker, local spool, eligibility cache
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, name="snapshot-refresh", daemon=True)
        self._thread.start()

    def now(self) -> datetime:
        """The service's clock: wall-clock UTC (shifted only by the tests' offset setting)."""
        return datetime.now(UTC) + self._offset

    def refresh(self) -> None:
        self.snapshot = self.snapshot.refresh(self.engine, now=self.now())  # one reference swap
        self.refreshed_at = datetime.now(UTC)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.settings.realtime_refresh_seconds):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving the last snapshot; retry next tick
                log.warning("snapshot refresh failed, serving the previous one: %s", type(exc).__name__)
            self.offline.tick(self.engine, self.now())  # probe, replay the spool, close the circuit

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
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
        pool_size=10,
        max_overflow=10,
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
