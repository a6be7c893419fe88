"""POST /feedback over real HTTP against PostgreSQL: exactly-once events under resends and
concurrent senders, per-event results, 404 for a single unknown decision, and matured feedback
reaching every worker's statistics within 5 seconds."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from tests.api.conftest import auth, service_env, start_server, stop_server
from tests.api.realtime_world import add_world, fresh_world, optimize, wait_until_served

CUSTOMERS = [f"fb-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def decisions(server, keys, engine: sa.Engine) -> list[dict]:
    fresh_world(engine)
    campaign_id = add_world(engine, CUSTOMERS)
    wait_until_served(server, keys["service"], campaign_id)
    answers = [optimize(server, keys["service"], campaign_id, c) for c in CUSTOMERS[:4]]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [a.json() for a in answers]


def event(event_id: str, decision: dict, event_type: str = "click", **extra) -> dict:
    return {
        "event_id": event_id,
        "decision_id": decision["decision_id"],
        "event_type": event_type,
        "occurred_at": decision["decided_at"],
    } | extra


def send(server, token: str, body) -> httpx.Response:
    return httpx.post(f"{server.url}/feedback", json=body, headers=auth(token), timeout=60)


def _landed(engine: sa.Engine, prefix: str) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select * from raw.interactions where event_id like :p order by event_id"),
            {"p": prefix + "%"},
        ).all()


def test_an_event_is_stored_then_a_resend_is_a_duplicate(server, keys, decisions, engine) -> None:
    body = event("one-1", decisions[0], "conversion", value=120.5)
    first, again = send(server, keys["service"], body), send(server, keys["service"], body)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["results"] == [
        {"event_id": "one-1", "status": "stored", "message": None, "outside_window": False}
    ]
    assert (first.json()["accepted"], first.json()["counts"]) == (True, {"stored": 1})
    assert again.json()["results"][0]["status"] == "duplicate" and again.json()["accepted"]
    rows = _landed(engine, "one-")
    assert len(rows) == 1
    row = rows[0]
    assert (row.source, row.customer_id, row.arm_id) == ("realtime", CUSTOMERS[0], decisions[0]["arm_id"])
    assert float(row.value) == 120.5
    changed = send(server, keys["service"], body | {"value": 99})
    assert changed.status_code == 200 and changed.json()["results"][0]["status"] == "conflict"
    assert "value 120.50 there, 99.00 here" in changed.json()["results"][0]["message"]
    assert not changed.json()["accepted"]


def test_a_list_gets_results_per_event_and_a_single_unknown_decision_is_404(server, keys, decisions) -> None:
    late = (datetime.fromisoformat(decisions[1]["decided_at"]) + timedelta(days=30)).isoformat()
    batch = [
        event("list-1", decisions[1], "open"),
        {"event_id": "list-2", "decision_id": "rt-nope", "event_type": "open", "occurred_at": late},
        event("list-3", decisions[1], "click", occurred_at=late),
        event("list-1", decisions[1], "open"),
    ]
    r = send(server, keys["service"], batch)
    assert r.status_code == 200, r.text
    got = [(x["event_id"], x["status"], x["outside_window"]) for x in r.json()["results"]]
    assert got == [
        ("list-1", "stored", False),
        ("list-2", "unknown_decision", False),
        ("list-3", "stored", True),  # stored, marked, not learned from
        ("list-1", "duplicate", False),
    ]
    assert r.json()["counts"] == {"stored": 2, "unknown_decision": 1, "duplicate": 1}
    single = send(server, keys["service"], batch[1])
    assert single.status_code == 404 and "unknown decision_id rt-nope" in single.json()["detail"]
    bad = send(server, keys["service"], [batch[0], {**batch[0], "event_type": "purchase"}])
    assert bad.status_code == 422 and bad.json()["detail"].startswith("events.1.event_type"), bad.text
    naive = send(server, keys["service"], {**batch[0], "occurred_at": "2026-12-01T10:00:00"})
    assert naive.status_code == 422 and naive.json()["detail"].startswith("event.occurred_at"), naive.text
    assert send(server, keys["service"], []).status_code == 422


def test_sixteen_concurrent_senders_with_overlapping_ids_give_exact_counts(
    server, keys, decisions, engine
) -> None:
    """80 distinct events; each of 16 senders posts 25 of them (seeded draws, so ids overlap) in
    lists of 5: each distinct id is stored exactly once, every other copy is a duplicate."""
    pool = [event(f"conc-{i:03d}", decisions[i % 4], ("open", "click", "view")[i % 3]) for i in range(80)]
    plans = [random.Random(100 + s).sample(range(80), 25) for s in range(16)]
    results: list[list[dict]] = [[] for _ in plans]
    errors: list[str] = []
    start = threading.Barrier(len(plans))

    def sender(n: int) -> None:
        with httpx.Client(base_url=server.url, headers=auth(keys["service"]), timeout=60) as client:
            start.wait()
            for k in range(0, 25, 5):
                r = client.post("/feedback", json=[pool[i] for i in plans[n][k : k + 5]])
                if r.status_code != 200:
                    errors.append(r.text)
                else:
                    results[n].extend(r.json()["results"])

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    sent = Counter(i for plan in plans for i in plan)
    statuses = Counter(r["status"] for rs in results for r in rs)
    assert statuses == {"stored": len(sent), "duplicate": sum(sent.values()) - len(sent)}
    stored_ids = Counter(r["event_id"] for rs in results for r in rs if r["status"] == "stored")
    assert set(stored_ids.values()) == {1}  # each id stored by exactly one of the senders
    assert [r.event_id for r in _landed(engine, "conc-")] == sorted(f"conc-{i:03d}" for i in sent)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_matured_feedback_reaches_every_worker_within_5_seconds(
    keys, engine, database_url, test_home, tmp_path
) -> None:
    """Maturity is by UTC day (a decision of day d with a 0-day window matures at d + 1, 00:00), so
    the test needs the service's midnight within reach: REALTIME_CLOCK_OFFSET_SECONDS (a setting
    for tests only) shifts the service's clock to ``margin`` seconds before a midnight at launch
    (a second launch with a margin from the measured start-up time if the first started too late).
    Greedy (epsilon 0, unpooled) over two arms with no statistics ties: each arm 0.5. One decision
    converts before midnight; within 5 s of midnight, 6 decisions in a row of that segment (over
    two workers) take that arm with propensity 1 (posterior mean 2/3 against 1/2)."""
    fresh_world(engine)
    campaign_id = add_world(
        engine,
        ["mat-1"],
        parameters={"offer_type": ["credit_card", "loan"], "channel": ["email"]},
        policy={"name": "epsilon_greedy", "params": {"epsilon": 0.0, "pooled": False, "top_k": 1}},
        attribution_window_days=0,
    )
    margin = 20.0
    for attempt in range(2):
        real_now = datetime.now(UTC)
        midnight = datetime.combine(real_now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        offset = (midnight - timedelta(seconds=margin) - real_now).total_seconds()
        env = service_env(database_url, test_home, REALTIME_CLOCK_OFFSET_SECONDS=str(offset))
        server = start_server(env, tmp_path / f"server-{attempt}.log", workers=2)
        started = (datetime.now(UTC) - real_now).total_seconds()
        try:
            first = optimize(server, keys["service"], campaign_id, "mat-1", idempotency_key=f"m{attempt}")
            assert first.status_code == 200, first.text
            decided = first.json()
            if decided["decided_at"].startswith(real_now.date().isoformat()):
                _check_learned_after_midnight(server, keys["service"], campaign_id, decided, midnight, offset)
                return
        finally:
            stop_server(server)
        with engine.begin() as conn:  # the late decision matures a day later: not in the way
            conn.execute(sa.text("delete from ops.decisions where campaign_id = :c"), {"c": campaign_id})
        margin = 2 * started + 10
    pytest.fail(f"the service took {started:.0f} s to start: its midnight passed before a decision")


def _check_learned_after_midnight(server, token, campaign_id, decided, midnight, offset) -> None:
    assert decided["propensity"] == 0.5  # a tie: nothing learned yet
    fed = send(server, token, event("mat-conv", decided, "conversion"))
    assert fed.json()["results"][0]["status"] == "stored"
    service_midnight = midnight - timedelta(seconds=offset)  # on the test's (real) clock
    time.sleep(max(0.0, (service_midnight - datetime.now(UTC)).total_seconds()))
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while True:
        after = [optimize(server, token, campaign_id, "mat-1").json() for _ in range(6)]
        if all((a["arm_id"], a["propensity"]) == (decided["arm_id"], 1.0) for a in after):
            break
        assert datetime.now(UTC) < deadline, f"not learned within 5 s of maturity: {after}"
        time.sleep(0.2)
    seen = (datetime.now(UTC) - service_midnight).total_seconds()
    print(f"matured feedback seen in 6 decisions in a row {seen:.1f} s after maturity")
