"""The daily DAG: imports cleanly, has the expected shape, and runs a day through Airflow."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_every_dag_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {"daily_campaign_optimization", "model_retraining"} <= set(dagbag.dag_ids)


def test_daily_dag_shape(dagbag) -> None:
    dag = dagbag.dags["daily_campaign_optimization"]
    assert set(dag.task_ids) == {
        "ingest",
        "validate_batch",
        "dbt_build",
        "active_campaigns",
        "decide",
        "publish",
        "monitor",
    }
    order = ["ingest", "validate_batch", "dbt_build", "active_campaigns", "decide", "publish", "monitor"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("decide").is_mapped and dag.get_task("publish").is_mapped
    assert {a.uri for a in dag.get_task("dbt_build").outlets} >= {
        "postgres://campaignopt/analytics/training_examples",
        "postgres://campaignopt/analytics/segment_arm_stats",
    }
    assert dag.doc_md and "daily" in dag.tags
    assert all(t.retries >= 1 for t in dag.tasks)


@pytest.mark.slow
def test_a_day_runs_through_airflow_and_a_bad_file_is_rejected_alone(clean_engine: sa.Engine) -> None:
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files
    from pipelines.orchestration import run_dag
    from pipelines.settings import get_settings

    apply_campaign(clean_engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    inbox = get_settings().inbox_dir
    write_customer_files(inbox, DAY, 500, seed=11)
    result = run_dag("daily_campaign_optimization", DAY)
    assert result.state == "success"
    with clean_engine.connect() as conn:
        lists = conn.execute(
            sa.text("select status, n_rows from ops.send_lists where list_date = :d"), {"d": DAY}
        )
        assert [(s, n > 0) for s, n in lists] == [("published", True)]

    # A bad file does not stop the day (issue 8): it is rejected alone, with its reason in
    # ops.ingested_files and the day's ingest_rejected alert, and the day publishes.
    bad_day = date(2026, 11, 3)
    (inbox / bad_day.isoformat()).mkdir(parents=True, exist_ok=True)
    (inbox / bad_day.isoformat() / "interactions.csv").write_text("event_id,decision_id\nonly,two\n")
    assert run_dag("daily_campaign_optimization", bad_day).state == "success"
    with clean_engine.connect() as conn:
        [(status, reason)] = conn.execute(
            sa.text("select status, reason from ops.ingested_files where logical_date = :d"), {"d": bad_day}
        ).all()
        alerts = conn.execute(
            sa.text("select kind from ops.alerts where alert_date = :d"), {"d": bad_day}
        ).scalars()
        assert "ingest_rejected" in set(alerts)
    assert status == "rejected" and reason.startswith("required columns customer_id, campaign_id")
