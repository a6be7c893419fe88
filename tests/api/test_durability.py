"""No acknowledged decision is lost, over real HTTP with real processes:

- kill -9 of the whole server (uvicorn and its 2 workers) under load from 8 clients, then a
  restart: every 200 is in ops.decisions, once; the requests cut off by the kill, retried with
  their idempotency keys, are logged once too -- decisions logged == decisions acknowledged.
- PostgreSQL stopped (``pg_ctl stop -m immediate``, our own instance, never the shared one) under
  load: recently seen customers keep getting 200s decided from the local cache and spooled,
  unknown customers 503, /readyz says degraded naming the circuit, feedback is spooled (202);
  PostgreSQL restarted: within a bounded time every spooled decision and event is in the
  database exactly once and /readyz is ok.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipelines.serve_process import ServerProcess as Server
from tests.api.conftest import auth, free_port, service_env, start_server
from tests.api.realtime_world import add_world, optimize, wait_until_served

pytestmark = pytest.mark.slow

CLIENTS = 8
LOAD_SECONDS = 3.0
KILL_AFTER = 60  # answers before the kill
START_SECONDS = 180  # two workers importing MLflow on a loaded 2-core machine


@dataclass
class Load:
    """Client threads sending /optimize, each for its own customers, until stopped."""

    server: Server
    token: str
    campaign_id: int
    customers: list[str]
    clients: int = CLIENTS
    answers: list[tuple[str, str, int, dict]] = field(default_factory=list)  # customer, key, status, body
    unanswered: list[tuple[str, str]] = field(default_factory=list)  # customer, key: cut off
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, repeat: bool = False) -> list[threading.Thread]:
        def client(mine: list[str]) -> None:
            i = 0
            while not self.stop.is_set() and (repeat or i < len(mine)):
                customer = mine[i % len(mine)]
                key = f"{customer}-{i}-{uuid.uuid4().hex[:6]}" if repeat else f"key-{customer}"
                i += 1
                try:
                    r = optimize(self.server, self.token, self.campaign_id, customer, idempotency_key=key)
                except httpx.HTTPError:
                    with self._lock:
                        self.unanswered.append((customer, key))
                    if not repeat:
                        return  # the server is gone
                    continue
                with self._lock:
                    self.answers.append((customer, key, r.status_code, r.json()))

        threads = [
            threading.Thread(target=client, args=(self.customers[t :: self.clients],), daemon=True)
            for t in range(self.clients)
        ]
        for t in threads:
            t.start()
        return threads


def _kill_group(server: Server) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.process.wait(timeout=30)


def _logged(engine: sa.Engine, campaign_id: int) -> dict[str, str]:
    """decision_id -> customer of the campaign's logged decisions."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select decision_id, customer_id from ops.decisions where campaign_id = :c"),
            {"c": campaign_id},
        )
        return {r.decision_id: r.customer_id for r in rows}


