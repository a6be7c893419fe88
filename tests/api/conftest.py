"""A real service for the API tests: `campaignopt serve` in a subprocess on a free loopback port,
against the session's PostgreSQL, with httpx as the client; API keys of each role."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

# Shared with the demo; re-exported for the API tests that import them from here.
from pipelines.serve_process import CLI, ServerProcess, free_port, start_server, stop_server

__all__ = ["CLI", "free_port", "start_server", "stop_server"]

REPO = Path(__file__).resolve().parents[2]


def service_env(database_url: str, home: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    # The registry probe reaches the tracking backend: here the session database (reachable).
    env.update(DATABASE_URL=database_url, CAMPAIGNOPT_HOME=str(home), MLFLOW_TRACKING_URI=database_url)
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def launch(engine: sa.Engine, database_url: str, test_home: Path, tmp_path_factory) -> Iterator[Callable]:
    """``launch(**env_overrides)`` starts a server (stopped at the end of the session)."""
    started: list[ServerProcess] = []

    def _launch(workers: int = 1, **overrides: str) -> ServerProcess:
        log = tmp_path_factory.mktemp("api") / "server.log"
        server = start_server(service_env(database_url, test_home, **overrides), log, workers)
        started.append(server)
        return server

    yield _launch
    for server in started:
        stop_server(server)


@pytest.fixture(scope="session")
def server(launch) -> ServerProcess:
    return launch()


@pytest.fixture(scope="session")
def keys(engine: sa.Engine) -> dict[str, str]:
    """A token per role, plus one revoked admin key and one well-formed key that was never created."""
    from pipelines.apikeys import create_key, revoke_key

    tag = uuid.uuid4().hex[:6]
    tokens = {
        role: create_key(engine, f"test-{role}-{tag}", role)[1] for role in ("admin", "service", "analyst")
    }
    tokens["revoked"] = create_key(engine, f"test-revoked-{tag}", "admin")[1]
    revoke_key(engine, f"test-revoked-{tag}")
    tokens["unknown"] = "co_0123456789abcdef_" + "A" * 43
    return tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def campaign_body(name: str = "card-cashback") -> dict:
    """The example campaign as the JSON a client sends (dates as strings)."""
    body = yaml.safe_load((REPO / "campaigns" / "card_cashback.yaml").read_text())
    body = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in body.items()}
    body["name"] = name
    return body
