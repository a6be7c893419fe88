"""The feedback stream consumer: events from a stream land where ``POST /feedback`` lands them.

Each batch goes through :func:`pipelines.realtime.feedback.record_events` (one transaction,
``insert ... on conflict (event_id) do nothing``), with ``source_file`` ``stream:<name>``. Only
after that transaction committed are the batch's messages acknowledged, all at once:

- stored or duplicate -> acknowledged (a replay, or a re-delivery after a crash between commit
  and acknowledgement, lands nothing twice);
- not JSON, not an object, invalid, unknown decision, or a conflict with the landed event ->
  dead-lettered with the reason (``EventStream.dead_letter``: recorded and acknowledged), so one
  bad message never blocks the stream; so is a message whose content the database refuses past
  record_events' checks (the batch rolls back, is landed message by message, and the one that
  fails alone is dead-lettered as ``unlandable``);
- the database unreachable -> nothing acknowledged: the batch is retried with a growing pause for
  up to ``db_wait_seconds``, then :class:`~pipelines.errors.ServiceUnavailable` is raised with
  the messages still pending. A restart of the same consumer resumes with them
  (``EventStream.pending``); another consumer claims them once idle for ``claim_idle_seconds``.

Order of work per round: this consumer's own pending messages (after a restart), then messages
other consumers left idle, then new ones.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import ServiceUnavailable
from pipelines.realtime.feedback import CONFLICT, INVALID, UNKNOWN_DECISION, record_events
from pipelines.stream.interface import EventStream, Message

log = logging.getLogger(__name__)

EVENT_FIELD = b"event"
MALFORMED = "malformed"
UNLANDABLE = "unlandable"
MAX_BLOCK_SECONDS = 2.0  # a read wakes up this often to check the idle and stop conditions
_DEAD_STATUSES = (INVALID, UNKNOWN_DECISION, CONFLICT)
# Errors one message's content could raise past record_events' checks (which now refuse the lone
# surrogates that first showed it): the batch is split to find the message, which is dead-lettered.
# A guard: no content known today reaches it, so no test does.
_DATA_ERRORS = (UnicodeError, sa.exc.DataError, sa.exc.IntegrityError)


@dataclass
class ConsumeReport:
    """What one run did: messages taken, per landing status, dead letters per reason kind."""

    messages: int = 0
    claimed: int = 0  # of them, taken over from another consumer
    resumed: int = 0  # of them, this consumer's own pending from before
    statuses: Counter[str] = field(default_factory=Counter)  # stored, duplicate, + dead kinds
    dead_letters: int = 0
    db_retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "claimed": self.claimed,
            "resumed": self.resumed,
            "dead_letters": self.dead_letters,
            "db_retries": self.db_retries,
            **{f"status_{k}": v for k, v in sorted(self.statuses.items())},
        }


def parse_message(message: Message) -> tuple[dict[str, Any] | None, str | None]:
    """The event mapping of a message, or why there is none (one line)."""
    raw = message.fields.get(EVENT_FIELD)
    if raw is None:
        names = ", ".join(sorted(k.decode(errors="replace") for k in message.fields))
        return None, f"{MALFORMED}: message {message.id} has no 'event' field (fields: {names})"
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{MALFORMED}: message {message.id}: 'event' is not JSON text: {exc}"
    if not isinstance(event, dict):
        return None, f"{MALFORMED}: message {message.id}: 'event' is not a JSON object"
    return event, None


def land_batch(
    stream: EventStream, engine: sa.Engine, messages: list[Message], now: datetime, report: ConsumeReport
) -> None:
    """Land one batch, then acknowledge it (dead letters included). Raises on a database error
    before acknowledging anything."""
    parsed = [parse_message(m) for m in messages]
    landable = [(m, event) for m, (event, _) in zip(messages, parsed, strict=True) if event is not None]
    results = record_events(
        engine, [event for _, event in landable], now=now, source_file=f"stream:{stream.name}"
    )  # committed when it returns
    dead: list[tuple[Message, str]] = [
        (m, problem) for m, (_, problem) in zip(messages, parsed, strict=True) if problem is not None
    ]
    for (message, _), result in zip(landable, results, strict=True):
        report.statuses[result.status] += 1
        if result.status in _DEAD_STATUSES:
            dead.append((message, f"{result.status}: {result.message}"))
    if len(landable) < len(messages):
        report.statuses[MALFORMED] += len(messages) - len(landable)
    for message, reason in dead:
        log.warning("dead letter %s on %s: %s", message.id, stream.name, reason)
        stream.dead_letter(message, reason)
    # The whole batch, dead letters again included: a broker whose acknowledgements are cumulative
    # offsets (Kafka) needs the batch's last one; on Redis a second XACK is a no-op.
    stream.ack([m.id for m in messages])
    report.dead_letters += len(dead)
    report.messages += len(messages)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_connection_error(exc: sa.exc.DBAPIError) -> bool:
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or exc.connection_invalidated


def consume(
    stream: EventStream,
    engine: sa.Engine,
    *,
    batch: int = 100,
    max_messages: int | None = None,
    idle_exit_seconds: float | None = None,
    claim_idle_seconds: float = 60.0,
    db_wait_seconds: float = 60.0,
    block_seconds: float = 1.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ConsumeReport:
    """Consume until ``max_messages`` were handled or nothing came for ``idle_exit_seconds``
    (either may be None: then it runs until interrupted). Returns what it did."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = ConsumeReport()
    idle_since = time.monotonic()
    block = min(block_seconds, MAX_BLOCK_SECONDS)
    own_pending = True  # first the messages a previous run of this consumer left unacknowledged
    while max_messages is None or report.messages < max_messages:
        count = batch if max_messages is None else min(batch, max_messages - report.messages)
        messages, kind = [], "new"
        if own_pending:
            messages, kind = stream.pending(count), "resumed"
            own_pending = bool(messages)
        if not messages:
            messages, kind = stream.claim_idle(claim_idle_seconds, count), "claimed"
        if not messages:
            if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
                break
            wait = block if idle_exit_seconds is None else min(block, max(idle_exit_seconds, 0.01))
            messages, kind = stream.read(count, wait), "new"
        if not messages:
            continue
        _land_with_retries(stream, engine, messages, clock, report, db_wait_seconds)
        if kind == "claimed":
            report.claimed += len(messages)
        elif kind == "resumed":
            report.resumed += len(messages)
        idle_since = time.monotonic()
    return report


