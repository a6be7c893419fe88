"""Runs that overlap stay correct: the day-order rule of `pipelines.day_order` on real PostgreSQL,
and two real `campaignopt daily` processes (real Airflow) for consecutive days at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.day_order import DayOrderError, decide_slot, marts_build_slot
from pipelines.orchestration import run_lock_key

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("campaignopt"))
D = date(2026, 11, 9)
DAG = "daily_campaign_optimization"

# For each batch decision: the sends (all campaigns) to the same customer in the 6 days before,
# and the latest of them, against the caps of the decision's campaign.
CAP_VIOLATIONS_SQL = """
select d.campaign_id, d.decision_date, count(*) as sends,
       count(*) filter (where e.sends_before >= (c.definition->'frequency_caps'->>'max_per_week')::int)
           as over_weekly_cap,
       count(*) filter (where e.last_before
                        > d.decision_date - (c.definition->'frequency_caps'->>'min_days_between')::int)
           as too_soon
from ops.decisions d join ops.campaigns c using (campaign_id)
cross join lateral (
    select count(*) as sends_before, max(p.decision_date) as last_before from ops.decisions p
    where p.customer_id = d.customer_id and p.source = 'batch'
      and p.decision_date > d.decision_date - 7 and p.decision_date < d.decision_date) e
where d.source = 'batch'
group by 1, 2 order by 2, 1
"""


def _campaign_id(engine: sa.Engine) -> int:
    apply_campaign(engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    with engine.connect() as conn:
        return conn.execute(sa.text("select campaign_id from ops.campaigns")).scalar_one()


def _landed(engine: sa.Engine, day: date) -> None:
    """Book-keeping of a file landed for ``day``: the day has data."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.ingested_files (checksum, path, kind, logical_date, rows_read,
                       rows_loaded, rows_quarantined) values (:c, :p, 'customers', :d, 1, 1, 0)"""
            ),
            {"c": f"sum-{day}", "p": f"{day}/customers.csv", "d": day},
        )


def _list(engine: sa.Engine, campaign_id: int, day: date, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.send_lists (campaign_id, list_date, status) values (:c, :d, :s)
                   on conflict (campaign_id, list_date) do update set status = excluded.status"""
            ),
            {"c": campaign_id, "d": day, "s": status},
        )


def test_deciding_a_day_waits_for_earlier_days_then_fails_naming_them(clean_engine: sa.Engine) -> None:
    cid = _campaign_id(clean_engine)
    _landed(clean_engine, D - timedelta(days=2))
    started = time.monotonic()
    with pytest.raises(DayOrderError) as err:
        with decide_slot(clean_engine, cid, D, wait_seconds=1.0, poll_seconds=0.2):
            pass
    assert 1.0 <= time.monotonic() - started < 5
    assert str(err.value) == (
        f"cannot decide {D} after waiting 1 s: earlier days are not final: "
        f"{D - timedelta(days=2)} (it has data but no send list yet). Run (or fix) those days first."
    )
    _list(clean_engine, cid, D - timedelta(days=2), "draft")
    with pytest.raises(DayOrderError, match=r"\(1 list\(s\) decided but not published\)"):
        with marts_build_slot(clean_engine, D, wait_seconds=0.2, poll_seconds=0.1):
            pass
    # A run of D-1 in progress (its lock held by another session) is pending too, data or not.
    classid, objid = run_lock_key(DAG, D - timedelta(days=1))
    with clean_engine.connect() as other:
        other.execute(sa.text("select pg_advisory_lock(:a, :b)"), {"a": classid, "b": objid})
        with pytest.raises(DayOrderError, match=rf"{D - timedelta(days=1)} \(a run of it is in progress\)"):
            with decide_slot(clean_engine, cid, D, wait_seconds=0.2, poll_seconds=0.1):
                pass
        other.execute(sa.text("select pg_advisory_unlock(:a, :b)"), {"a": classid, "b": objid})
        other.commit()
    _list(clean_engine, cid, D - timedelta(days=2), "published")
    with decide_slot(clean_engine, cid, D, wait_seconds=0):  # every earlier day final: no wait
        pass
    _landed(clean_engine, D - timedelta(days=7))  # outside the cap window: not waited for
    with decide_slot(clean_engine, cid, D, wait_seconds=0):
        pass


