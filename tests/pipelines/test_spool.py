"""The offline path of a real-time worker, in process against the session's PostgreSQL: the
circuit opens on a real connection failure (a closed port), decisions are made from the
remembered eligibility and spooled to a real SQLite file, and the replay stores each spooled
decision and event exactly once -- including the spool of a worker killed with SIGKILL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time as time_module
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable
from pipelines.realtime.circuit import Circuit, is_connection_error
from pipelines.realtime.offline import SPOOLED, EligibilityCache, Offline
from pipelines.realtime.optimize import NotEligible, decide_one
from pipelines.realtime.snapshot import Snapshot
from pipelines.realtime.spool import DECISION, FEEDBACK, SUFFIX, Spool
from pipelines.settings import Settings
from tests.api.conftest import free_port
from tests.api.realtime_world import ATTRIBUTES
from tests.pipelines.seed_rows import add_campaign, insert_consents, truncate_all

D = date(2026, 6, 15)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> tuple[int, Snapshot]:
    """A 4-arm campaign capped at 2 sends a week; customers c1..c3 with email and sms consent."""
    truncate_all(engine)
    campaign = add_campaign(
        engine,
        {
            "name": "spool-caps",
            "start_date": "2026-05-01",
            "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
            "policy": {"name": "thompson"},
            "holdout_share": 0.0,
            "frequency_caps": {"max_per_week": 2, "min_days_between": 0},
        },
    )
    consented = datetime(2026, 5, 1, tzinfo=UTC)
    insert_consents(engine, [(f"c{i}", ch, consented, True) for i in (1, 2, 3) for ch in ("email", "sms")])
    return campaign.campaign_id, Snapshot.load(engine, now=NOW)


@pytest.fixture
def down_engine() -> sa.Engine:
    """An engine whose server is not there: every connection is refused (a real failure)."""
    engine = sa.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2}
    )
    yield engine
    engine.dispose()


@pytest.fixture
def offline(tmp_path: Path) -> Offline:
    settings = Settings(campaignopt_home=tmp_path, realtime_circuit_open_seconds=0.01)
    worker = Offline(settings, sa.make_url("postgresql://h:5432/test"))
    yield worker
    worker.close()


def _count(engine: sa.Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_offline_decisions_are_spooled_and_replayed_exactly_once(engine, world, down_engine, offline) -> None:
    campaign_id, snapshot = world
    online = decide_one(engine, snapshot, campaign_id, "c1", attributes=ATTRIBUTES, offline=offline, now=NOW)
    assert online.fallback_reason == "no model"[:0] or online.fallback_reason is None
    later = NOW + timedelta(minutes=5)
    # The database is gone: the first failure opens the circuit and decides offline.
    first = decide_one(
        down_engine, snapshot, campaign_id, "c1", idempotency_key="k1", offline=offline, now=later
    )
    assert offline.circuit.is_open()
    cached_at = f"{datetime.now(UTC):%H:%M}"
    assert first.fallback_reason.startswith(
        f"database unavailable: eligibility from the local cache of {cached_at}"
    )
    assert first.fallback_reason.endswith("; decision spooled")
    # The same key again: the same decision, not spooled twice.
    again = decide_one(
        down_engine, snapshot, campaign_id, "c1", idempotency_key="k1", offline=offline, now=later
    )
    assert (again.decision_id, again.arm_id, again.replayed) == (first.decision_id, first.arm_id, True)
    # Caps count the worker's own sends: the online one and the offline one fill max_per_week 2.
    with pytest.raises(NotEligible, match="frequency cap: 2 sends in the last 7 days"):
        decide_one(down_engine, snapshot, campaign_id, "c1", offline=offline, now=later)
    # A customer this worker never read: no decision without known consent.
    with pytest.raises(ServiceUnavailable, match="no recent eligibility .* of customer 'c2'"):
        decide_one(
            down_engine, snapshot, campaign_id, "c2", attributes=ATTRIBUTES, offline=offline, now=later
        )
    events = [
        {"event_id": "ev-1", "decision_id": first.decision_id, "event_type": "open", "occurred_at": later},
        {"event_id": "ev-2", "decision_id": online.decision_id, "event_type": "click", "occurred_at": later},
    ]
    assert [r.status for r in offline.spool_feedback(events, later)] == [SPOOLED, SPOOLED]
    assert (offline.spool.pending[DECISION], offline.spool.pending[FEEDBACK]) == (1, 1)
    assert "database circuit open since" in offline.problems()[0]
    assert "1 decisions and 1 feedback batches spooled" in offline.problems()[0]
    assert (
        _count(engine, "select count(*) from ops.decisions where decision_id = :d", d=first.decision_id) == 0
    )

    time_module.sleep(0.05)  # the circuit's 0.01 s are over: the probe is due
    offline.tick(engine, later)  # the probe answers: replay, close
    assert not offline.circuit.is_open() and offline.problems() == []
    row = _row(engine, first.decision_id)
    assert (row.customer_id, row.arm_id, row.idempotency_key, row.source) == (
        "c1",
        first.arm_id,
        "k1",
        "realtime",
    )
    assert row.note == first.fallback_reason and row.decided_at == later
    assert _count(engine, "select count(*) from raw.interactions where event_id in ('ev-1', 'ev-2')") == 2
    # A second replay of the same entries (as after a crash between commit and delete) adds nothing.
    offline.spool.add(
        DECISION, json.loads(json.dumps(_params(engine, first.decision_id), default=str)), later
    )
    offline.spool.add(FEEDBACK, {"events": events}, later)
    offline.tick(engine, later)
    assert _count(engine, "select count(*) from ops.decisions where customer_id = 'c1'") == 2
    assert _count(engine, "select count(*) from raw.interactions where event_id in ('ev-1', 'ev-2')") == 2
    assert offline.spool.pending[DECISION] == offline.spool.pending[FEEDBACK] == 0


def test_an_event_of_a_decision_spooled_elsewhere_waits_for_it(engine, world, tmp_path) -> None:
    campaign_id, _ = world
    spool = Spool(tmp_path / "spool")
    try:
        events = [
            {"event_id": "ev-late", "decision_id": "rt-elsewhere", "event_type": "open", "occurred_at": NOW}
        ]
        spool.add(FEEDBACK, {"events": events}, NOW)
        spool.replay(engine, NOW)
        assert spool.pending[FEEDBACK] == 1  # unknown decision: kept for the next pass
        spool.add(DECISION, _decision("rt-elsewhere", campaign_id, "c3"), NOW)
        spool.replay(engine, NOW)  # decisions first, then the event finds it
        assert spool.pending[FEEDBACK] == 0
        assert _count(engine, "select count(*) from raw.interactions where event_id = 'ev-late'") == 1
    finally:
        spool.close()
    assert list((tmp_path / "spool").iterdir()) == []  # an empty spool leaves no file


_WORKER = """
import os, signal, sys, json, time
from datetime import datetime
from pathlib import Path
from pipelines.realtime.spool import DECISION, Spool
spool = Spool(Path(sys.argv[1]))
spool.add(DECISION, json.loads(sys.argv[2]), datetime.fromisoformat(sys.argv[3]))
print(spool.path, flush=True)
if sys.argv[4] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


