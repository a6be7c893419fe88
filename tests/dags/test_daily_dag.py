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
    order = [
        "prepare",
        "wait_for_inbox",
        "ingest",
        "validate_batch",
        "dbt_build",
        "active_campaigns",
        "decide",
        "publish",
        "monitor",
    ]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("decide").is_mapped and dag.get_task("publish").is_mapped
    assert {a.uri for a in dag.get_task("dbt_build").outlets} >= {
        "postgres://campaignopt/analytics/training_examples",
        "postgres://campaignopt/analytics/segment_arm_stats",
    }
    assert dag.doc_md and "daily" in dag.tags
    assert all(t.retries >= 1 for t in dag.tasks)
    # Scheduler-ready: every task is time-limited and alerts on failure; the sensor frees its slot.
    assert all(t.execution_timeout is not None for t in dag.tasks)
    assert all(t.on_failure_callback for t in dag.tasks)
    sensor = dag.get_task("wait_for_inbox")
    assert sensor.mode == "reschedule" and sensor.timeout == 12 * 3600
    assert dag.params["date"] is None  # a manual trigger may name its day


@pytest.mark.slow
def test_a_day_runs_through_airflow_and_a_bad_inbox_fails_naming_the_task(clean_engine: sa.Engine) -> None:
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files
    from pipelines.orchestration import DagRunFailed, run_dag
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

    bad_day = date(2026, 11, 3)
    (inbox / bad_day.isoformat()).mkdir(parents=True, exist_ok=True)
    (inbox / bad_day.isoformat() / "interactions.csv").write_text("event_id,decision_id\nonly,two\n")
    with pytest.raises(DagRunFailed, match=r"failed in ingest: .*interactions.csv: 1 of 1 rows bad"):
        run_dag("daily_campaign_optimization", bad_day)
