"""Deciding day D sees every earlier day's decisions, whatever the order or overlap of runs.

Frequency caps of D count the sends of the cap window before it (D-6 .. D-1, every
campaign: see :mod:`pipelines.audience`), so a list of D is only right once the lists of
those days are final. The rule, enforced by :func:`decide_slot` around each decide:

1. **Wait for earlier days, then fail.** An earlier day E in the window is *pending* while
   a run of E is in progress (its `campaignopt daily` holds E's run lock), or while E has
   data (files in its inbox or landed in `ops.ingested_files`) and either a list of E is
   still a draft or no list of E exists although a campaign is active on E. Deciding D
   waits for pending days (polling, at most ``decide_wait_seconds``), then fails naming
   them. Waiting, not refusing at once, because two days started together (a backfill,
   ``daily --date D & daily --date D+1 &``) then simply finish in day order; the bound
   turns a stuck or failed earlier day into a clear failure instead of a hung worker.
2. **A late day is refused.** Deciding E when a later day of its window already has
   decisions would break that later day's caps (its list did not see E's), and published
   lists are final: it fails at once. A list of E that is already published is left as it is.
3. **No two days of one window decide at once.** A short global advisory lock admits a
   decide only when no other day within 6 days is inside its own decide (a shared lock on
   that day, held to the end of the decide): the checks above and the decide's writes are
   then atomic with respect to other days, while the campaigns of one day still decide in
   parallel (they count only earlier days, never each other).

The dbt build of D follows the same wait (:func:`marts_build_slot`): the marts are shared
tables rebuilt as of each day, so overlapping runs give the lists runs one after the other give.

Published lists are final, so "published" never has to be re-checked once seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipelines.errors import UserError

log = logging.getLogger(__name__)

CAP_WINDOW_DAYS = 7  # the audience query's window: sends on D-6 .. D-1 count for D
GATE_LOCK = (7240302, 0)  # short global lock: admission to a decide slot
DAY_SLOT_CLASS = 7240303  # shared lock (classid, D's ordinal) held while deciding D
MARTS_LOCK = (7240305, 0)  # one dbt build of the shared marts at a time


class DayOrderError(UserError):
    """Deciding this day now would break the frequency caps of it or of a later day."""


def _run_lock_held(conn: sa.Connection, day: date) -> bool:
    from pipelines.orchestration import run_lock_key

    classid, objid = run_lock_key("daily_campaign_optimization", day)
    return _advisory_held(conn, classid, [objid])


def _advisory_held(conn: sa.Connection, classid: int, objids: list[int], exclude_pid: bool = False) -> bool:
    return bool(
        conn.execute(
            sa.text(
                """select exists (select 1 from pg_locks
                       where locktype = 'advisory' and granted and database = (
                           select oid from pg_database where datname = current_database())
                         and classid::bigint = :c and objid::bigint = any(:o) and objsubid = 2
                         and (not :x or pid <> pg_backend_pid()))"""
            ),
            {"c": classid, "o": objids, "x": exclude_pid},
        ).scalar()
    )


def _has_data(conn: sa.Connection, day: date, inbox: Path) -> bool:
    folder = inbox / day.isoformat()
    if folder.is_dir() and any(p.is_file() and not p.name.startswith(("_", ".")) for p in folder.iterdir()):
        return True
    landed = conn.execute(
        sa.text("select 1 from ops.ingested_files where logical_date = :d limit 1"), {"d": day}
    )
    return landed.first() is not None


def pending_earlier_days(conn: sa.Connection, day: date, inbox: Path) -> list[str]:
    """Why each pending earlier day of ``day``'s cap window is pending (empty: none is)."""
    reasons = []
    for back in range(CAP_WINDOW_DAYS - 1, 0, -1):
        earlier = day - timedelta(days=back)
        if _run_lock_held(conn, earlier):
            reasons.append(f"{earlier} (a run of it is in progress)")
            continue
        if not _has_data(conn, earlier, inbox):
            continue
        row = conn.execute(
            sa.text(
                """select count(*) filter (where s.status in ('draft', 'deciding')) as drafts,
                          count(s.*) as lists,
                          (select count(*) from ops.campaigns c where c.start_date <= :d
                             and (c.end_date is null or c.end_date >= :d)) as active
                   from ops.send_lists s where s.list_date = :d"""
            ),
            {"d": earlier},
        ).one()
        if row.drafts:
            reasons.append(f"{earlier} ({row.drafts} list(s) decided but not published)")
        elif row.lists == 0 and row.active:
            reasons.append(f"{earlier} (it has data but no send list yet)")
    return reasons


def later_decided_days(conn: sa.Connection, day: date) -> list[date]:
    """Later days of the window that already have batch decisions (any campaign)."""
    rows = conn.execute(
        sa.text(
            """select distinct decision_date from ops.decisions where source = 'batch'
               and decision_date > :d and decision_date < :d + :w order by 1"""
        ),
        {"d": day, "w": CAP_WINDOW_DAYS},
    )
    return [r[0] for r in rows]


