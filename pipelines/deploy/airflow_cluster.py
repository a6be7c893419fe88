"""A real Airflow 3 deployment on this machine: separate processes, CeleryExecutor, PostgreSQL metadata.

`AirflowCluster` starts the API server, scheduler, DAG processor, triggerer and N Celery workers
(default two, ``w1`` and ``w2``) under an Airflow home of its own, each process in its own
process group with its output in ``<home>/logs/<component>.log`` (task logs under
``<home>/logs/dag_id=...``). It waits until Airflow's health endpoint and a Celery ping say
every component is up, and on exit stops everything it started (SIGTERM to each group, SIGKILL
after a timeout); a watchdog process does the same if the starting process dies first
(watchdog.py). The tasks run campaignopt's DAGs (``dags/``) against the same campaignopt settings
`campaignopt daily` uses (``DATABASE_URL``, ``CAMPAIGNOPT_HOME``, MLflow).

Choices worth knowing (Airflow 3.3):

- Workers reach the API server's execution API (``[core] execution_api_server_url``); every
  component shares one JWT secret (``[api_auth] jwt_secret``), else tokens fail between them.
- The broker is Redis (a db number of its own); the result backend is the metadata database.
  Each cluster has its own Celery queue, so two clusters on one Redis never take each other's tasks.
- Task instances record ``[core] hostname_callable``: here `worker_identity.hostname`, so each
  worker's tasks say which worker ran them. Task logs are files in the shared home, so the
  workers do not serve logs (``--skip-serve-logs``: two log servers on one host would share a port).
- The SimpleAuthManager with every user an admin: fine on loopback, never exposed. A token is
  ``GET /auth/token``.

Run by hand: ``make airflow-up`` (README, "Running on a real Airflow").
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from pipelines.deploy.watchdog import ProcessGuard
from pipelines.orchestration import airflow_env
from pipelines.serve_process import free_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CELERY = str(Path(sys.executable).with_name("celery"))
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BROKER_URL = "redis://127.0.0.1:6379/5"
HEALTHY_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class ClusterFailed(RuntimeError):
    """A component did not start (or died); the message carries the tail of its log."""


@dataclass
class ClusterConfig:
    """What differs from one deployment to another; everything else is fixed in `environment`."""

    home: Path
    # SQLAlchemy URL of Airflow's own database; psycopg 3, which is also the async driver Airflow 3 needs.
    metadata_url: str
    broker_url: str = BROKER_URL
    api_port: int = field(default_factory=free_port)
    workers: tuple[str, ...] = ("w1", "w2")
    worker_concurrency: int = 1  # one slot each: two tasks at once must take both workers
    # False: only triggered runs (a test); True: the DAGs' schedules too (a deployment).
    use_job_schedule: bool = True
    queue: str = field(default_factory=lambda: f"campaignopt-{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def environment(config: ClusterConfig) -> dict[str, str]:
    """The environment every component gets: campaignopt's settings plus the Airflow deployment's."""
    env = airflow_env(config.home)  # our settings, the DAG folder, DATABASE_URL resolved
    # A deployment runs as scheduled runs do: the DAGs' retries and the inbox's _READY marker.
    env.pop("CAMPAIGNOPT_HAND_RUN", None)
    env.pop("CAMPAIGNOPT_TASK_RETRIES", None)
    secret = secrets.token_urlsafe(32)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": config.metadata_url,
            # Airflow derives its async URL as postgresql+asyncpg (not installed): psycopg 3 does both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": config.metadata_url,
            # Small pools: the whole deployment shares one PostgreSQL server (max_connections 100
            # here) with whatever else runs on it; Airflow's defaults (5 + 10 overflow per process,
            # per engine) exhausted it under the test suite.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "3",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__CELERY__BROKER_URL": config.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + config.metadata_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(config.worker_concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": config.queue,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": config.api_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pipelines.deploy.worker_identity.hostname",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(config.use_job_schedule),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(config.home / "logs"),
            # The triggerer serves its logs on a port: a free one, not the shared default 8794.
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
    )
    env.update(config.extra_env)
    return env


@dataclass
class Component:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A session (and process group) of its own: stop() signals the component and its children.
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])


class AirflowCluster:
    """Start with ``with AirflowCluster(config) as cluster:``; every process is stopped on exit."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.env = environment(config)
        self.guard: ProcessGuard | None = None
        logs = config.home / "logs"
        api = ["api-server", "--host", "127.0.0.1", "--port", str(config.api_port), "--workers", "1"]
        self.components = [
            Component("api-server", [AIRFLOW, *api], self.env, logs / "api-server.log"),
            Component("scheduler", [AIRFLOW, "scheduler"], self.env, logs / "scheduler.log"),
            Component("dag-processor", [AIRFLOW, "dag-processor"], self.env, logs / "dag-processor.log"),
            Component("triggerer", [AIRFLOW, "triggerer"], self.env, logs / "triggerer.log"),
        ]
        for name in config.workers:
            worker = [
                "celery", "worker", "--celery-hostname", self.worker_hostname(name),
                "--queues", config.queue, "--concurrency", str(config.worker_concurrency),
                "--skip-serve-logs", "--without-mingle", "--without-gossip",
            ]  # fmt: skip
            env = {**self.env, "CAMPAIGNOPT_WORKER_NAME": name}
            self.components.append(
                Component(f"worker-{name}", [AIRFLOW, *worker], env, logs / f"worker-{name}.log")
            )

    def worker_hostname(self, name: str) -> str:
        return f"{name}-{self.config.queue}@{socket.gethostname()}"

    # -- life cycle -------------------------------------------------------------------------
    def migrate(self) -> None:
        """``airflow db migrate`` on the metadata database (harmless when already at head)."""
        log = self.config.home / "logs" / "db-migrate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            code = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=600
            ).returncode
        if code != 0:
            raise ClusterFailed(
                f"airflow db migrate failed (exit {code}):\n{Component('', [], {}, log).tail()}"
            )

    def start(self, timeout: float = 180) -> None:
        # Stops the components even if this process is killed before `stop` runs (watchdog.py).
        self.guard = ProcessGuard()
        for component in self.components:
            component.start()
            self.guard.guard(component.process.pid)
        self.wait_healthy(timeout)

    def __enter__(self) -> AirflowCluster:
        try:
            self.migrate()
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM every process group it started, SIGKILL whatever is left after ``timeout``."""
        running = [c for c in self.components if c.process is not None]
        for component in running:
            _signal_group(component.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in running:
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for component in running:  # children of an exited leader may still hold the group
            _signal_group(component.process, signal.SIGKILL)
            component.process.wait()
        if self.guard is not None:
            self.guard.close()

    # -- health -----------------------------------------------------------------------------
    def check_alive(self) -> None:
        for component in self.components:
            if component.process is not None and component.process.poll() is not None:
                raise ClusterFailed(
                    f"{component.name} exited with {component.process.returncode}; its log "
                    f"({component.log_path}) ends:\n{component.tail()}"
                )

    def health(self) -> dict:
        """Airflow's own health report (``/api/v2/monitor/health``), {} while the server is not up."""
        try:
            response = httpx.get(f"{self.config.api_url}/api/v2/monitor/health", timeout=5)
            return response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}

    def workers_answering(self) -> set[str]:
        """The Celery hostnames of this cluster's workers that answer a ping on the broker."""
        names = {self.worker_hostname(n) for n in self.config.workers}
        ping = subprocess.run(
            [CELERY, "-b", self.config.broker_url, "inspect", "ping", "--timeout", "2", "--json"],
            capture_output=True, text=True, timeout=30, env=self.env,
        )  # fmt: skip
        import json

        for line in ping.stdout.splitlines():
            if line.startswith("{"):
                try:
                    return names & set(json.loads(line))
                except ValueError:
                    break
        return set()

    def wait_healthy(self, timeout: float = 180) -> None:
        """Until every component says healthy and every worker answers, or raise with what is not."""
        deadline = time.monotonic() + timeout
        unhealthy: list[str] = ["api-server"]
        missing = set(self.config.workers)
        while time.monotonic() < deadline:
            self.check_alive()
            report = self.health()
            unhealthy = [c for c in HEALTHY_COMPONENTS if (report.get(c) or {}).get("status") != "healthy"]
            if not report:
                unhealthy = ["api-server"]
            if not unhealthy:
                up = self.workers_answering()
                missing = {n for n in self.config.workers if self.worker_hostname(n) not in up}
                if not missing:
                    return
            time.sleep(1)
        down = unhealthy or [f"worker-{n}" for n in sorted(missing)]
        tails = "\n".join(f"--- {c.name}:\n{c.tail(15)}" for c in self.components if c.name in down)
        raise ClusterFailed(f"not healthy after {timeout:.0f} s: {', '.join(down)}\n{tails}")

    def log_tails(self, lines: int = 20) -> str:
        return "\n".join(f"--- {c.name} ({c.log_path}):\n{c.tail(lines)}" for c in self.components)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)  # the leader's pid is the group id (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def scratch_database(server: str = POSTGRES_SERVER, prefix: str = "airflow_deploy") -> Iterator[str]:
    """A new, empty PostgreSQL database (Airflow's metadata, say), dropped with its sessions at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.deploy.airflow_cluster up``: run the deployment until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="airflow_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_DEPLOY_PORT", "8090")))
    parser.add_argument("--broker", default=os.environ.get("AIRFLOW_DEPLOY_BROKER", BROKER_URL))
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AIRFLOW_DEPLOY_POSTGRES", POSTGRES_SERVER),
        help="PostgreSQL server (no database) for Airflow's metadata database",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--home", type=Path, help="Airflow home (default: a new temporary folder)")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="airflow_deploy_"))
    # Ctrl-C and SIGTERM both interrupt, at start-up too (the `with` blocks then stop what started);
    # set explicitly, as a shell's background job inherits SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    with scratch_database(args.postgres) as url:
        config = ClusterConfig(
            home=home, metadata_url=url, broker_url=args.broker, api_port=args.port,
            workers=tuple(f"w{i + 1}" for i in range(args.workers)),
        )  # fmt: skip
        print(f"starting Airflow in {home} (metadata {url.rsplit('/', 1)[1]}, broker {args.broker}) ...")
        with AirflowCluster(config) as cluster:
            print(
                f"Airflow is up: {config.api_url} (UI and /api/v2; token: curl {config.api_url}/auth/token)"
            )
            workers = ", ".join(cluster.worker_hostname(n) for n in config.workers)
            print(f"workers: {workers}; logs in {home}/logs")
            print("Ctrl-C stops every process and drops the metadata database.")
            try:
                while True:
                    cluster.check_alive()
                    time.sleep(2)
            except KeyboardInterrupt:
                for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
                    signal.signal(sig, signal.SIG_IGN)
            print("stopping ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
