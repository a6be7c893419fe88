"""Deciding while PostgreSQL is unreachable: one worker's circuit, spool and memory of eligibility.

A decision needs the customer's consent per channel, suppressions and frequency caps, which live
in the database. Offline, the worker uses the eligibility row it read last for the (campaign,
customer) -- :func:`pipelines.realtime.optimize.eligibility_row`, remembered on every online
decision -- if it is younger than ``realtime_eligibility_cache_seconds`` and of today, with its
send counts raised by this worker's own decisions since. A customer not remembered gets a 503:
a bank must not send without known consent. The choice itself is the online one (snapshot +
model, same seed), the decision is spooled (pipelines.realtime.spool) before the answer, and its
fallback_reason says so.

Limits, by construction: sends made meanwhile by other workers or the batch, and suppressions or
consent withdrawals recorded during the outage, are not seen until the database returns.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable
from pipelines.realtime.circuit import Circuit, one_line
from pipelines.realtime.decision_log import RealtimeDecision, decision_params
from pipelines.realtime.feedback import EventResult
from pipelines.realtime.optimize import judge_eligibility, key_used_elsewhere, make_decision
from pipelines.realtime.snapshot import CampaignState
from pipelines.realtime.spool import DECISION, FEEDBACK, Spool
from pipelines.settings import Settings

log = logging.getLogger(__name__)

SPOOLED = "spooled"  # a feedback event's status while the database is down
_STRIPES = 64  # per-customer locks: a customer's cap check and its send count move together


def database_tag(url: sa.URL) -> str:
    """The spool folder's name for a database: a shared home never replays into another one."""
    where = f"{url.host}:{url.port}/{url.database}"
    return f"{url.database}-" + hashlib.sha256(where.encode()).hexdigest()[:10]


