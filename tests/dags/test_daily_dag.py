"""The daily DAG: imports cleanly, has the expected shape, and runs a day through Airflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, timedelta
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
        "decide_jobs",
        "decide",
        "publish",
        "monitor",
    ]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    # decide is mapped over (campaign, bucket); publish runs once every bucket is done, even if one
    # campaign's failed (that campaign's publish then refuses: its buckets are checked in the database).
    assert dag.get_task("publish").trigger_rule == "all_done_min_one_success"
    assert dag.get_task("decide").trigger_rule == "all_success"
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


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cli = str(Path(sys.executable).with_name("campaignopt"))
    return subprocess.run([cli, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_a_broken_campaign_and_a_bad_file_fail_alone_a_rerun_exits_0_and_an_empty_day_fails(
    clean_engine: sa.Engine, inbox: Path
) -> None:
    # Three Airflow runs (each ~1 min here): the broken campaign and the bad file share a day.
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files
    from pipelines.orchestration import DagRunFailed, run_dag

    for name in ("card_cashback", "cross_sell"):
        apply_campaign(clean_engine, load_campaign(REPO / f"campaigns/{name}.yaml"))
    with clean_engine.begin() as conn:  # what `campaign apply` of a `.nan` cost used to store
        original = conn.execute(sa.text("select definition::text from ops.campaigns where campaign_id = 2"))
        original = original.scalar_one()
        conn.execute(
            sa.text(
                "update ops.campaigns set definition = jsonb_set(definition, '{channel_costs,sms}', 'null') "
                "where campaign_id = 2"
            )
        )
    write_customer_files(inbox, DAY, 500, seed=11)
    # A bad file does not stop the day: it is rejected alone, with its reason in ops.ingested_files
    # and the day's ingest_rejected alert.
    (inbox / DAY.isoformat() / "interactions.csv").write_text("event_id,decision_id\nonly,two\n")
    with pytest.raises(DagRunFailed) as failed:
        run_dag("daily_campaign_optimization", DAY)
    assert re.search(
        r"failed in decide\[1\], publish\[1\]: pipelines\.campaign_store\.InvalidStoredCampaign: "
        r"stored campaign 'cross-sell' \(id 2\) no longer validates: channel_costs\.sms: ",
        str(failed.value),
    ), str(failed.value)
    with clean_engine.connect() as conn:
        lists = conn.execute(
            sa.text("select campaign_id, status from ops.send_lists where list_date = :d"), {"d": DAY}
        )
        assert lists.all() == [(1, "published")]  # the other campaign published
        alerts = conn.execute(
            sa.text("select campaign_id, kind, severity, message from ops.alerts where kind like 'task_%'")
        ).all()
        rejected = conn.execute(
            sa.text(
                """select status, reason from ops.ingested_files
                   where logical_date = :d and path like '%interactions.csv'"""
            ),
            {"d": DAY},
        ).all()
        ingest_alerts = conn.execute(sa.text("select kind from ops.alerts where kind like 'ingest_%'"))
        assert ingest_alerts.scalars().all() == ["ingest_rejected"]
    [(status, reason)] = rejected
    assert status == "rejected" and reason.startswith("required columns customer_id, campaign_id")
    # Its decide failed, and so did its publish (the list of a campaign whose bucket failed is not
    # published); both alerts name the cause.
    assert sorted((c, k, s) for c, k, s, _ in alerts) == [
        (2, "task_failed:decide", "critical"),
        (2, "task_failed:publish", "critical"),
    ]
    for _, kind, _, message in alerts:
        task = kind.split(":")[1]
        expected = f"{task}[1] failed for 2026-11-02: stored campaign 'cross-sell' (id 2) no longer validates"
        assert expected in message

    # Fixed, the re-run of the most recent day succeeds and says so (exit 0), and supersedes the alert.
    with clean_engine.begin() as conn:
        conn.execute(
            sa.text("update ops.campaigns set definition = cast(:d as jsonb) where campaign_id = 2"),
            {"d": original},
        )
    rerun = _cli("daily", "--date", DAY.isoformat())
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith(f"daily_campaign_optimization {DAY}: success in ")
    # Piped, as here: no progress bar (tests/pipelines/test_daily_progress.py has the terminal's).
    assert "\x1b[" not in rerun.stdout  # no terminal codes
    assert "starting Airflow" not in rerun.stdout and "decide card-cashback" not in rerun.stdout
    assert not re.search(r"^done .* \d+/\d+", rerun.stdout, re.M)  # nor the bar's last frame
    with clean_engine.connect() as conn:
        lists = conn.execute(
            sa.text("select campaign_id, status from ops.send_lists where list_date = :d order by 1"),
            {"d": DAY},
        )
        assert lists.all() == [(1, "published"), (2, "published")]
        kinds = conn.execute(sa.text("select kind from ops.alerts where kind like 'task_failed:%'")).all()
    assert kinds == []

    # A day without data fails loudly before anything is decided, and alerts.
    empty_day = DAY + timedelta(days=1)
    result = _cli("daily", "--date", empty_day.isoformat())
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: daily_campaign_optimization for {empty_day} failed in wait_for_inbox: "
        f"pipelines.daily.InboxNotReady: the inbox of {empty_day} ("
    ), result.stderr
    assert "holds no data file: nothing to decide or publish" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    with clean_engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from ops.send_lists where list_date = :d"), {"d": empty_day}
            ).scalar_one()
            == 0
        )
        assert conn.execute(
            sa.text("select kind from ops.alerts where alert_date = :d"), {"d": empty_day}
        ).all() == [("task_failed:wait_for_inbox",)]


def test_the_day_of_a_run_with_and_without_a_logical_date() -> None:
    from datetime import UTC, datetime

    from pipelines.daily import resolve_day
    from pipelines.errors import UserError

    scheduled = datetime(2026, 11, 2, tzinfo=UTC)  # data interval [Nov 2, Nov 3): the day is Nov 2
    assert resolve_day(None, scheduled, datetime(2026, 11, 3, tzinfo=UTC)) == date(2026, 11, 2)
    # An Airflow 3 manual trigger has no logical date: the last complete day before run_after.
    assert resolve_day(None, None, datetime(2026, 11, 5, 14, 30, tzinfo=UTC)) == date(2026, 11, 4)
    assert resolve_day(None, None, "2026-11-05T00:10:00+00:00") == date(2026, 11, 4)
    assert resolve_day("2026-10-30", None, datetime(2026, 11, 5, tzinfo=UTC)) == date(2026, 10, 30)
    with pytest.raises(UserError, match=r"param date: '2026-13-01' is not a date \(YYYY-MM-DD\)"):
        resolve_day("2026-13-01", None, None)


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of our own on a free port, to stop in the middle of a run."""
    import shutil
    import socket
    import tempfile

    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    root = Path(tempfile.mkdtemp(prefix="campaignopt-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-w"]
    subprocess.run([*ctl, "-o", opts, "-l", str(root / "log"), "start"], check=True, capture_output=True)
    stop = [*ctl, "-m", "immediate", "stop"]
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop
    subprocess.run(stop, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_a_database_that_goes_down_mid_run_exits_3_naming_the_step(private_postgres, inbox: Path) -> None:
    import time

    from pipelines import migrate
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.demo import write_customer_files

    url, stop = private_postgres
    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    apply_campaign(engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    day = date(2026, 12, 20)
    write_customer_files(inbox, day, 300, seed=5)
    cli = str(Path(sys.executable).with_name("campaignopt"))
    run = subprocess.Popen(
        [cli, "daily", "--date", day.isoformat()],
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    with engine.connect() as conn:  # stop the server once the day's files have landed
        while not conn.execute(sa.text("select count(*) from ops.ingested_files")).scalar():
            assert run.poll() is None and time.monotonic() < deadline, run.stderr and run.stderr.read()
            conn.rollback()
            time.sleep(0.1)
    engine.dispose()
    subprocess.run(stop, check=True, capture_output=True)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 3, err
    assert re.match(
        rf"error: daily_campaign_optimization for {day} failed in "
        r"(ingest|validate_batch|dbt_build|active_campaigns)\b.*(database|connection)",
        err,
    ), err
    assert err.count("\n") == 1 and "Traceback" not in err


_RUN_WITHOUT_LOGICAL_DATE = """
import os, sys
from datetime import datetime
sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["daily_campaign_optimization"]
run = dag.test(logical_date=None, run_after=datetime.fromisoformat(sys.argv[1]))
print("RUN", run.state, run.logical_date)
"""


def test_a_manual_run_without_a_logical_date_is_for_the_day_before_and_no_data_fails_loudly(
    clean_engine: sa.Engine, test_home: Path, tmp_path: Path
) -> None:
    """A real Airflow run as a scheduler's manual trigger makes it: no logical date, the marker
    rule of scheduled runs (not a hand run). The producer marked the day ready with no file in it."""
    from pipelines.orchestration import fresh_airflow_home

    day = date(2026, 11, 20)
    folder = test_home / "inbox" / day.isoformat()
    folder.mkdir(parents=True)
    (folder / "_READY").touch()
    env = fresh_airflow_home(tmp_path / "airflow")
    env.pop("CAMPAIGNOPT_HAND_RUN")
    try:
        run = subprocess.run(
            [sys.executable, "-c", _RUN_WITHOUT_LOGICAL_DATE, "2026-11-21T08:30:00+00:00"],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,  # a run for the wrong day would wait for that day's marker
        )
    finally:
        (folder / "_READY").unlink()
        folder.rmdir()
    assert "RUN failed None" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    with clean_engine.connect() as conn:
        alerts = conn.execute(sa.text("select alert_date, kind, message from ops.alerts")).all()
        lists = conn.execute(sa.text("select count(*) from ops.send_lists")).scalar_one()
    assert [(d, k) for d, k, _ in alerts] == [(day, "task_failed:wait_for_inbox")]
    assert f"the inbox of {day} ({folder}) holds no data file: nothing to decide or publish" in alerts[0][2]
    assert lists == 0