def _is_published(conn: sa.Connection, campaign_id: int, day: date) -> bool:
    status = conn.execute(
        sa.text("select status from ops.send_lists where campaign_id = :c and list_date = :d"),
        {"c": campaign_id, "d": day},
    ).scalar()
    return status == "published"


def _other_day_deciding(conn: sa.Connection, day: date) -> bool:
    near = [(day + timedelta(days=k)).toordinal() for k in range(1 - CAP_WINDOW_DAYS, CAP_WINDOW_DAYS) if k]
    return _advisory_held(conn, DAY_SLOT_CLASS, near)


@contextmanager
def decide_slot(
    engine: sa.Engine,
    campaign_id: int,
    day: date,
    wait_seconds: float,
    poll_seconds: float = 2.0,
    inbox: Path | None = None,
) -> Iterator[None]:
    """Hold the right to decide ``campaign_id`` for ``day`` (see the module docstring).

    Raises DayOrderError at once for a late day, or after ``wait_seconds`` when earlier days
    are still pending. A list of ``day`` that is already published needs no slot.
    """
    from pipelines.settings import get_settings

    inbox = inbox or get_settings().inbox_dir
    deadline = time.monotonic() + wait_seconds
    gate = {"a": GATE_LOCK[0], "b": GATE_LOCK[1]}
    slot = {"a": DAY_SLOT_CLASS, "b": day.toordinal()}
    with engine.connect() as conn:
        if _is_published(conn, campaign_id, day):
            conn.rollback()
            yield
            return
        while True:
            conn.execute(sa.text("select pg_advisory_lock(:a, :b)"), gate)
            try:
                later = later_decided_days(conn, day)
                pending = pending_earlier_days(conn, day, inbox)
                busy = _other_day_deciding(conn, day)
                if later:
                    raise DayOrderError(
                        f"cannot decide {day}: later days ({', '.join(map(str, later))}) are already "
                        "decided, and a list of this day now would break their frequency caps"
                    )
                if not pending and not busy:
                    conn.execute(sa.text("select pg_advisory_lock_shared(:a, :b)"), slot)
                    break
            finally:
                conn.execute(sa.text("select pg_advisory_unlock(:a, :b)"), gate)
                conn.commit()
            if time.monotonic() >= deadline:
                what = "; ".join(pending) or "another day of its cap window is being decided"
                raise DayOrderError(
                    f"cannot decide {day} after waiting {wait_seconds:.0f} s: earlier days are not final: "
                    f"{what}. Run (or fix) those days first."
                )
            log.info("deciding %s waits: %s", day, "; ".join(pending) or "another day is deciding")
            time.sleep(poll_seconds)
        try:
            yield
        finally:
            conn.execute(sa.text("select pg_advisory_unlock_shared(:a, :b)"), slot)
            conn.commit()


@contextmanager
def marts_build_slot(
    engine: sa.Engine, day: date, wait_seconds: float, poll_seconds: float = 2.0, inbox: Path | None = None
) -> Iterator[None]:
    """Hold the right to rebuild the shared marts for ``day``.

    The marts are one set of tables rebuilt as of each day, and deciding D reads them: a build
    for D+1 between D's build and D's decide would hand D the statistics of a later day. So a
    build for D waits, like a decide, for the earlier days of its window to be final (then D+1's
    marts include D's sends, exactly as in runs one after the other), refuses a late day (no list
    of D published, a later day decided), and two builds never run at once (an exclusive lock).
    """
    from pipelines.settings import get_settings

    inbox = inbox or get_settings().inbox_dir
    deadline = time.monotonic() + wait_seconds
    with engine.connect() as conn:
        while True:
            pending = pending_earlier_days(conn, day, inbox)
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise DayOrderError(
                    f"cannot build the marts for {day} after waiting {wait_seconds:.0f} s: earlier days are "
                    f"not final: {'; '.join(pending)}. Run (or fix) those days first."
                )
            log.info("building the marts for %s waits: %s", day, "; ".join(pending))
            conn.rollback()
            time.sleep(poll_seconds)
        published = conn.execute(
            sa.text("select count(*) from ops.send_lists where list_date = :d and status = 'published'"),
            {"d": day},
        ).scalar_one()
        later = later_decided_days(conn, day)
        if later and not published:
            raise DayOrderError(
                f"cannot run {day}: later days ({', '.join(map(str, later))}) are already decided, and "
                "a list of this day now would break their frequency caps"
            )
        key = {"a": MARTS_LOCK[0], "b": MARTS_LOCK[1]}
        conn.execute(sa.text("select pg_advisory_lock(:a, :b)"), key)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("select pg_advisory_unlock(:a, :b)"), key)
            conn.commit()
