"""Real-time feedback: interaction events land where ingested events land (raw.interactions),
with source 'realtime', idempotent by event_id.

Exactly-once under retries and concurrent senders: one ``insert ... on conflict (event_id) do
nothing`` per call; an event not inserted is compared with the landed one (as the file ingest
does, pipelines/ingest/loader.py): same content -> 'duplicate', other content -> 'conflict'
naming the differing fields. The customer, campaign and arm come from the logged decision; an
unknown decision gives 'unknown_decision'. An event outside its decision's attribution window
(pipelines/attribution.py: a UTC day outside [d, d + w] for a window of w days, a time outside
[decided_at, decided_at + window] for minutes or hours) is stored and marked ``outside_window``
(the marts never attribute it, and nor does the snapshot). ``logical_date`` is the UTC day the
event was received, so the daily build of that day sees it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa

from pipelines.attribution import AttributionWindow, stored_window
from pipelines.domain import EVENT_TYPES

SOURCE_FILE = "realtime:feedback"  # raw.interactions.source_file of every real-time event
MAX_ID_LENGTH = 200
MAX_VALUE = Decimal("999999999999.99")  # numeric(14, 2)

STORED, DUPLICATE, CONFLICT, UNKNOWN_DECISION, INVALID = (
    "stored",
    "duplicate",
    "conflict",
    "unknown_decision",
    "invalid",
)


@dataclass(frozen=True)
class FeedbackEvent:
    event_id: str
    decision_id: str
    event_type: str
    occurred_at: datetime
    value: float | None = None


@dataclass(frozen=True)
class EventResult:
    event_id: str
    status: str  # stored | duplicate | conflict | unknown_decision | invalid
    message: str | None = None
    outside_window: bool = False  # stored but not learned from

    @property
    def ok(self) -> bool:
        return self.status in (STORED, DUPLICATE)


def record_events(
    engine: sa.Engine,
    events: Iterable[FeedbackEvent | Mapping[str, Any]],
    *,
    now: datetime,
    source_file: str = SOURCE_FILE,
) -> list[EventResult]:
    """Store events (one or many, in one transaction); one result per event, in input order.

    ``source_file`` names the front door in raw.interactions.source_file (the stream consumer
    passes ``stream:<name>``); the source stays 'realtime' either way."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    items = [e if isinstance(e, FeedbackEvent) else _from_mapping(e) for e in events]
    results: list[EventResult | None] = [None] * len(items)
    rows: dict[str, dict[str, Any]] = {}  # event_id -> the first valid row of the call
    repeats: list[tuple[int, dict[str, Any]]] = []
    for i, event in enumerate(items):
        row, problem = _checked(event)
        if problem is not None:
            results[i] = EventResult(str(getattr(event, "event_id", "")), INVALID, problem)
        elif row["event_id"] in rows:
            repeats.append((i, row))
        else:
            rows[row["event_id"]] = row | {"pos": i}
    with engine.begin() as conn:
        decisions = _decisions(conn, {r["decision_id"] for r in rows.values()})
        landing = []
        for row in rows.values():
            decision = decisions.get(row["decision_id"])
            if decision is None:
                message = f"event {row['event_id']}: unknown decision_id {row['decision_id']}"
                results[row["pos"]] = EventResult(row["event_id"], UNKNOWN_DECISION, message)
                continue
            row["outside_window"] = not decision.window.attributes(
                decision.decision_date, decision.decided_at, row["occurred_at"]
            )
            row.update(
                customer_id=decision.customer_id, campaign_id=decision.campaign_id, arm_id=decision.arm_id
            )
            landing.append(row)
        inserted = _insert(conn, landing, now, source_file)
        # Events not inserted, and repeats within the call, are compared with the row landed now.
        compare = {r["event_id"] for r in landing if r["event_id"] not in inserted}
        compare |= {row["event_id"] for _, row in repeats}
        landed = _landed(conn, sorted(compare))
        for row in landing:
            results[row["pos"]] = _result(row, row["event_id"] in inserted, landed.get(row["event_id"]))
    for i, row in repeats:
        first_result = results[rows[row["event_id"]]["pos"]]
        if first_result is not None and first_result.status == UNKNOWN_DECISION:
            results[i] = first_result
        else:
            results[i] = _result(row, False, landed.get(row["event_id"]))
    return [r for r in results if r is not None]


def _from_mapping(event: Mapping[str, Any]) -> FeedbackEvent:
    occurred = event.get("occurred_at")
    if isinstance(occurred, str):
        try:
            occurred = datetime.fromisoformat(occurred)
        except ValueError:
            pass
    return FeedbackEvent(
        event_id=event.get("event_id"),  # type: ignore[arg-type]
        decision_id=event.get("decision_id"),  # type: ignore[arg-type]
        event_type=event.get("event_type"),  # type: ignore[arg-type]
        occurred_at=occurred,  # type: ignore[arg-type]
        value=event.get("value"),
    )


