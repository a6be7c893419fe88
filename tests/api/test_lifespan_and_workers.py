"""The lifespan hook the decision engine plugs into, and `campaignopt serve --workers 2`."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from api.main import create_app
from api.state import Component
from tests.api.conftest import auth


def test_components_load_once_close_at_shutdown_and_a_failed_load_degrades(engine, database_url) -> None:
    from pipelines.settings import Settings

    events: list[str] = []

    def load_snapshot(state):  # noqa: ANN001, ANN202
        events.append("load snapshot")
        return {"engine_url": str(state.engine.url), "head": state.head_revision}

    def load_model(state):  # noqa: ANN001, ANN202
        events.append("load model")
        raise RuntimeError("registry said no\nwith a long trace")

    components = [
        Component("snapshot", load_snapshot, close=lambda c: events.append("close snapshot")),
        Component("champion", load_model, close=lambda c: events.append("close model")),
    ]
    app = create_app(Settings(database_url=database_url, mlflow_tracking_uri=database_url), components)
    with TestClient(app) as client:
        state = app.state.service
        assert state.components["snapshot"]["head"] == state.head_revision
        assert "champion" not in state.components
        for _ in range(3):
            client.get("/healthz")
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["reasons"] == ["champion not loaded: registry said no"]
    assert events == ["load snapshot", "load model", "close snapshot"]


def test_two_workers_answer_and_metrics_sum_both(launch, keys, test_home) -> None:
    server = launch(workers=2)
    assert server.log().count("Started server process") >= 2 or "Started parent process" in server.log()
    n = 40
    for _ in range(n):  # a new connection each time: the kernel spreads them over the workers
        assert httpx.get(f"{server.url}/campaigns", headers=auth(keys["analyst"])).status_code == 200
    folder = test_home / "prometheus-multiproc"
    pids = {p.stem.rsplit("_", 1)[-1] for p in folder.glob("*.db")}
    assert len(pids) >= 2, pids  # both workers wrote their samples
    text = httpx.get(f"{server.url}/metrics").text
    total = sum(
        float(ln.rsplit(" ", 1)[1])
        for ln in text.splitlines()
        if ln.startswith("http_requests_total{") and 'handler="/campaigns"' in ln
    )
    assert total == n  # summed over the workers, whichever one answered the scrape


def test_each_worker_pool_holds_the_configured_connections_and_as_many_in_a_burst(database_url) -> None:
    from api.lifespan import service_engine
    from pipelines.settings import Settings

    engine = service_engine(Settings(database_url=database_url, realtime_db_pool_size=3))
    try:
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 3)  # 6 at most per worker
    finally:
        engine.dispose()
