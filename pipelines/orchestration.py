"""Run a DAG of `dags/` for one logical date through Airflow itself, without a scheduler.

This is `airflow dags test` in a subprocess with a self-contained Airflow home under
the campaignopt home folder (SQLite metadata, this repository's DAG folder), so a
person can run or re-run a day with one command. `pipelines` never imports Airflow:
it only starts it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.errors import UserError
from pipelines.settings import get_settings

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


class DagRunFailed(UserError):
    """A DAG run ended in failure; the message names the failed tasks."""

    exit_code = 1


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    logical_date: date
    state: str
    failed_tasks: list[str]
    log_path: Path


def airflow_env() -> dict[str, str]:
    """Environment for the Airflow subprocess: our settings plus a private Airflow home."""
    settings = get_settings()
    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "CAMPAIGNOPT_HOME": str(settings.home),
            "CAMPAIGNOPT_TASK_RETRIES": "0",
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


def run_dag(dag_id: str, logical_date: date, conf: dict | None = None) -> DagRunResult:
    """Run ``dag_id`` for ``logical_date`` (``conf`` overrides the DAG's params); raise
    DagRunFailed naming the failed tasks."""
    env = airflow_env()
    home = Path(env["AIRFLOW_HOME"])
    log_path = home / "runs" / f"{dag_id}_{logical_date.isoformat()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = home / "airflow.db"
    with log_path.open("w") as log:
        if not metadata.exists() and _airflow("db", "migrate", env=env, log=log) != 0:
            raise DagRunFailed(f"could not prepare Airflow's metadata database; see {log_path}")
        last_run = _last_run_id(metadata)
        extra = ["--conf", json.dumps(conf)] if conf else []
        code = _airflow("dags", "test", dag_id, logical_date.isoformat(), *extra, env=env, log=log)
    state, tasks = _run_outcome(metadata, dag_id, last_run)
    failed = [f"{t}[{m}]" if m >= 0 else t for t, m, s in tasks if s in ("failed", "up_for_retry")]
    if code != 0 or state != "success" or failed:
        reason = _first_error(log_path.read_text(errors="replace"))
        where = ", ".join(failed) or "no task (see the log)"
        raise DagRunFailed(f"{dag_id} for {logical_date} failed in {where}: {reason} (log: {log_path})")
    return DagRunResult(dag_id, logical_date, state, failed, log_path)


def _last_run_id(metadata: Path) -> int:
    with closing(sqlite3.connect(metadata)) as db:
        return db.execute("select coalesce(max(id), 0) from dag_run").fetchone()[0]


def _run_outcome(metadata: Path, dag_id: str, after_id: int) -> tuple[str, list[tuple[str, int, str]]]:
    """State of the run `airflow dags test` just made, and its task instances' states."""
    with closing(sqlite3.connect(metadata)) as db:
        row = db.execute(
            "select id, run_id, state from dag_run where dag_id = ? and id > ? order by id desc limit 1",
            (dag_id, after_id),
        ).fetchone()
        if row is None:
            return "missing", []
        tasks = db.execute(
            "select task_id, map_index, coalesce(state, 'none') from task_instance "
            "where dag_id = ? and run_id = ? order by task_id, map_index",
            (dag_id, row[1]),
        ).fetchall()
    return row[2], tasks


def _first_error(text: str) -> str:
    """The first line a person would want: a campaignopt error, else the last exception line."""
    for pattern in (
        r"(pipelines\.errors\.\w+: [^\n]+)",
        r"((?:\w+\.)*\w+(?:Error|Exception|Failed)\w*: [^\n]+)",
    ):
        match = re.findall(pattern, text)
        if match:
            return match[0][:400]
    return "see the log"
