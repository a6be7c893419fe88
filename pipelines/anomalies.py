"""Anomalies in feedback, for the daily build: a channel's events from one landing path jumping or
collapsing on a day (an email platform outage is not a change in customers).

A *source-day* is (channel, landing, logical date): the events of the arms of one channel that
landed on that day from the inbox files (``file``) or from POST /feedback (``realtime``). Per
event type, its rate is events per *active send* — decisions of that channel whose attribution
window covers the day (decision_date in [day - window days, day]; a window in minutes or hours
covers its decision day). A day is anomalous for an event type when its count is
:data:`~pipelines.settings.Settings.anomaly_z_threshold` standard deviations from what the median
rate of the earlier days predicts, the deviation being the Poisson noise of the expected count
plus the day-to-day spread of the rate (1.4826 MAD, robust to earlier outages; it holds Poisson
noise too, so this errs on the side of fewer alarms). It needs
``anomaly_min_history`` earlier days and an expected count of at least :data:`MIN_EXPECTED` (a
channel too small to tell is left alone rather than alarmed on), and a change of at least
:data:`MIN_CHANGE` of the expected count.

An anomalous source-day is held (ops.feedback_holds) and alerted (``feedback_anomaly:<channel>:
<landing>``, critical) before dbt builds the marts of the day: while the hold is open, the marts
and the real-time snapshot keep the channel's decisions whose window covers the day pending, so
the day's events neither count as successes nor its missing events as failures. Lists are still
published. `campaignopt anomalies release` (or resolving the alert) lets the next build learn
from them. The daily counts are kept in ops.feedback_volumes, so a day's check reads one day of
raw events, not the whole lookback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa

from pipelines.domain import EVENT_TYPES
from pipelines.errors import NotFound, UserError

ANOMALY = "feedback_anomaly:"  # kind prefix: feedback_anomaly:<channel>:<landing>
NO_CHANNEL = "none"  # the channel key of arms of a campaign without a channel parameter
MIN_EXPECTED = 5.0  # fewer expected events than this on the day: too little to tell
# And at least half the expected count gone or added: with a 7-14 day history the spread is
# itself uncertain, and a weekly pattern or a payday moves rates by tens of percent (measured in
# benchmarks/bench_feedback_anomalies.py: without this floor, ~1% of ordinary days alarmed).
MIN_CHANGE = 0.5
LANDINGS = ("file", "realtime")

# Per (channel, landing, event type), the events that landed on the day; per channel, the sends
# whose attribution window covers it.
_EVENTS_SQL = """
select coalesce(a.params ->> 'channel', a.channel, 'none') as channel, i.source as landing, i.event_type,
       count(*) as events
from raw.interactions i join ops.arms a on a.arm_id = i.arm_id
where i.logical_date = :d
group by 1, 2, 3
"""
_ACTIVE_SQL = """
select coalesce(a.params ->> 'channel', a.channel, 'none') as channel, count(*) as active
from ops.campaigns c
join ops.decisions d
  on d.campaign_id = c.campaign_id  -- per campaign, a range of (campaign_id, decision_date)
 and d.decision_date between :d - coalesce(c.attribution_window_days, 0) and :d
join ops.arms a on a.arm_id = d.arm_id
group by 1
"""


@dataclass(frozen=True)
class Deviation:
    """One event type of a source-day against what its history predicts."""

    event_type: str
    events: int
    expected: float
    z: float
    history_days: int

    @property
    def direction(self) -> str:
        return "jump" if self.events > self.expected else "collapse"

    def describe(self) -> str:
        return f"{self.event_type} {self.events:,} against {self.expected:,.0f} expected (z {self.z:+.1f})"


def deviation(
    event_type: str,
    events: int,
    active: float,
    history_rates: np.ndarray,
    *,
    z_threshold: float,
    min_history: int,
) -> Deviation | None:
    """The deviation of a day's ``events`` given ``active`` sends, when it is anomalous.

    ``history_rates``: events per active send on the earlier days (days without sends left out).
    """
    rates = np.asarray(history_rates, dtype=float)
    if rates.size < min_history or active <= 0:
        return None
    median = float(np.median(rates))
    spread = 1.4826 * float(np.median(np.abs(rates - median)))
    expected = median * active
    if max(expected, events) < MIN_EXPECTED:
        return None
    sd = math.sqrt(max(expected, 1.0) + (spread * active) ** 2)
    z = (events - expected) / sd
    if abs(z) < z_threshold or (expected < MIN_EXPECTED and events < expected):
        return None  # a collapse is only told where enough was expected
    if expected > 0 and abs(events / expected - 1) < MIN_CHANGE:
        return None
    return Deviation(event_type, int(events), round(expected, 1), round(z, 2), int(rates.size))


def record_volumes(conn: sa.Connection, day: date) -> None:
    """The day's counts into ops.feedback_volumes (replacing those of a previous run of the day)."""
    active = {r.channel: int(r.active) for r in conn.execute(sa.text(_ACTIVE_SQL), {"d": day})}
    events = conn.execute(sa.text(_EVENTS_SQL), {"d": day}).all()
    rows = {(ch, landing, kind): 0 for ch in active for landing in LANDINGS for kind in EVENT_TYPES}
    for r in events:
        rows[(r.channel, r.landing, r.event_type)] = int(r.events)
    conn.execute(sa.text("delete from ops.feedback_volumes where logical_date = :d"), {"d": day})
    if rows:
        conn.execute(
            sa.text(
                """insert into ops.feedback_volumes
                       (channel, landing, logical_date, event_type, events, active)
                   values (:ch, :l, :d, :t, :n, :a)"""
            ),
            [
                {"ch": ch, "l": landing, "d": day, "t": kind, "n": n, "a": active.get(ch, 0)}
                for (ch, landing, kind), n in rows.items()
            ],
        )