def test_the_spool_of_a_killed_worker_is_replayed_and_a_live_one_is_not(engine, world, tmp_path) -> None:
    campaign_id, _ = world
    folder = tmp_path / "spool"

    def worker(decision_id: str, how: str) -> subprocess.Popen:
        payload = json.dumps(_decision(decision_id, campaign_id, "c3"), default=str)
        args = [sys.executable, "-c", textwrap.dedent(_WORKER), str(folder), payload, NOW.isoformat(), how]
        return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)

    dead, alive = worker("rt-dead-worker", "die"), worker("rt-live-worker", "live")
    try:
        dead_file = Path(dead.stdout.readline().strip())
        alive_file = Path(alive.stdout.readline().strip())
        assert dead.wait(timeout=30) == -signal.SIGKILL
        replayer = Spool(folder)
        try:
            replayer.replay(engine, NOW)
        finally:
            replayer.close()
        assert _count(engine, "select count(*) from ops.decisions where decision_id = 'rt-dead-worker'") == 1
        assert _count(engine, "select count(*) from ops.decisions where decision_id = 'rt-live-worker'") == 0
        assert not dead_file.exists() and not Path(f"{dead_file}.lock").exists()
        assert alive_file.exists()  # its owner holds the lock: its file is its own to replay
    finally:
        for p in (dead, alive):
            p.kill()
            p.wait(timeout=30)
    again = Spool(folder)  # the live one died meanwhile: now its entry is replayed too
    try:
        again.replay(engine, NOW)
    finally:
        again.close()
    assert _count(engine, "select count(*) from ops.decisions where decision_id = 'rt-live-worker'") == 1
    assert sorted(p.name for p in folder.iterdir()) == []
    assert not any(p.name.endswith(SUFFIX) for p in folder.iterdir())