def test_kill_9_under_load_loses_no_acknowledged_decision(
    engine, database_url, test_home, keys, server, tmp_path
) -> None:
    # ``server`` (the session's one-worker service) has created the registry's tables: two workers
    # starting first on a fresh registry race on them (a start-up problem of its own, not this one).
    customers = [f"k9-{i:04d}" for i in range(4000)]  # more than the load reaches: distinct customers
    campaign_id = add_world(engine, customers)
    env = service_env(database_url, test_home)
    victim = start_server(env, tmp_path / "before.log", workers=2, new_session=True, timeout=START_SECONDS)
    try:
        wait_until_served(victim, keys["service"], campaign_id)
        load = Load(victim, keys["service"], campaign_id, customers)
        threads = load.start()
        deadline = time.monotonic() + 30  # bounded, however slow the shared machine is
        while len(load.answers) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.05)
        _kill_group(victim)  # mid-request: some requests are cut off
        for t in threads:
            t.join(timeout=60)
    finally:
        _kill_group(victim)
    assert [a for a in load.answers if a[2] != 200] == []
    acked = {body["decision_id"]: customer for customer, _, _, body in load.answers}
    assert len(acked) == len(load.answers) >= KILL_AFTER // 2, len(load.answers)  # distinct decisions
    assert len(load.unanswered) <= CLIENTS
    logged = _logged(engine, campaign_id)
    assert set(acked) <= set(logged), sorted(set(acked) - set(logged))[:3]  # every 200 is logged
    # Logged but cut off before the answer: only the requests in flight at the kill.
    assert set(logged.values()) - set(acked.values()) <= {c for c, _ in load.unanswered}

    again = start_server(env, tmp_path / "after.log", workers=2, new_session=True, timeout=START_SECONDS)
    try:  # the clients retry what was cut off, with the same keys
        for customer, key in load.unanswered:
            r = optimize(again, keys["service"], campaign_id, customer, idempotency_key=key)
            assert r.status_code == 200, r.text
            acked[r.json()["decision_id"]] = customer
    finally:
        _kill_group(again)
    logged = _logged(engine, campaign_id)
    assert logged == acked  # decisions logged == decisions acknowledged, no duplicates
    assert len(set(logged.values())) == len(logged)