class EligibilityCache:
    """customer -> {campaign_id: (row, day, read at)}, least recently used evicted first."""

    def __init__(self, size: int, ttl_seconds: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.size, self.ttl = size, ttl_seconds
        self._clock = clock
        self._rows: OrderedDict[str, dict[int, tuple[dict[str, Any], date, datetime, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, campaign_id: int, customer_id: str, row: dict[str, Any], day: date) -> None:
        if self.size == 0:
            return
        entry = (row, day, datetime.now(UTC), self._clock())
        with self._lock:
            self._rows.setdefault(customer_id, {})[campaign_id] = entry
            self._rows.move_to_end(customer_id)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def get(self, campaign_id: int, customer_id: str, day: date) -> tuple[dict[str, Any], datetime] | None:
        """A copy of the row and when it was read, if fresh and of ``day`` (caps count by day)."""
        with self._lock:
            entry = self._rows.get(customer_id, {}).get(campaign_id)
        if entry is None:
            return None
        row, row_day, read_at, read_clock = entry
        if row_day != day or self._clock() - read_clock > self.ttl:
            return None
        return dict(row), read_at

    def count_send(self, customer_id: str, day: date) -> None:
        """One more send today: caps count every campaign's sends, so every row of the customer."""
        with self._lock:
            for row, row_day, _, _ in self._rows.get(customer_id, {}).values():
                if row_day == day:
                    row["sends_7d"] = int(row["sends_7d"] or 0) + 1
                    row["last_send"] = day


class RecentDecisions:
    """(campaign, idempotency key) -> the decision this worker answered: a retry gets it again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str], RealtimeDecision] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, d: RealtimeDecision) -> None:
        if d.idempotency_key is None or self.size == 0:
            return
        with self._lock:
            self._items[(d.campaign_id, d.idempotency_key)] = d
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, campaign_id: int, key: str) -> RealtimeDecision | None:
        with self._lock:
            return self._items.get((campaign_id, key))


class Offline:
    """The worker's circuit breaker, spool, eligibility cache and recent keyed decisions."""

    def __init__(self, settings: Settings, database: sa.URL) -> None:
        self.circuit = Circuit(settings.realtime_circuit_open_seconds)
        self.spool = Spool(settings.spool_dir / database_tag(database))
        self.cache = EligibilityCache(
            settings.realtime_eligibility_cache_size, settings.realtime_eligibility_cache_seconds
        )
        self.recent = RecentDecisions(settings.realtime_eligibility_cache_size)
        self._locks = [threading.Lock() for _ in range(_STRIPES)]

    # The online path tells what it read and decided.
    def remember(self, campaign_id: int, customer_id: str, row: dict[str, Any], day: date) -> None:
        self.cache.put(campaign_id, customer_id, row, day)

    def decided(self, d: RealtimeDecision) -> None:
        if not d.replayed:
            self.cache.count_send(d.customer_id, d.decided_at.astimezone(UTC).date())
            self.recent.put(d)

    def answered(self, campaign_id: int, key: str | None, customer_id: str) -> RealtimeDecision | None:
        """This worker's earlier answer to the key (replayed), or None."""
        prior = self.recent.get(campaign_id, key) if key is not None else None
        if prior is None:
            return None
        if prior.customer_id != customer_id:
            raise key_used_elsewhere(prior, customer_id)
        return replace(prior, replayed=True)

    def decide(
        self,
        state: CampaignState,
        customer_id: str,
        channels: list[str] | None,
        idempotency_key: str | None,
        decision_id: str,
        model: Any,
        note: str | None,
        now: datetime,
        *,
        log_decisions: bool = True,
    ) -> RealtimeDecision:
        """Decide without the database (see the module doc); the decision is spooled on return."""
        campaign = state.campaign
        day = now.astimezone(UTC).date()
        with self._locks[hash(customer_id) % _STRIPES]:
            prior = self.answered(campaign.campaign_id, idempotency_key, customer_id)
            if prior is not None:
                return prior
            cached = self.cache.get(campaign.campaign_id, customer_id, day)
            if cached is None:
                raise ServiceUnavailable(
                    f"the database is unavailable and this worker has no recent eligibility (consent, "
                    f"suppressions, caps) of customer {customer_id!r} for campaign {campaign.campaign_id}: "
                    "not deciding without known consent; retry later"
                )
            row, read_at = cached
            caps = campaign.spec.frequency_caps
            last = row["last_send"]
            row["under_caps"] = row["sends_7d"] < caps.max_per_week and (
                last is None or last <= day - timedelta(days=caps.min_days_between)
            )
            customer, allowed = judge_eligibility(campaign, row, channels, day)
            why = f"database unavailable: eligibility from the local cache of {read_at:%H:%M:%S}"
            why += "; decision spooled"
            note = f"{why}; {note}" if note else why
            decision = make_decision(state, customer, allowed, decision_id, idempotency_key, model, note, now)
            if log_decisions:
                self._spool(DECISION, decision_params(decision, str(row["segment"]), day), now)
            self.cache.count_send(customer_id, day)
            self.recent.put(decision)
            return decision

    def spool_feedback(self, events: list[dict[str, Any]], now: datetime) -> list[EventResult]:
        """Spool a batch of (validated) events; each result says ``spooled``."""
        self._spool(FEEDBACK, {"events": events}, now)
        message = "the database is unavailable: stored locally, recorded when it returns"
        return [EventResult(str(e["event_id"]), SPOOLED, message) for e in events]

    def _spool(self, kind: str, payload: dict[str, Any], now: datetime) -> None:
        try:
            self.spool.add(kind, payload, now)
        except (sqlite3.Error, OSError) as exc:  # a full disk: no answer rather than a lost one
            log.error("cannot spool a %s: %s", kind, exc)
            raise ServiceUnavailable(
                f"the database is unavailable and the local spool failed ({exc})"
            ) from None

    def tick(self, engine: sa.Engine, now: datetime) -> None:
        """The background thread's step: probe an open circuit when due; with the database up,
        replay the spools (this worker's and dead workers') and close the circuit."""
        if self.circuit.is_open():
            if not self.circuit.probe_due():
                return
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("select 1"))
            except Exception as exc:  # noqa: BLE001 - still down (or the pool is): stay open
                self.circuit.trip(one_line(exc))
                log.info("database still unreachable: %s", self.circuit.reason)
                return
        try:
            done = self.spool.replay(engine, now)
        except sa.exc.DBAPIError as exc:
            if self.circuit.trip_on(exc):
                return
            log.error("spool replay failed, retrying next tick: %s", one_line(exc))
            done = None
        except Exception as exc:  # noqa: BLE001 - a bad entry must not keep the circuit open
            log.error("spool replay failed, retrying next tick: %s", type(exc).__name__)
            done = None
        if done and sum(done.values()):
            log.info("replayed %d decisions and %d feedback batches", done[DECISION], done[FEEDBACK])
        if self.circuit.is_open():
            log.info("database reachable again: circuit closed")
            self.circuit.close()

    def problems(self) -> list[str]:
        """What /readyz reports of this worker (no I/O)."""
        decisions, batches = self.spool.pending[DECISION], self.spool.pending[FEEDBACK]
        spooled = f"{decisions} decisions and {batches} feedback batches spooled in this worker"
        status = self.circuit.status()
        if status:
            return [f"{status}: deciding for recently seen customers only; {spooled}"]
        return [f"{spooled}, not yet replayed"] if decisions or batches else []

    def close(self) -> None:
        self.spool.close()