def test_only_connection_failures_open_the_circuit(engine, down_engine) -> None:
    with pytest.raises(sa.exc.OperationalError) as refused:
        with down_engine.connect():
            pass
    assert is_connection_error(refused.value)
    with pytest.raises(sa.exc.OperationalError) as cancelled:  # 57014: a slow query, not a dead server
        with engine.connect() as conn:
            conn.execute(sa.text("set statement_timeout = 10"))
            conn.execute(sa.text("select pg_sleep(1)"))
    assert not is_connection_error(cancelled.value)
    with pytest.raises(sa.exc.DataError) as bad:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1 / 0"))
    assert not is_connection_error(bad.value)
    clock = [100.0]
    circuit = Circuit(5.0, clock=lambda: clock[0])
    assert circuit.trip_on(refused.value) and circuit.is_open() and not circuit.probe_due()
    clock[0] += 5.0
    assert circuit.probe_due()
    circuit.close()
    assert not circuit.is_open() and circuit.status() is None


def test_the_eligibility_cache_expires_and_counts_sends() -> None:
    clock = [0.0]
    cache = EligibilityCache(size=2, ttl_seconds=900, clock=lambda: clock[0])
    row = {"sends_7d": 0, "last_send": None}
    cache.put(1, "a", dict(row), D)
    cache.put(2, "a", dict(row), D)
    cache.count_send("a", D)  # caps count every campaign's sends
    assert cache.get(1, "a", D)[0]["sends_7d"] == cache.get(2, "a", D)[0]["sends_7d"] == 1
    assert cache.get(1, "a", D + timedelta(days=1)) is None  # another day, other cap windows
    cache.put(1, "b", dict(row), D)
    cache.put(1, "c", dict(row), D)  # size 2: "a" (least recently used) goes
    assert cache.get(1, "a", D) is None and cache.get(1, "c", D) is not None
    clock[0] = 901.0
    assert cache.get(1, "c", D) is None


def _decision(decision_id: str, campaign_id: int, customer_id: str) -> dict:
    with sa.create_engine("sqlite://").connect():  # no database needed: the arm comes from the world
        pass
    return {
        "decision_id": decision_id,
        "campaign_id": campaign_id,
        "customer_id": customer_id,
        "arm_id": _arm(campaign_id),
        "day": D.isoformat(),
        "decided_at": NOW.isoformat(),
        "segment": "mass",
        "policy": "thompson",
        "policy_version": "test",
        "strategy": None,
        "phase": None,
        "propensity": 0.25,
        "bandit_score": 0.1,
        "model_score": None,
        "blend_score": None,
        "selected_by": "bandit",
        "confidence": None,
        "explored": False,
        "model_version": None,
        "treatment_group": "treatment",
        "seed": 1,
        "note": "test",
        "idempotency_key": None,
    }


_ARMS: dict[int, int] = {}


def _arm(campaign_id: int) -> int:
    from pipelines.db import get_engine

    if campaign_id not in _ARMS:
        _ARMS[campaign_id] = _count(
            get_engine(), "select min(arm_id) from ops.arms where campaign_id = :c", c=campaign_id
        )
    return _ARMS[campaign_id]


def _row(engine: sa.Engine, decision_id: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select * from ops.decisions where decision_id = :d"), {"d": decision_id}
        ).one()


def _params(engine: sa.Engine, decision_id: str) -> dict:
    """The spool payload of a logged decision (as the worker spooled it)."""
    row = _row(engine, decision_id)._mapping
    keep = set(_decision("x", 1, "x")) - {"day"}
    return {k: row[k] for k in keep} | {"day": row["decision_date"]}
