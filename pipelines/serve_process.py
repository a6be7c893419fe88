"""`campaignopt serve` as a child process on a free loopback port: started, waited for, stopped.

The demo and the API tests both run the real service this way. Starting waits until
``/healthz`` answers (bounded); stopping sends SIGTERM (uvicorn's graceful shutdown, which
runs the lifespan's close) and kills the process when it has not exited in time.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from pipelines.errors import ServiceUnavailable

CLI = str(Path(sys.executable).with_name("campaignopt"))
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# Start-up imports FastAPI, MLflow and loads the champion per worker: tens of seconds on a busy
# machine (two workers once took over 60 s here), well under this bound.
START_TIMEOUT = 120.0


def start_server(
    env: dict[str, str],
    log_path: Path,
    workers: int = 1,
    *,
    timeout: float = START_TIMEOUT,
    new_session: bool = False,
) -> ServerProcess:
    """Start the service with ``env`` (its whole environment), output to ``log_path``, and return
    once ``/healthz`` answers 200; ServiceUnavailable (with the log) when it exits or times out.
    ``new_session``: the server leads its own process group (a test can kill -9 all of it)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=new_session,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"the service exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise ServiceUnavailable(f"the service did not answer /healthz within {timeout:.0f} s:\n{server.log()}")


def stop_server(server: ServerProcess, timeout: float = 20.0) -> None:
    """Graceful stop, then kill after ``timeout`` seconds; harmless on a process already gone."""
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