def test_a_day_decided_after_a_later_one_is_refused(clean_engine: sa.Engine) -> None:
    cid = _campaign_id(clean_engine)
    later = D + timedelta(days=3)
    with clean_engine.begin() as conn:
        arm = conn.execute(sa.text("select min(arm_id) from ops.arms")).scalar_one()
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values ('x', :c, 'C1', :a, :d, :d, 'thompson', 'v', 1, 'policy', false, 'treatment',
                           'batch')"""
            ),
            {"c": cid, "a": arm, "d": later},
        )
    message = rf"cannot decide {D}: later days \({later}\) are already decided"
    with pytest.raises(DayOrderError, match=message):
        with decide_slot(clean_engine, cid, D, wait_seconds=5):
            pass
    with pytest.raises(DayOrderError, match=rf"cannot run {D}: later days \({later}\)"):
        with marts_build_slot(clean_engine, D, wait_seconds=5):
            pass
    _list(clean_engine, cid, D, "published")  # a published list is final: re-running it is harmless
    with decide_slot(clean_engine, cid, D, wait_seconds=0):
        pass
    with decide_slot(clean_engine, cid, D + timedelta(days=7), wait_seconds=0):  # outside the window
        pass


def _files_landed(engine: sa.Engine, day: date) -> bool:
    with engine.connect() as conn:
        landed = conn.execute(
            sa.text("select count(*) from ops.ingested_files where logical_date = :d"), {"d": day}
        )
        return landed.scalar() == 2


def _lock_held(engine: sa.Engine, day: date) -> bool:
    classid, objid = run_lock_key(DAG, day)
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select exists (select 1 from pg_locks where locktype = 'advisory' and granted "
                "and classid::bigint = :a and objid::bigint = :b)"
            ),
            {"a": classid, "b": objid},
        ).scalar()


@pytest.mark.slow
def test_two_days_at_once_break_no_cap_and_a_second_run_of_a_day_exits_2(
    clean_engine: sa.Engine, inbox: Path
) -> None:
    from pipelines.demo import write_customer_files

    for name in ("card_cashback", "cross_sell"):  # caps: 3 a week / 1 day apart; 2 a week / 2 days apart
        apply_campaign(clean_engine, load_campaign(REPO / f"campaigns/{name}.yaml"))
    write_customer_files(inbox, D, 3_000, seed=21)
    write_customer_files(inbox, D + timedelta(days=1), 3_000, seed=22)  # the next snapshot: same ids
    env = {**os.environ, "DECIDE_WAIT_SECONDS": "600"}

    def start(day: date) -> subprocess.Popen:
        return subprocess.Popen(
            [CLI, "daily", "--date", day.isoformat()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # The later day starts first and has landed its files before the earlier day even starts:
    # without the day-order rule it would decide first (and the earlier day could never be right).
    second_day = start(D + timedelta(days=1))
    deadline = time.monotonic() + 120
    while not _files_landed(clean_engine, D + timedelta(days=1)):
        assert time.monotonic() < deadline and second_day.poll() is None, "D+1 never landed its files"
        time.sleep(0.2)
    first_day = start(D)
    while not _lock_held(clean_engine, D):
        assert time.monotonic() < deadline, "the run of D never took its day lock"
        time.sleep(0.2)
    again = subprocess.run([CLI, "daily", "--date", D.isoformat()], env=env, capture_output=True, text=True)
    assert again.returncode == 2
    assert again.stderr == f"error: a run of {DAG} for {D} is in progress; wait for it to end\n"
    for proc in (first_day, second_day):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]

    with clean_engine.connect() as conn:
        caps = [dict(r) for r in conn.execute(sa.text(CAP_VIOLATIONS_SQL)).mappings()]
        lists = conn.execute(
            sa.text("select list_date, status, n_rows from ops.send_lists order by list_date, campaign_id")
        ).all()
    assert {r["decision_date"] for r in caps} == {D, D + timedelta(days=1)}
    assert [(r["campaign_id"], r["over_weekly_cap"], r["too_soon"]) for r in caps if r["sends"]] == [
        (r["campaign_id"], 0, 0) for r in caps
    ]
    next_day = D + timedelta(days=1)
    assert [(d, s) for d, s, _ in lists] == [(D, "published")] * 2 + [(next_day, "published")] * 2
    # D+1 really saw D: cross-sell (2 days apart) could only pick customers not sent to on D.
    sends = {(r["campaign_id"], r["decision_date"]): r["sends"] for r in caps}
    assert sends[(2, D)] == 2_500 and sends.get((2, next_day), 0) <= 3_000 - 2_500
