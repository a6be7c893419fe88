"""pipelines.retrain: configuration, the enough-data check, tracking URIs, the mart in PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable
from pipelines.retrain import (
    SKIPPED,
    RetrainConfig,
    build_training_set,
    ensure_tracking_backend,
    mlflow_ui_command,
    registry_target,
    retrain,
    tracking_uri,
)
from pipelines.settings import Settings


def test_config_from_flat_params_and_unknown_keys():
    config = RetrainConfig.from_mapping({"min_examples": 50, "validation_days": 3, "auto_promote": False})
    assert config.min_examples == 50 and config.train.validation_days == 3 and not config.gate.auto_promote
    assert RetrainConfig.from_mapping(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown retraining option 'min_exampels'"):
        RetrainConfig.from_mapping({"min_exampels": 5})


def test_too_few_examples_is_a_clean_skip(tmp_path, examples):
    settings = Settings(campaignopt_home=tmp_path)
    result = retrain(settings=settings, examples=examples.head(300))
    assert result["status"] == SKIPPED and "fewer than min_examples=1000" in result["reason"]


def test_a_single_day_is_a_clean_skip(tmp_path, examples):
    one_day = examples[examples["decision_date"] == examples["decision_date"].max()]
    summary = build_training_set(examples=one_day, config={"min_examples": 10})
    assert summary["status"] == SKIPPED and "min_days" in summary["reason"]


def test_tracking_uri_defaults_to_an_mlflow_database_beside_the_project_database(tmp_path):
    settings = Settings(
        database_url="postgresql://app:secret@db.internal:5432/campaignopt",
        campaignopt_home=tmp_path,
        mlflow_tracking_uri=None,
    )
    assert tracking_uri(settings) == "postgresql+psycopg://app:secret@db.internal:5432/mlflow"
    assert "mlflow ui --backend-store-uri" in mlflow_ui_command(settings)
    assert "secret" not in mlflow_ui_command(settings)  # PGPASSWORD=... instead
    assert str(tmp_path / "mlartifacts") in mlflow_ui_command(settings)
    override = Settings(database_url="postgresql://x@y/z", mlflow_tracking_uri="http://127.0.0.1:5000")
    assert tracking_uri(override) == "http://127.0.0.1:5000"


def test_unreachable_registry_is_one_line(tmp_path):
    settings = Settings(
        campaignopt_home=tmp_path, mlflow_tracking_uri="postgresql+psycopg://postgres@127.0.0.1:1/mlflow"
    )
    with pytest.raises(ServiceUnavailable) as info:
        registry_target(settings)
    assert "\n" not in str(info.value) and "127.0.0.1" in str(info.value)


@pytest.mark.slow
def test_missing_tracking_database_is_created(pg_admin, scratch_database):
    url = scratch_database("mlflow_create")
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'drop database "{url.rsplit("/", 1)[1]}"'))
    ensure_tracking_backend(url)
    with pg_admin.connect() as conn:
        found = conn.execute(
            sa.text("select 1 from pg_database where datname = :n"), {"n": url.rsplit("/", 1)[1]}
        ).scalar()
    assert found == 1


@pytest.mark.slow
def test_two_processes_opening_a_fresh_tracking_database_at_once_both_succeed(pg_admin, scratch_database):
    """Two Celery workers' first tasks: each creates the database and MLflow's tables if missing."""
    url = scratch_database("mlflow_race")
    name = url.rsplit("/", 1)[1]
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'drop database "{name}"'))
    code = f"from pipelines.retrain.config import ensure_tracking_backend; ensure_tracking_backend({url!r})"
    runs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    errors = [run.communicate(timeout=180)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from alembic_version")).scalar() == 1
            assert conn.execute(sa.text("select to_regclass('registered_models') is not null")).scalar()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_retrain_reads_the_mart_from_postgres(settings_for, scratch_database, examples, arms):
    url = scratch_database("campaignopt_retrain")
    engine = sa.create_engine(url)
    settings = settings_for.model_copy(update={"database_url": url})

    # Before dbt has built the mart: a clean skip, not an error.
    empty = retrain(settings=settings)
    assert empty["status"] == SKIPPED and "no matured examples" in empty["reason"]

    with engine.begin() as conn:
        conn.execute(sa.text("create schema analytics"))
        conn.execute(sa.text("create schema ops"))
    examples.to_sql("training_examples", engine, schema="analytics", index=False)
    ops_arms = arms[["arm_id", "campaign_id"]].assign(
        params=[
            pd.Series(row).dropna().to_json()
            for row in arms.drop(columns=["arm_id", "campaign_id"]).to_dict("records")
        ],
        channel=arms["channel"],
        active=True,
    )
    ops_arms.to_sql("arms", engine, schema="ops", index=False, dtype={"params": sa.dialects.postgresql.JSONB})

    result = retrain(
        settings=settings, as_of="2026-01-28", config={"n_estimators": 60, "early_stopping_rounds": 10}
    )
    assert result["status"] == "done" and result["promoted"]
    assert result["rows"] == len(examples) and result["date_to"] == "2026-01-28"
    assert result["metrics"]["ope_dr_value"] is not None  # the arms came from ops.arms
    engine.dispose()
