"""The retraining DAG: it parses, has the expected shape, skips cleanly without data, and with data
trains, registers, gates and promotes, its tasks handing over only an MLflow run id."""

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


@pytest.fixture
def scratch_databases():
    """Factory of empty PostgreSQL databases, dropped after the test."""
    sa = pytest.importorskip("sqlalchemy")
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 5})
    created = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{len(created)}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
                conn.execute(sa.text(f'create database "{name}"'))
        except sa.exc.OperationalError:
            pytest.skip(f"no PostgreSQL at {PG_SERVER}")
        created.append(name)
        return f"{PG_SERVER}/{name}"

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def _dags_test(tmp_path, database_url: str, mlflow_uri: str, day: str) -> subprocess.CompletedProcess:
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "DATABASE_URL": database_url,
        "CAMPAIGNOPT_HOME": str(tmp_path / "home"),
        "CAMPAIGNOPT_ENV": f"dagtest{os.getpid()}",
        "MLFLOW_TRACKING_URI": mlflow_uri,
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return subprocess.run([airflow, "dags", "test", "model_retraining", day], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_airflow_dags_test_skips_cleanly_on_an_empty_training_set(tmp_path, scratch_databases):
    # An empty database: no training_examples mart. The registry must not be touched.
    run = _dags_test(tmp_path, scratch_databases("campaignopt_dagtest"),
                     "postgresql+psycopg://postgres@127.0.0.1:1/unused", "2026-11-16")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "not enough data to retrain" in log
    assert "new_state=skipped" in log
    assert "state=success" in log
    assert "model_retraining.train " not in log  # downstream tasks were skipped, not run


@pytest.mark.slow
def test_airflow_dags_test_trains_gates_and_promotes_through_one_mlflow_run(tmp_path, scratch_databases):
    import datetime as dt

    import sqlalchemy as sa
    from mlflow import MlflowClient

    from ml.synthetic import make_training_examples

    url = scratch_databases("campaignopt_dagtrain")
    mlflow_uri = scratch_databases("mlflow_dagtrain")
    examples = make_training_examples(6_000, seed=7)
    shift = dt.date(2026, 11, 15) - max(examples["decision_date"])  # the newest day: the day before D
    examples["decision_date"] = [d + shift for d in examples["decision_date"]]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create schema analytics"))
    examples.to_sql("training_examples", engine, schema="analytics", index=False)
    engine.dispose()

    run = _dags_test(tmp_path, url, mlflow_uri, "2026-11-16")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "state=success" in log
    assert "new_state=skipped" not in log

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    name = f"campaignopt-response-dagtest{os.getpid()}"
    champion = client.get_model_version_by_alias(name, "champion")
    mlflow_run = client.get_run(champion.run_id)
    assert mlflow_run.data.tags["airflow_run_id"].startswith("manual__")
    assert mlflow_run.data.params["dataset.date_to"] == "2026-11-15"
    assert champion.tags["gate_passed"] == "true"
    assert champion.tags["promoted_by"].startswith("retraining gate")
    # No work folder on local disk: everything the tasks exchanged is in the run.
    assert not (tmp_path / "home" / "retrain").exists()
    assert {a.path for a in client.list_artifacts(champion.run_id, "handover")} >= {
        "handover/examples.parquet", "handover/model.ubj", "handover/gate.json"
    }