def _land_with_retries(
    stream: EventStream,
    engine: sa.Engine,
    messages: list[Message],
    clock: Callable[[], datetime],
    report: ConsumeReport,
    db_wait_seconds: float,
) -> None:
    """The batch lands, or the database stayed unreachable for ``db_wait_seconds`` (then
    ServiceUnavailable, with the batch unacknowledged). Any other error stops the run too, with
    the batch pending, unless one message's content caused it (then that one is dead-lettered)."""
    deadline = time.monotonic() + db_wait_seconds
    pause = 0.25
    while True:
        try:
            land_batch(stream, engine, messages, clock(), report)
            return
        except Exception as exc:
            if isinstance(exc, sa.exc.DBAPIError) and _is_connection_error(exc):
                reason = _first_line(exc.orig or exc)
            elif isinstance(exc, _DATA_ERRORS):
                _isolate(stream, engine, messages, clock, report, db_wait_seconds, exc)
                return
            else:
                raise  # not about one message (a missing table, a bug)
        if time.monotonic() + pause > deadline:
            where = engine.url.render_as_string(hide_password=True)
            raise ServiceUnavailable(
                f"cannot reach the database at {where}: {reason} "
                f"({len(messages)} message(s) of {stream.name} left pending)"
            )
        log.warning("database unreachable (%s): retrying %d message(s) in %.2f s", reason, len(messages),
                    pause)
        report.db_retries += 1
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def _isolate(
    stream: EventStream,
    engine: sa.Engine,
    messages: list[Message],
    clock: Callable[[], datetime],
    report: ConsumeReport,
    db_wait_seconds: float,
    error: Exception,
) -> None:
    """The batch's transaction rolled back on a data error: land its messages one by one, and
    dead-letter the one that raises it alone."""
    if len(messages) > 1:
        for message in messages:
            _land_with_retries(stream, engine, [message], clock, report, db_wait_seconds)
        return
    reason = f"{UNLANDABLE}: {type(error).__name__}: {_first_line(error)}"
    log.warning("dead letter %s on %s: %s", messages[0].id, stream.name, reason)
    stream.dead_letter(messages[0], reason)
    stream.ack([messages[0].id])
    report.statuses[UNLANDABLE] += 1
    report.dead_letters += 1
    report.messages += 1