def _missing_days(conn: sa.Connection, day: date, lookback: int) -> list[date]:
    """Earlier days of the lookback never counted (a first run, or history from before 0008)."""
    counted = {
        r[0]
        for r in conn.execute(
            sa.text(
                "select distinct logical_date from ops.feedback_volumes where logical_date between :a and :b"
            ),
            {"a": day - timedelta(days=lookback), "b": day - timedelta(days=1)},
        )
    }
    return [day - timedelta(days=k) for k in range(lookback, 0, -1) if day - timedelta(days=k) not in counted]


def find_anomalies(
    conn: sa.Connection, day: date, *, lookback: int, z_threshold: float, min_history: int
) -> dict[tuple[str, str], list[Deviation]]:
    """Per anomalous (channel, landing) of ``day``, its deviations; counts the days it needs first."""
    for earlier in _missing_days(conn, day, lookback):
        record_volumes(conn, earlier)
    record_volumes(conn, day)
    rows = conn.execute(
        sa.text(
            """select v.channel, v.landing, v.event_type, v.logical_date, v.events, v.active
               from ops.feedback_volumes v
               where v.logical_date between :a and :d
                 and not exists (select 1 from ops.feedback_holds h
                                 where h.channel = v.channel and h.landing = v.landing
                                   and h.logical_date = v.logical_date and h.released_at is null
                                   and h.logical_date < :d)
               order by v.logical_date"""
        ),
        {"a": day - timedelta(days=lookback), "d": day},
    ).all()
    series: dict[tuple[str, str, str], list] = {}
    for r in rows:
        series.setdefault((r.channel, r.landing, r.event_type), []).append(r)
    found: dict[tuple[str, str], list[Deviation]] = {}
    for (channel, landing, kind), days in sorted(series.items()):
        today = [r for r in days if r.logical_date == day]
        history = [r.events / r.active for r in days if r.logical_date < day and r.active > 0]
        if not today or not any(r.events for r in days if r.logical_date < day):
            continue  # this path never carried this event type of the channel: nothing to compare
        dev = deviation(
            kind, today[0].events, today[0].active, np.array(history),
            z_threshold=z_threshold, min_history=min_history,
        )  # fmt: skip
        if dev is not None:
            found.setdefault((channel, landing), []).append(dev)
    return found


def hold_anomalous_days(engine: sa.Engine, day: date) -> list[dict]:
    """Detect the day's anomalous source-days, hold them and alert; returns one dict per hold found.

    Idempotent: a re-run of the day keeps an existing hold as it is (a released one stays
    released and is not alerted again) and updates its alert's text in place.
    """
    from pipelines.settings import get_settings

    settings = get_settings()
    with engine.begin() as conn:
        found = find_anomalies(
            conn,
            day,
            lookback=settings.anomaly_lookback_days,
            z_threshold=settings.anomaly_z_threshold,
            min_history=settings.anomaly_min_history,
        )
        holds = []
        for (channel, landing), deviations in found.items():
            reason = f"{channel} events landed from {landing} on {day}: " + "; ".join(
                d.describe() for d in deviations
            )
            details = {
                "channel": channel,
                "landing": landing,
                "logical_date": day.isoformat(),
                "deviations": [d.__dict__ | {"direction": d.direction} for d in deviations],
            }
            conn.execute(
                sa.text(
                    """insert into ops.feedback_holds (channel, landing, logical_date, reason, details)
                       values (:ch, :l, :d, :r, cast(:details as jsonb))
                       on conflict (channel, landing, logical_date) do nothing"""
                ),
                {"ch": channel, "l": landing, "d": day, "r": reason, "details": json.dumps(details)},
            )
            released = conn.execute(
                sa.text(
                    "select released_at from ops.feedback_holds "
                    "where channel = :ch and landing = :l and logical_date = :d"
                ),
                {"ch": channel, "l": landing, "d": day},
            ).scalar_one()
            holds.append(details | {"reason": reason, "released": released is not None})
            if released is None:
                _alert(conn, day, channel, landing, reason, details)
    return holds


