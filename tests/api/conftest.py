"""A real service for the API tests: `campaignopt serve` in a subprocess on a free loopback port,
against the session's PostgreSQL, with httpx as the client; API keys of each role."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

CLI = str(Path(sys.executable).with_name("campaignopt"))
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    env: dict[str, str], log_path: Path, workers: int = 1, new_session: bool = False, timeout: float = 60
) -> Server:
    """``new_session``: the server leads its own process group (a test can kill -9 all of it)."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=new_session,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"server did not answer /healthz within {timeout:.0f} s:\n{server.log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def service_env(database_url: str, home: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    # The registry probe reaches the tracking backend: here the session database (reachable).
    env.update(DATABASE_URL=database_url, CAMPAIGNOPT_HOME=str(home), MLFLOW_TRACKING_URI=database_url)
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def launch(engine: sa.Engine, database_url: str, test_home: Path, tmp_path_factory) -> Iterator[Callable]:
    """``launch(**env_overrides)`` starts a server (stopped at the end of the session)."""
    started: list[Server] = []

    def _launch(workers: int = 1, **overrides: str) -> Server:
        log = tmp_path_factory.mktemp("api") / "server.log"
        server = start_server(service_env(database_url, test_home, **overrides), log, workers)
        started.append(server)
        return server

    yield _launch
    for server in started:
        stop_server(server)


@pytest.fixture(scope="session")
def server(launch) -> Server:
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
