"""The feedback stream consumer on the local Redis and the test PostgreSQL: every event lands once
whatever the replays, crashes, consumers and outages; bad messages go to the dead-letter stream.

World: campaign `stream-learn` (a 1-day attribution window) with 40 batch decisions of D, and a
fresh stream per test (deleted after it, with its dead-letter stream). Events are the JSON that
``POST /feedback`` takes, one per message in the field ``event``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable
from pipelines.realtime.feedback import record_events
from pipelines.stream import Message, RedisEventStream, dead_letter_stream_name, redis_client
from pipelines.stream.consumer import consume
from tests.pipelines.seed_rows import add_campaign, insert_decisions, truncate_all

REDIS_URL = "redis://127.0.0.1:6379/0"
CLI = str(Path(sys.executable).with_name("campaignopt"))
D = date(2026, 7, 6)
AT = datetime.combine(D, clock_time(9), tzinfo=UTC)
NOW = AT + timedelta(hours=1)
CAMPAIGN = {
    "name": "stream-learn",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan"]},
    "holdout_share": 0.0,
    "attribution_window_days": 1,
}
DECISIONS = [f"sd-{i:02d}" for i in range(40)]


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> sa.Engine:
    truncate_all(engine)
    campaign = add_campaign(engine, CAMPAIGN)
    insert_decisions(
        engine,
        [
            {"decision_id": d, "campaign_id": campaign.campaign_id, "customer_id": f"s{i:03d}",
             "arm_id": campaign.arm_ids[i % 2], "decision_date": D}
            for i, d in enumerate(DECISIONS)
        ],  # fmt: skip
    )
    return engine


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis_client(REDIS_URL)
    yield c
    c.close()


@pytest.fixture
def stream_name(client: redis.Redis) -> Iterator[str]:
    name = f"test:feedback:{uuid.uuid4().hex[:10]}"
    yield name
    client.delete(name, dead_letter_stream_name(name))


def event(event_id: str, i: int, kind: str = "open", value: float | None = None) -> dict:
    e = {"event_id": event_id, "decision_id": DECISIONS[i % len(DECISIONS)], "event_type": kind,
         "occurred_at": (AT + timedelta(minutes=i)).isoformat()}  # fmt: skip
    return e | ({"value": value} if value is not None else {})


def publish(client: redis.Redis, stream: str, events: list[dict]) -> None:
    for e in events:
        client.xadd(stream, {"event": json.dumps(e)})


def landed(engine: sa.Engine, prefix: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "select event_id, decision_id, event_type, value, source, source_file "
                    "from raw.interactions where event_id like :p order by event_id"
                ),
                {"p": prefix + "%"},
            )
        ]


def pending_of(client: redis.Redis, stream: str, group: str) -> dict[str, int]:
    summary = client.xpending(stream, group)
    return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"]}


def run(stream: RedisEventStream, engine: sa.Engine, **kwargs):  # noqa: ANN201
    return consume(stream, engine, clock=lambda: NOW, **{"idle_exit_seconds": 0.3, **kwargs})


def test_events_land_once_and_a_replay_changes_nothing(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    events = [event(f"once-{i:03d}", i, "conversion" if i % 5 == 0 else "open", 80.0 if i % 5 == 0 else None)
              for i in range(30)]  # fmt: skip
    publish(client, stream_name, events)
    report = run(RedisEventStream(client, stream_name, "landing", "c1"), world, batch=7)
    assert report.messages == 30 and dict(report.statuses) == {"stored": 30} and report.dead_letters == 0
    rows = landed(world, "once-")
    assert [r[0] for r in rows] == [e["event_id"] for e in events]
    assert {(r[4], r[5]) for r in rows} == {("realtime", f"stream:{stream_name}")}
    assert [float(r[3]) if r[3] is not None else None for r in rows] == [e.get("value") for e in events]
    assert pending_of(client, stream_name, "landing") == {}

    publish(client, stream_name, events)  # the producer replays everything
    replay = run(RedisEventStream(client, stream_name, "landing", "c1"), world, batch=7)
    assert replay.messages == 30 and dict(replay.statuses) == {"duplicate": 30}
    assert landed(world, "once-") == rows
    assert pending_of(client, stream_name, "landing") == {}
    assert client.xlen(dead_letter_stream_name(stream_name)) == 0


def test_two_consumers_of_one_group_split_the_work(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    events = [event(f"split-{i:03d}", i) for i in range(200)]
    publish(client, stream_name, events)
    RedisEventStream(client, stream_name, "pair", "a")  # the group exists before either reads
    barrier, reports = threading.Barrier(2), {}

    def work(name: str) -> None:
        own = redis_client(REDIS_URL)
        stream = RedisEventStream(own, stream_name, "pair", name)
        barrier.wait()
        reports[name] = run(stream, world, batch=5)
        own.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = reports["a"], reports["b"]
    assert a.messages > 0 and b.messages > 0, (a, b)
    assert a.messages + b.messages == 200
    assert a.statuses + b.statuses == {"stored": 200}  # no message went to both
    assert [r[0] for r in landed(world, "split-")] == [e["event_id"] for e in events]
    assert pending_of(client, stream_name, "pair") == {}


def test_a_consumer_that_dies_before_acknowledging_is_taken_over_once_idle(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    events = [event(f"dead-{i:03d}", i) for i in range(10)]
    publish(client, stream_name, events)
    first = RedisEventStream(client, stream_name, "g", "first")
    taken = first.read(10, block_seconds=0)  # then it dies: never acknowledges
    assert len(taken) == 10
    # It had committed 4 of them before dying (a crash between commit and acknowledgement).
    record_events(world, [json.loads(m.fields[b"event"]) for m in taken[:4]], now=NOW)

    second = RedisEventStream(client, stream_name, "g", "second")
    too_soon = run(second, world, claim_idle_seconds=60)
    assert too_soon.messages == 0 and pending_of(client, stream_name, "g") == {"first": 10}
    time.sleep(0.3)
    late = run(second, world, claim_idle_seconds=0.2)
    assert late.claimed == 10 and dict(late.statuses) == {"stored": 6, "duplicate": 4}
    assert [r[0] for r in landed(world, "dead-")] == [e["event_id"] for e in events]
    assert pending_of(client, stream_name, "g") == {}


def test_poison_messages_are_dead_lettered_with_their_reason_and_do_not_block(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    record_events(world, [event("poison-conflict", 3, "open")], now=NOW)
    entries = [
        {"event": json.dumps(event("poison-good-1", 1))},
        {"event": "{not json"},
        {"event": b"\xff\xfe"},
        {"event": json.dumps([event("poison-in-list", 2)])},
        {"payload": json.dumps(event("poison-no-field", 2))},
        {"event": json.dumps(event("poison-bad-type", 4, "purchase"))},
        {"event": json.dumps(event("poison-unknown", 5) | {"decision_id": "no-such-decision"})},
        {"event": json.dumps(event("poison-conflict", 3, "click"))},
        {"event": json.dumps(event("poison-surrogate-\ud800", 7))},  # JSON "\ud800": not text
        {"event": json.dumps(event("poison-good-2", 6))},
    ]
    ids = [client.xadd(stream_name, e).decode() for e in entries]
    report = run(RedisEventStream(client, stream_name, "g", "c"), world, batch=4)
    assert report.messages == 10 and report.dead_letters == 8
    assert [r[0] for r in landed(world, "poison-good")] == ["poison-good-1", "poison-good-2"]
    assert pending_of(client, stream_name, "g") == {}

    dead = client.xrange(dead_letter_stream_name(stream_name))
    letters = {f[b"dead_id"].decode(): f for _, f in dead}
    assert sorted(letters) == sorted(ids[1:9])
    reasons = {i: letters[i][b"dead_reason"].decode() for i in ids[1:9]}
    assert reasons[ids[1]].startswith(f"malformed: message {ids[1]}: 'event' is not JSON text")
    assert reasons[ids[2]].startswith(f"malformed: message {ids[2]}: 'event' is not JSON text")
    assert reasons[ids[3]] == f"malformed: message {ids[3]}: 'event' is not a JSON object"
    assert reasons[ids[4]] == f"malformed: message {ids[4]} has no 'event' field (fields: payload)"
    assert reasons[ids[5]].startswith("invalid: event poison-bad-type: event_type 'purchase' is not one of")
    assert reasons[ids[6]] == "unknown_decision: event poison-unknown: unknown decision_id no-such-decision"
    assert reasons[ids[7]].startswith("conflict: event poison-conflict was already stored from")
    assert reasons[ids[8]] == "invalid: event_id: holds a lone surrogate (U+D800), which is not text"
    assert letters[ids[2]][b"event"] == b"\xff\xfe"  # the original fields, byte for byte
    assert letters[ids[4]][b"payload"] == entries[4]["payload"].encode()
    assert {f[b"dead_consumer"] for f in letters.values()} == {b"c"}

    # A message handled twice (claimed from a slow consumer) is dead-lettered once.
    again = RedisEventStream(client, stream_name, "g", "c")
    again.dead_letter(Message(ids[1], {b"event": b"{not json"}), "malformed: handled again")
    assert client.xlen(dead_letter_stream_name(stream_name)) == 8


class Gate:
    """A local port in front of the test PostgreSQL: refuses connections while shut (a database
    outage as the consumer sees it), forwards them once opened."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def shut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inbound, _ = listener.accept()
            except OSError:
                return
            outbound = socket.create_connection(self.target)
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_a_database_outage_acknowledges_nothing_and_the_events_land_after_recovery(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    url = world.url
    gate = Gate((url.host or "127.0.0.1", url.port or 5432))
    gated = sa.create_engine(url.set(host="127.0.0.1", port=gate.port), connect_args={"connect_timeout": 2})
    events = [event(f"outage-{i:03d}", i) for i in range(25)]
    publish(client, stream_name, events)
    stream = RedisEventStream(client, stream_name, "g", "c")
    outage = (
        rf"cannot reach the database at .*:{gate.port}/.*Connection refused "
        rf"\(10 message\(s\) of {stream_name} left pending\)"
    )
    with pytest.raises(ServiceUnavailable, match=outage):
        run(stream, gated, batch=10, db_wait_seconds=0)
    assert pending_of(client, stream_name, "g") == {"c": 10} and landed(world, "outage-") == []

    # The same consumer restarts while the database is still down, and it comes back after 1 s.
    result = {}
    restarted = threading.Thread(
        target=lambda: result.update(report=run(RedisEventStream(client, stream_name, "g", "c"), gated,
                                                batch=10, db_wait_seconds=30))  # fmt: skip
    )
    restarted.start()
    time.sleep(1.0)
    assert pending_of(client, stream_name, "g") == {"c": 10} and landed(world, "outage-") == []
    gate.open()
    restarted.join(60)
    gate.shut()
    gated.dispose()
    report = result["report"]
    assert report.db_retries >= 1 and report.resumed == 10 and report.messages == 25
    assert dict(report.statuses) == {"stored": 25}
    assert [r[0] for r in landed(world, "outage-")] == [e["event_id"] for e in events]
    assert pending_of(client, stream_name, "g") == {}


def test_the_command_consumes_a_bounded_run_and_says_when_redis_is_down(
    world: sa.Engine, client: redis.Redis, stream_name: str
) -> None:
    publish(client, stream_name, [event(f"cli-{i:03d}", i) for i in range(8)])
    args = [CLI, "stream", "consume", "--stream", stream_name, "--group", "g", "--consumer", "cli"]
    done = subprocess.run([*args, "--max-messages", "5", "--batch", "2", "--json"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["messages"] == 5 and summary["status_stored"] == 5 and summary["dead_letters"] == 0
    rest = subprocess.run([*args, "--idle-exit", "0.5"], capture_output=True, text=True, timeout=120)
    assert rest.returncode == 0, rest.stderr
    assert len(landed(world, "cli-")) == 8 and pending_of(client, stream_name, "g") == {}

    down = subprocess.run(args + ["--idle-exit", "0"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"})  # fmt: skip
    assert down.returncode == 3
    assert down.stderr.startswith("error: cannot reach Redis at redis://127.0.0.1:1/0:")
    assert down.stderr.count("\n") == 1 and "Traceback" not in down.stderr
