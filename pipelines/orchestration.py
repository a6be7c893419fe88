"""Run a DAG of `dags/` for one logical date through Airflow itself, without a scheduler.

This is `airflow dags test` in a subprocess, so a person can run or re-run a day with one
command. `pipelines` never imports Airflow: it only starts it and asks it questions.

- Each run gets its own Airflow home (``<home>/airflow/runs/<dag>/<date>/``) holding a copy
  of a once-migrated SQLite metadata template: runs of different days at once never share a
  SQLite file (a shared one fails the other run with a ``ServerResponseError``).
- A run holds a PostgreSQL session advisory lock keyed by (DAG, date) for its whole length:
  a second run of the same day at once exits 2 with "a run of ... is in progress".
- The outcome is asked of Airflow (`airflow dags list-runs`, `airflow tasks states-for-dag-run`)
  for the run id `airflow dags test` reports, never guessed from the metadata tables.
- A failed run whose error is an unreachable service (or whose database is unreachable
  afterwards) exits 3 and names the step.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable, UserError
from pipelines.settings import get_settings

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
RUN_LOCK_CLASS = 7240301  # advisory lock class id of "a run of (DAG, D)"; objid = D's ordinal


class DagRunFailed(UserError):
    """A DAG run ended in failure; the message names the failed tasks."""

    exit_code = 1


class DagRunServiceDown(DagRunFailed):
    """A DAG run failed because a service (the database) was unreachable; exit 3."""

    exit_code = 3


class RunInProgress(UserError):
    """Another run of the same DAG and date holds its lock; exit 2."""


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    logical_date: date
    state: str
    failed_tasks: list[str]
    log_path: Path
    run_id: str = ""


def run_lock_key(dag_id: str, day: date) -> tuple[int, int]:
    """(classid, objid) of the session lock a run of ``dag_id`` for ``day`` holds."""
    return RUN_LOCK_CLASS ^ (zlib.crc32(dag_id.encode()) & 0xFFFF), day.toordinal()


@contextmanager
def hold_run_lock(dag_id: str, day: date) -> Iterator[None]:
    """Hold the (DAG, day) lock on its own connection for the whole run, or raise RunInProgress.

    A session lock dies with its connection, so a killed run never leaves the day locked.
    """
    from pipelines.db import get_engine

    classid, objid = run_lock_key(dag_id, day)
    with get_engine().connect() as conn:
        got = conn.execute(sa.text("select pg_try_advisory_lock(:a, :b)"), {"a": classid, "b": objid})
        if not got.scalar():
            raise RunInProgress(f"a run of {dag_id} for {day} is in progress; wait for it to end")
        conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(sa.text("select pg_advisory_unlock(:a, :b)"), {"a": classid, "b": objid})
                conn.commit()
            except sa.exc.DBAPIError:  # the server went away: the lock went with the session
                conn.invalidate()


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """Environment for an Airflow subprocess: our settings plus the given Airflow home."""
    settings = get_settings()
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "CAMPAIGNOPT_HOME": str(settings.home),
            # A run by hand reports a failure at once and does not wait hours for an inbox.
            "CAMPAIGNOPT_TASK_RETRIES": "0",
            "CAMPAIGNOPT_HAND_RUN": "1",
        }
    )
    if settings.database_url is None:
        # Resolve the embedded server once here so every task uses the same database.
        from pipelines.db import database_url

        env["DATABASE_URL"] = database_url(settings)
    return env


def _airflow(*args: str, env: dict[str, str], log) -> int:
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    return subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def _airflow_json(*args: str, env: dict[str, str]) -> list[dict]:
    """Run an Airflow CLI command with ``-o json`` and parse its output (warnings may precede it)."""
    cmd = [str(Path(sys.executable).with_name("airflow")), *args, "-o", "json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():  # the JSON is one line; log lines start with a timestamp
        if line.startswith(("[{", "[]")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return []


def _metadata_template(root: Path) -> Path:
    """A migrated, empty SQLite metadata database, made once per Airflow version (under a file lock)."""
    from importlib.metadata import version

    template = root / f"metadata-template-{version('apache-airflow-core')}.db"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            work = root / "template-build"
            shutil.rmtree(work, ignore_errors=True)
            with (root / "template-build.log").open("w") as log:
                if _airflow("db", "migrate", env=airflow_env(work), log=log) != 0:
                    raise DagRunFailed(f"could not prepare Airflow's metadata database; see {log.name}")
            os.replace(work / "airflow.db", template)
            shutil.rmtree(work, ignore_errors=True)
    return template


def fresh_airflow_home(home: Path) -> dict[str, str]:
    """Empty ``home`` and give it its own copy of the migrated metadata; returns its environment."""
    template = _metadata_template(get_settings().home / "airflow")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copyfile(template, home / "airflow.db")
    return airflow_env(home)


def run_dag(
    dag_id: str, logical_date: date, conf: dict | None = None, follow: Callable[[Path], None] | None = None
) -> DagRunResult:
    """Run ``dag_id`` for ``logical_date`` (``conf`` overrides the DAG's params); ``follow`` is
    called with the run's log file once it exists, before Airflow starts (a progress bar tails it).

    Raises RunInProgress when another run of the same day holds its lock, DagRunServiceDown
    when the run failed on an unreachable service, DagRunFailed naming the failed tasks otherwise.
    """
    with hold_run_lock(dag_id, logical_date):
        home = get_settings().home / "airflow" / "runs" / dag_id / logical_date.isoformat()
        env = fresh_airflow_home(home)  # the last run of a day is kept, with its logs
        log_path = home / "run.log"
        with log_path.open("w") as log:
            if follow is not None:
                follow(log_path)
            extra = ["--conf", json.dumps(conf)] if conf else []
            code = _airflow("dags", "test", dag_id, logical_date.isoformat(), *extra, env=env, log=log)
        text = log_path.read_text(errors="replace")
        run_id = _reported_run_id(text)
        state, failed = _ask_outcome(dag_id, run_id, text, env) if run_id else ("missing", [])
    if code == 0 and state == "success" and not failed:
        return DagRunResult(dag_id, logical_date, state, failed, log_path, run_id or "")
    reason = _first_error(text)
    where = ", ".join(failed) or ("no task: the run did not start" if not run_id else "no task")
    message = f"{dag_id} for {logical_date} failed in {where}: {reason} (log: {log_path})"
    if _service_down(text):
        raise DagRunServiceDown(message)
    raise DagRunFailed(message)


def _reported_run_id(text: str) -> str | None:
    """The run id `airflow dags test` printed when it created the run."""
    match = re.search(r"Created dag run\..*?<DagRun \S+ @ .*?: (\w+__\S+?), state:", text)
    return match.group(1) if match else None


def _ask_outcome(dag_id: str, run_id: str, text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """The run's state and its failed tasks (``task[map_index]``), as Airflow reports them.

    The state is the one `airflow dags test` logs when the run finishes ("DagRun Finished: ...
    run_id=..., state=..."), else asked with `airflow dags list-runs`; the failed tasks of a
    run that did not succeed are asked with `airflow tasks states-for-dag-run`. (Each Airflow
    command costs ~5-10 s of start-up, so a successful run asks nothing more.)
    """
    finished = re.search(rf"DagRun Finished: .*?run_id={re.escape(run_id)}, .*?state=(\w+)", text)
    if finished:
        state = finished.group(1)
    else:
        runs = _airflow_json("dags", "list-runs", dag_id, env=env)
        state = next((r.get("state") for r in runs if r.get("run_id") == run_id), None) or "missing"
    if state == "success":
        return state, []
    tasks = _airflow_json("tasks", "states-for-dag-run", dag_id, run_id, env=env)
    failed = [
        f"{t['task_id']}[{t['map_index']}]" if str(t.get("map_index", "")) not in ("", "-1") else t["task_id"]
        for t in sorted(tasks, key=lambda t: (str(t.get("start_date") or "~"), t["task_id"]))
        if t.get("state") in ("failed", "up_for_retry")
    ]
    return state, failed


def _service_down(text: str) -> bool:
    """Did the run fail on an unreachable service? Its log says so, or the database is down now."""
    if re.search(r"pipelines\.errors\.ServiceUnavailable|psycopg\.OperationalError", text):
        return True
    from pipelines.db import get_engine

    try:
        get_engine()
    except ServiceUnavailable:
        return True
    return False


def _first_error(text: str) -> str:
    """The first line a person would want: a campaignopt error, else the last exception line."""
    for pattern in (
        r"(pipelines(?:\.\w+)+: [^\n]+)",
        r"((?:\w+\.)*\w+(?:Error|Exception|Failed|Timeout)\w*: [^\n]+)",
    ):
        match = re.findall(pattern, text)
        if match:
            return match[0][:400]
    return "see the log"