def _checked(e: FeedbackEvent) -> tuple[dict[str, Any], str | None]:
    """The row to land, or the reason it cannot (one line naming the field)."""
    for name in ("event_id", "decision_id"):
        value = getattr(e, name)
        if not isinstance(value, str) or not value.strip():
            return {}, f"{name}: must be a non-empty text"
        if len(value) > MAX_ID_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return {}, f"{name}: at most {MAX_ID_LENGTH} printable characters"
        surrogates = [ch for ch in value if 0xD800 <= ord(ch) <= 0xDFFF]  # JSON's "\ud800": no UTF-8
        if surrogates:
            return {}, f"{name}: holds a lone surrogate (U+{ord(surrogates[0]):04X}), which is not text"
    where = f"event {e.event_id}: "
    if e.event_type not in EVENT_TYPES:
        return {}, where + f"event_type {e.event_type!r} is not one of {', '.join(EVENT_TYPES)}"
    if not isinstance(e.occurred_at, datetime) or e.occurred_at.tzinfo is None:
        return {}, where + "occurred_at: must be a date-time with a time zone"
    value = None
    if e.value is not None:
        if isinstance(e.value, bool) or not isinstance(e.value, int | float | Decimal):
            return {}, where + "value: must be a number"
        if isinstance(e.value, float) and not math.isfinite(e.value):
            return {}, where + "value: must be a finite number"
        value = Decimal(str(e.value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        if value < 0 or value > MAX_VALUE:
            return {}, where + f"value: must be between 0 and {MAX_VALUE}, got {e.value}"
    row = {
        "event_id": e.event_id,
        "decision_id": e.decision_id,
        "event_type": e.event_type,
        "value": value,
        "occurred_at": e.occurred_at.astimezone(UTC),
    }
    return row, None


@dataclass(frozen=True)
class _Decision:
    customer_id: str
    campaign_id: int
    arm_id: int
    decision_date: Any
    decided_at: datetime
    window: AttributionWindow


def _decisions(conn: sa.Connection, ids: set[str]) -> dict[str, _Decision]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.text(
            # The window as the marts read it (stg_ops__campaigns): the definition's, else the column.
            """select d.decision_id, d.customer_id, d.campaign_id, d.arm_id, d.decision_date,
                      d.decided_at, c.definition ->> 'attribution_window' as window_text,
                      coalesce(cast(c.definition ->> 'attribution_window_days' as integer),
                               c.attribution_window_days) as window_days
               from ops.decisions d join ops.campaigns c on c.campaign_id = d.campaign_id
               where d.decision_id = any(:ids)"""
        ),
        {"ids": sorted(ids)},
    )
    return {
        r.decision_id: _Decision(
            r.customer_id,
            r.campaign_id,
            r.arm_id,
            r.decision_date,
            r.decided_at,
            stored_window(r.window_text, r.window_days),
        )
        for r in rows
    }


_COLUMNS = (
    "event_id",
    "decision_id",
    "customer_id",
    "campaign_id",
    "arm_id",
    "event_type",
    "value",
    "occurred_at",
    "outside_window",
)
_TYPES = ("text", "text", "text", "integer", "integer", "text", "numeric", "timestamptz", "boolean")


def _insert(conn: sa.Connection, rows: list[dict[str, Any]], now: datetime, source_file: str) -> set[str]:
    """Insert the rows whose event_id is new (in event_id order, so concurrent senders of
    overlapping sets lock keys in one order); returns the event_ids inserted by this call."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: r["event_id"])
    arrays = ", ".join(f"cast(:{c} as {t}[])" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    result = conn.execute(
        sa.text(
            f"""insert into raw.interactions ({", ".join(_COLUMNS)}, logical_date, source_file, source)
                select u.*, cast(:day as date), :file, 'realtime'
                from unnest({arrays}) as u({", ".join(_COLUMNS)})
                on conflict (event_id) do nothing
                returning event_id"""
        ),
        {c: [r[c] for r in rows] for c in _COLUMNS}
        | {"day": now.astimezone(UTC).date(), "file": source_file},
    )
    return {r.event_id for r in result}


def _landed(conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.text(
            """select event_id, decision_id, event_type, value, occurred_at, outside_window, source_file
               from raw.interactions where event_id = any(:ids)"""
        ),
        {"ids": ids},
    )
    return {r.event_id: r for r in rows}


def _diff(row: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    parts = []
    for name in ("decision_id", "event_type", "value", "occurred_at"):
        here, there = row[name], other[name]
        if name == "value" and here is not None and there is not None:
            same = Decimal(here) == Decimal(there)
        else:
            same = here == there
        if not same:
            parts.append(f"{name} {there} there, {here} here")
    return ", ".join(parts)


def _result(row: dict[str, Any], inserted: bool, landed: sa.Row | None) -> EventResult:
    if inserted:
        return EventResult(row["event_id"], STORED, outside_window=row["outside_window"])
    if landed is None:  # pragma: no cover - a conflict on event_id always leaves the landed row
        return EventResult(row["event_id"], CONFLICT, f"event {row['event_id']} could not be stored")
    diff = _diff(row, landed._mapping)
    if not diff:
        return EventResult(row["event_id"], DUPLICATE, outside_window=bool(landed.outside_window))
    return EventResult(
        row["event_id"],
        CONFLICT,
        f"event {row['event_id']} was already stored from {landed.source_file} with other content: {diff}",
    )