def _alert(conn: sa.Connection, day: date, channel: str, landing: str, reason: str, details: dict) -> None:
    message = (
        f"{reason}. The {channel} decisions whose attribution window covers {day} are held out of "
        f"learning until released: campaignopt anomalies release --source {channel}:{landing} --date {day}"
    )
    conn.execute(
        sa.text(
            """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
               values (:d, null, :k, 'critical', :m, cast(:details as jsonb))
               on conflict (alert_date, (coalesce(campaign_id, 0)), kind)
               do update set message = excluded.message, details = excluded.details"""
        ),
        {"d": day, "k": f"{ANOMALY}{channel}:{landing}", "m": message, "details": json.dumps(details)},
    )


def parse_source(text: str) -> tuple[str, str]:
    """``email:file`` -> ("email", "file"): a channel and a landing path (file or realtime)."""
    channel, _, landing = text.partition(":")
    if not channel or landing not in LANDINGS:
        raise UserError(
            f"--source: {text!r} is not CHANNEL:LANDING with LANDING one of {', '.join(LANDINGS)} "
            "(e.g. email:file)"
        )
    return channel, landing


_HOLD_COLUMNS = """hold_id, channel, landing, logical_date, reason, details, held_at, released_at,
                   released_by, note"""


def list_holds(conn: sa.Connection, open_only: bool = False) -> list[dict]:
    """Feedback holds, newest day first."""
    where = "where released_at is null" if open_only else ""
    rows = conn.execute(
        sa.text(
            f"select {_HOLD_COLUMNS} from ops.feedback_holds {where} "
            "order by logical_date desc, channel, landing"
        )
    ).mappings()
    return [dict(r) for r in rows]


def release_hold(
    conn: sa.Connection, channel: str, landing: str, day: date, by: str, note: str | None = None
) -> dict:
    """Release a held source-day (the next build learns from it) and resolve its alert."""
    if not by.strip():
        raise UserError("--by: say who (a name or an e-mail address)")
    row = (
        conn.execute(
            sa.text(
                f"select {_HOLD_COLUMNS} from ops.feedback_holds "
                "where channel = :ch and landing = :l and logical_date = :d for update"
            ),
            {"ch": channel, "l": landing, "d": day},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"{channel}:{landing} on {day}: no feedback hold (see 'campaignopt anomalies list')")
    if row["released_at"] is not None:
        raise UserError(
            f"{channel}:{landing} on {day}: already released by {row['released_by']} at "
            f"{row['released_at']:%Y-%m-%d %H:%M} UTC"
        )
    released = (
        conn.execute(
            sa.text(
                f"""update ops.feedback_holds set released_at = now(), released_by = :by, note = :note
                where hold_id = :id returning {_HOLD_COLUMNS}"""
            ),
            {"by": by.strip(), "note": note, "id": row["hold_id"]},
        )
        .mappings()
        .one()
    )
    conn.execute(
        sa.text(
            """update ops.alerts set resolved_at = now(), resolved_by = :by, note = coalesce(:note, note)
               where alert_date = :d and kind = :k and campaign_id is null and resolved_at is null"""
        ),
        {"by": by.strip(), "note": note, "d": day, "k": f"{ANOMALY}{channel}:{landing}"},
    )
    return dict(released)


def release_for_alert(conn: sa.Connection, alert: dict, by: str, note: str | None) -> None:
    """Resolving a feedback-anomaly alert releases its hold (one action for a person)."""
    details = alert.get("details") or {}
    if not str(alert.get("kind", "")).startswith(ANOMALY) or "logical_date" not in details:
        return
    conn.execute(
        sa.text(
            """update ops.feedback_holds
               set released_at = now(), released_by = :by, note = coalesce(:note, note)
               where channel = :ch and landing = :l and logical_date = :d and released_at is null"""
        ),
        {
            "by": by.strip(),
            "note": note,
            "ch": details["channel"],
            "l": details["landing"],
            "d": date.fromisoformat(details["logical_date"]),
        },
    )