@dataclass
class OwnPostgres:
    """A PostgreSQL instance of this test alone (trust auth, loopback, a free port); run as the
    postgres user when the tests run as root (initdb refuses root)."""

    bin: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str, check: bool = True) -> None:
        command = [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", *args]
        subprocess.run(command, check=check, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", options, "-l", str(self.root / "server.log"), "start")

    def stop(self, check: bool = True) -> None:
        self.ctl("-m", "immediate", "stop", check=check)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="campaignopt-durability-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    pg = OwnPostgres(found[-1].parent, root, free_port(), as_user)
    try:
        initdb = [*as_user, str(pg.bin / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres"]
        subprocess.run([*initdb, "--no-sync"], check=True, capture_output=True, timeout=120)
        pg.start()
        yield pg
    finally:
        pg.stop(check=False)
        shutil.rmtree(root, ignore_errors=True)


def _readyz(server: Server) -> httpx.Response:
    return httpx.get(server.url + "/readyz", timeout=30)


def _events(decision_ids: list[str], tag: str) -> list[dict]:
    return [
        {
            "event_id": f"{tag}-{i}",
            "decision_id": d,
            "event_type": "click",
            "occurred_at": "2026-12-01T10:00:00Z",
        }
        for i, d in enumerate(decision_ids)
    ]


def test_postgres_down_under_load_then_back(own_postgres, database_url, tmp_path) -> None:
    from pipelines import migrate
    from pipelines.apikeys import create_key

    db = sa.create_engine(own_postgres.url, pool_pre_ping=True)  # its connections die with the server
    migrate.upgrade(db)
    warm = [f"warm-{i:02d}" for i in range(64)]  # caps of 100 a week: far from reached by the load
    campaign_id = add_world(db, [*warm, "stranger"])
    token = create_key(db, "durability-service", "service")[1]
    env = service_env(
        own_postgres.url,
        tmp_path / "home",
        MLFLOW_TRACKING_URI=database_url,  # the registry stays up: the outage is the decision database's
        REALTIME_REFRESH_SECONDS="0.5",
        REALTIME_CIRCUIT_OPEN_SECONDS="1",
    )
    server = start_server(env, tmp_path / "server.log", workers=1, new_session=True, timeout=START_SECONDS)
    try:
        wait_until_served(server, token, campaign_id)
        warmed = [optimize(server, token, campaign_id, c) for c in warm]  # remembered eligibility
        assert [r.status_code for r in warmed] == [200] * len(warm), warmed[0].text
        acked = {r.json()["decision_id"] for r in warmed}
        first_events = _events([r.json()["decision_id"] for r in warmed[:2]], "up")
        up = httpx.post(server.url + "/feedback", json=first_events, headers=auth(token), timeout=30)
        assert up.status_code == 200 and up.json()["counts"] == {"stored": 2}, up.text

        load = Load(server, token, campaign_id, warm, clients=4)
        threads = load.start(repeat=True)
        time.sleep(1.0)
        own_postgres.stop()  # under load
        down_since = time.monotonic()
        time.sleep(LOAD_SECONDS)
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
        assert load.answers and all(s == 200 for _, _, s, _ in load.answers), [
            a for a in load.answers if a[2] != 200
        ][:3]
        assert load.unanswered == []
        degraded = [b for _, _, _, b in load.answers if (b["fallback_reason"] or "").startswith("database")]
        assert len(degraded) >= 10, len(degraded)
        for body in degraded:
            assert body["fallback_reason"].startswith(
                "database unavailable: eligibility from the local cache of "
            )
            assert "; decision spooled" in body["fallback_reason"]
        acked |= {b["decision_id"] for _, _, _, b in load.answers}

        # Still down: a retried key is the same decision; an unknown customer is refused.
        customer, key, _, body = load.answers[-1]
        retry = optimize(server, token, campaign_id, customer, idempotency_key=key)
        assert retry.status_code == 200 and retry.json()["decision_id"] == body["decision_id"], retry.text
        assert retry.json()["replayed"] is True
        stranger = optimize(server, token, campaign_id, "stranger")
        assert stranger.status_code == 503, stranger.text
        assert "no recent eligibility (consent, suppressions, caps) of customer 'stranger'" in stranger.text
        ready = _readyz(server)
        assert ready.status_code == 503 and ready.json()["status"] == "degraded", ready.text
        circuit = [r for r in ready.json()["reasons"] if r.startswith("database circuit open since")]
        assert circuit and "decisions and 0 feedback batches spooled in this worker" in circuit[0], ready.text
        spooled_events = _events(sorted(b["decision_id"] for b in degraded[:3]), "down") + first_events
        spooled = httpx.post(server.url + "/feedback", json=spooled_events, headers=auth(token), timeout=30)
        assert spooled.status_code == 202, spooled.text
        assert spooled.json()["accepted"] is True and spooled.json()["counts"] == {"spooled": 5}
        assert time.monotonic() - down_since < 30  # the outage never blocked requests on timeouts

        own_postgres.start()
        back = time.monotonic()
        expected_events = {e["event_id"] for e in spooled_events}
        while True:
            logged = _logged(db, campaign_id)
            with db.connect() as conn:
                stored = conn.execute(
                    sa.text("select event_id from raw.interactions where event_id = any(:e)"),
                    {"e": sorted(expected_events)},
                ).scalars()
                stored = set(stored)
            ready = _readyz(server)
            if set(logged) >= acked and stored == expected_events and ready.status_code == 200:
                break
            assert time.monotonic() - back < 30, (len(acked - set(logged)), stored, ready.text)
            time.sleep(0.5)
        assert set(logged) == acked  # each spooled decision once, nothing else
        with db.connect() as conn:
            n_events = conn.execute(
                sa.text("select count(*) from raw.interactions where event_id = any(:e)"),
                {"e": sorted(expected_events)},
            ).scalar_one()
        assert n_events == len(expected_events)
    finally:
        _kill_group(server)
        db.dispose()


def test_logging_off_is_a_benchmark_setting_that_readyz_reports(launch, engine, keys) -> None:
    campaign_id = add_world(engine, ["nolog-1"])
    server = launch(REALTIME_LOG_DECISIONS="false")
    wait_until_served(server, keys["service"], campaign_id)
    r = optimize(server, keys["service"], campaign_id, "nolog-1")
    assert r.status_code == 200, r.text
    assert r.json()["decision_id"] not in _logged(engine, campaign_id)  # decided, not inserted
    ready = _readyz(server)
    assert (
        ready.status_code == 503 and "decision logging is off (benchmark setting)" in ready.json()["reasons"]
    )
