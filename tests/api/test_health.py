"""/healthz, /readyz (ok, or degraded with the reasons), /metrics in the Prometheus format."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from tests.api.conftest import auth, free_port


def test_ready_when_database_schema_and_registry_are_there(server, engine) -> None:
    from pipelines import migrate

    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["reasons"], body["schema_head"]) == ("ok", [], migrate.head_revision(engine))


def test_degraded_when_the_database_is_unreachable(launch, keys) -> None:
    port = free_port()  # nothing listens there
    down = f"postgresql://postgres@127.0.0.1:{port}/campaignopt"
    server = launch(DATABASE_URL=down, MLFLOW_TRACKING_URI=down.replace("/campaignopt", "/mlflow"))
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the process is up ...
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 503  # ... but cannot work, and says why
    body = r.json()
    assert body["status"] == "degraded"
    assert [reason.split(": ")[0] for reason in body["reasons"]] == [
        f"cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:{port}/campaignopt",
        f"model registry unreachable at postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow",
        "the decision engine has no statistics yet",  # the snapshot needs the database once
    ]
    assert "Connection refused" in body["reasons"][0]
    # A request that needs the database is a 503 with a message, not a 500.
    r = httpx.get(f"{server.url}/campaigns", headers=auth(keys["analyst"]))
    assert r.status_code == 503 and "database is unreachable" in r.json()["detail"]
    r = httpx.post(f"{server.url}/optimize", json={"campaign_id": 1, "customer_id": "c1"},
                   headers=auth(keys["service"]))
    assert r.status_code == 503, r.text


def test_degraded_when_the_schema_is_behind_or_the_registry_server_is_down(
    launch, engine, database_url
) -> None:
    behind_db = database_url.rsplit("/", 1)[0] + "/campaignopt_api_behind"
    admin = sa.create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("drop database if exists campaignopt_api_behind"))
        conn.execute(sa.text("create database campaignopt_api_behind"))
    try:
        from pipelines import migrate

        behind = sa.create_engine(behind_db)
        migrate.upgrade(behind, "0003")
        behind.dispose()
        registry = f"http://127.0.0.1:{free_port()}"
        server = launch(DATABASE_URL=behind_db, MLFLOW_TRACKING_URI=registry)
        r = httpx.get(f"{server.url}/readyz")
        assert r.status_code == 503
        head = migrate.head_revision(engine)
        assert r.json()["reasons"] == [
            f"database schema at revision 0003, the code expects {head}: run `campaignopt db upgrade`",
            f"model registry unreachable at {registry}: ConnectError",
        ]
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("drop database if exists campaignopt_api_behind with (force)"))
        admin.dispose()


def test_metrics_count_requests_by_route(server, keys) -> None:
    for _ in range(3):
        httpx.get(f"{server.url}/campaigns", headers=auth(keys["analyst"]))
    text = httpx.get(f"{server.url}/metrics").text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("http_requests_total{")
        and 'handler="/campaigns"' in ln
        and 'method="GET"' in ln
        and 'status="2xx"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert "http_request_duration_seconds_bucket" in text
