"""The retraining DAG: it parses, has the expected shape, and skips cleanly without data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_TASKS = ["build_training_set", "train", "evaluate", "register", "gate", "promote"]
PG_SERVER = os.environ.get("CAMPAIGNOPT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@pytest.fixture(scope="module")
def dag():
    # The DAG processor puts the bundle (DAG folder) on sys.path; a bare DagBag does not.
    sys.path.insert(0, str(DAGS_FOLDER))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not {k: v for k, v in bag.import_errors.items() if "model_retraining" in k}
    return bag.dags["model_retraining"]


def test_dag_shape(dag):
    assert [t.task_id for t in dag.tasks] == EXPECTED_TASKS
    for upstream, downstream in zip(EXPECTED_TASKS, EXPECTED_TASKS[1:], strict=False):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    assert all(t.retries >= 1 for t in dag.tasks)
    assert dag.doc_md and "retraining" in dag.tags
    assert dag.max_active_runs == 1 and not dag.catchup


def test_scheduled_weekly_and_on_the_training_examples_asset(dag):
    from airflow.sdk import AssetOrTimeSchedule
    from assets import TRAINING_EXAMPLES

    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.asset_condition == TRAINING_EXAMPLES
    assert dag.timetable.timetable.expression == "0 4 * * 1"


@pytest.mark.slow
def test_airflow_dags_test_skips_cleanly_on_an_empty_training_set(tmp_path):
    sa = pytest.importorskip("sqlalchemy")
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 5})
    name = f"campaignopt_dagtest_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
            conn.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError:
        pytest.skip(f"no PostgreSQL at {PG_SERVER}")
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "DATABASE_URL": f"{PG_SERVER}/{name}",  # an empty database: no training_examples mart
        "CAMPAIGNOPT_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": "postgresql+psycopg://postgres@127.0.0.1:1/unused",  # must not be touched
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                                 timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        run = subprocess.run([airflow, "dags", "test", "model_retraining", "2026-11-16"], env=env,
                             capture_output=True, text=True, timeout=300)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "not enough data to retrain" in log
    assert "new_state=skipped" in log
    assert "state=success" in log
    assert "model_retraining.train " not in log  # downstream tasks were skipped, not run
