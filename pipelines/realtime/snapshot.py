"""What a real-time worker keeps in memory: per active campaign its definition, arms and
(segment x arm) statistics, and the campaign's policy built on them.

The statistics are the `segment_arm_stats` mart (read as the batch decide reads it) plus the
real-time decisions that matured since the mart was built, under the marts' maturity rule
(pipelines/attribution.py, dbt/models/intermediate/int_decisions_attributed.sql). The mart built
as of day A counts the decisions of days before A that matured by the end of day A; the snapshot
folds the others as they mature, each once:

- a window of w days: a decision of day d is attributed the events whose UTC day is in
  [d, d + w] and matures at midnight UTC starting day d + w + 1 (the mart counts d < A and
  d + w <= A). Folding is incremental by decision day: only the days matured since the last fold
  are read, so most refreshes cost no query at all.
- a window in minutes or hours: events with occurred_at in [decided_at, decided_at + window];
  the decision matures at decided_at + window. Folding is incremental by that instant: each
  refresh reads the decisions that matured since the previous one (an indexed range of
  decided_at), so with refreshes every 2 s a closed window is in the statistics 2 s later.

A matured decision without any attributed event counts with the campaign's default reward.

Folded are real-time decisions with their real-time feedback (raw.interactions.source =
'realtime'); batch decisions learn from their files through the daily marts. A real-time event
that lands after its decision was folded is seen at the next mart build (as the marts see it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import sqlalchemy as sa

import bandits
from pipelines.attribution import AttributionWindow, midnight_after
from pipelines.campaign_store import Campaign, active_campaign_ids, load_campaign_by_id
from pipelines.db import read_frame
from pipelines.decide import (
    ModelHandle,
    build_policy,
    decision_stats,
    pending_sends,
    stats_arrays,
    with_warm_start,
)
from pipelines.domain import SEGMENTS
from pipelines.errors import NotFound, UserError

log = logging.getLogger(__name__)

# Matured real-time decisions of one campaign, with their reward as int_decisions_attributed
# computes it: no attributed event -> the default reward; else conversion -> converted, weighted
# engagement -> the weighted flags capped at 1. {decided} picks the decisions (by day or by
# decision time), {attributed} the events of their windows. A decision whose window (ending on day
# {window_end}) covers a held feedback source-day of its channel (pipelines/anomalies.py) is not
# folded; once released, the next mart build counts it.
_MATURED_SQL = """
with decided as (
    select decision_id, arm_id, segment, decision_date, decided_at
    from ops.decisions d
    where campaign_id = %(c)s and source = 'realtime' and {decided}
      and not exists (
          select 1 from ops.feedback_holds h join ops.arms a on a.arm_id = d.arm_id
          where h.released_at is null and h.channel = coalesce(a.params ->> 'channel', a.channel, 'none')
            and h.logical_date between d.decision_date and {window_end})
),
flags as (
    select d.decision_id,
           bool_or(i.event_type = 'open') as opened, bool_or(i.event_type = 'click') as clicked,
           bool_or(i.event_type = 'view') as viewed, bool_or(i.event_type = 'dwell') as dwelled,
           bool_or(i.event_type = 'conversion') as converted
    from decided d
    join raw.interactions i on i.decision_id = d.decision_id and i.source = 'realtime'
    where {attributed}
    group by d.decision_id
)
select d.segment, d.arm_id, count(*) as matured,
       sum(case when f.decision_id is null then %(default_reward)s
                when %(kind)s = 'conversion' then cast(f.converted as integer)
                else least(1.0,
                    %(w_open)s * cast(f.opened as integer) + %(w_click)s * cast(f.clicked as integer)
                    + %(w_view)s * cast(f.viewed as integer) + %(w_dwell)s * cast(f.dwelled as integer)
                    + %(w_conversion)s * cast(f.converted as integer))
           end) as reward_sum
from decided d left join flags f on f.decision_id = d.decision_id
group by d.segment, d.arm_id
"""
# Day windows: decision days (lo, hi]; events by UTC day in [d, d + w].
_BY_DAY = {
    "decided": "decision_date > %(lo)s::date and decision_date <= %(hi)s::date",
    "attributed": "cast(i.occurred_at at time zone 'UTC' as date) "
    "between d.decision_date and d.decision_date + %(w)s",
    "window_end": "d.decision_date + %(w)s",
}
# Minute and hour windows: decided in (lo, hi] (maturing in (lo + s, hi + s]), except those the
# mart counted (decided before its day, matured by its cut-off); events by timestamp.
_BY_TIME = {
    "decided": "decided_at > %(lo)s and decided_at <= %(hi)s "
    "and not (decision_date < %(mart_day)s::date and decided_at <= %(mart_decided)s)",
    "attributed": "i.occurred_at between d.decided_at and d.decided_at + %(s)s * interval '1 second'",
    "window_end": "cast((d.decided_at + %(s)s * interval '1 second') at time zone 'UTC' as date)",
}
_MATURED_BY_DAY = _MATURED_SQL.format(**_BY_DAY)
_MATURED_BY_TIME = _MATURED_SQL.format(**_BY_TIME)
NO_MART = datetime(1970, 1, 1, tzinfo=UTC)  # before any decision: without a mart, fold them all

# What, changed, makes a worker reload everything: a newer mart build (the daily run decides
# its lists right after building the marts as of that day), a changed campaign, or a feedback
# source-day held or released.
_VERSION_SQL = """
select (select max(list_date) from ops.send_lists) as marts_as_of,
       (select max(updated_at) from ops.campaigns) as campaigns_changed,
       (select count(*) from ops.campaigns) as campaigns
"""
_HOLDS_VERSION_SQL = "select max(greatest(held_at, released_at)) from ops.feedback_holds"


def _version(conn: sa.Connection) -> tuple:
    """What _VERSION_SQL reads, and when a feedback hold last changed (a schema from before
    migration 0008 has none: the service then says the schema is behind, not that it broke)."""
    version = tuple(conn.execute(sa.text(_VERSION_SQL)).one())
    if not has_table(conn, "ops.feedback_holds"):
        return (*version, None)
    return (*version, conn.execute(sa.text(_HOLDS_VERSION_SQL)).scalar())


def matured_through(now: datetime, window: AttributionWindow) -> date | datetime:
    """What has matured at ``now``: day windows, the last decision day whose window has closed;
    minute and hour windows, the instant through which decisions have matured (``now``)."""
    if window.by_day:
        return _utc_day(now) - timedelta(days=window.amount + 1)
    return now


def mart_counted_through(marts_as_of: date | None, window: AttributionWindow) -> date | datetime:
    """What the mart built as of ``marts_as_of`` counted: day windows, the last decision day it
    counted as matured; minute and hour windows, an instant through which every decision that
    matured is counted (its day's start: it counts what matured by the day's end, but only for
    decisions of earlier days; the fold leaves those out by ``mart_day``)."""
    if window.by_day:
        if marts_as_of is None:
            return date.min
        return marts_as_of - timedelta(days=max(window.amount, 1))
    if marts_as_of is None:
        return NO_MART
    return datetime.combine(marts_as_of, time(0), tzinfo=UTC)


@dataclass
class CampaignState:
    """One campaign as the service decides it; ``pulls``/``rewards`` have shape (n_segments, n_arms)."""

    campaign: Campaign
    pulls: np.ndarray
    rewards: np.ndarray
    # Real-time decisions in pulls/rewards: day windows, those of days <= this date; minute and
    # hour windows, those that matured by this instant.
    folded_through: date | datetime
    # Batch sends pending at the last daily build (UCB counts them; pipelines.decide.pending_sends).
    pending: np.ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _policies: dict[str | None, bandits.ChunkedPolicy] = field(default_factory=dict)

    def policy(self, model: ModelHandle | None) -> bandits.ChunkedPolicy:
        """The campaign's policy on the current statistics (cached per model version).

        Policies keep per-call caches: use it only while holding :attr:`lock`.
        """
        key = model.version if model is not None else None
        if key not in self._policies:
            self._policies[key] = build_policy(self.campaign, self.pulls, self.rewards, model, self.pending)
        return self._policies[key]

    def add(self, pulls: np.ndarray, rewards: np.ndarray, through: date | datetime) -> None:
        with self.lock:
            self.pulls = self.pulls + pulls
            self.rewards = np.minimum(self.rewards + rewards, self.pulls)
            self.folded_through = through
            self._policies = {}


class Snapshot:
    """The active campaigns of the day with their statistics; load once, refresh often."""

    def __init__(
        self, campaigns: dict[int, CampaignState], marts_as_of: date | None, day: date, version: tuple
    ) -> None:
        self.campaigns = campaigns
        self.marts_as_of = marts_as_of
        self.day = day
        self._version = version
        self._refresh_lock = threading.Lock()

    @classmethod
    def load(cls, engine: sa.Engine, *, now: datetime, marts_as_of: date | None = None) -> Snapshot:
        """Read the campaigns active on ``now``'s UTC day and their statistics, then fold in the
        real-time decisions matured since the mart was built as of ``marts_as_of`` (default: the
        latest send-list day, which the daily run decides right after building the marts).

        A campaign that no longer validates is left out (logged): the others still serve.
        """
        day = _utc_day(now)
        with engine.connect() as conn:
            version = _version(conn)
        as_of = marts_as_of if marts_as_of is not None else version[0]
        campaigns: dict[int, CampaignState] = {}
        for campaign_id in active_campaign_ids(engine, day):
            try:
                campaign = load_campaign_by_id(engine, campaign_id)
            except UserError as exc:
                log.warning("campaign %s left out of the snapshot: %s", campaign_id, exc)
                continue
            with engine.connect() as conn:
                if has_table(conn, "analytics.segment_arm_stats"):
                    pulls, rewards = decision_stats(conn, campaign)
                    pending = pending_sends(conn, campaign)
                else:  # no daily build yet: the priors (and a warm start), plus what matures in real time
                    zeros = np.zeros((len(SEGMENTS), len(campaign.arm_ids)))
                    pulls, rewards = with_warm_start(conn, campaign, zeros, zeros.copy())
                    pending = None
            through = mart_counted_through(as_of, campaign.spec.window)
            campaigns[campaign_id] = CampaignState(campaign, pulls, rewards, through, pending)
        snapshot = cls(campaigns, as_of, day, version)
        snapshot._fold_matured(engine, now)
        return snapshot

    def state(self, campaign_id: int) -> CampaignState:
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            known = ", ".join(str(c) for c in sorted(self.campaigns)) or "none"
            message = f"campaign {campaign_id} is unknown or not active today; active: {known}"
            raise NotFound(message) from None

    def stats(self, campaign_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (pulls, rewards), shape (n_segments, n_arms)."""
        state = self.state(campaign_id)
        with state.lock:
            return state.pulls.copy(), state.rewards.copy()

    def refresh(self, engine: sa.Engine, *, now: datetime) -> Snapshot:
        """Fold in what matured since the last refresh; returns the snapshot to use from now on:
        this one, or a freshly loaded one when the marts, a campaign or the day changed."""
        day = _utc_day(now)
        with engine.connect() as conn:
            version = _version(conn)
        if version != self._version:
            return Snapshot.load(engine, now=now)
        if day != self.day:  # decisions mature at midnight: a new day folds, it reloads only
            if set(active_campaign_ids(engine, day)) != set(self.campaigns):  # if campaigns start/end
                return Snapshot.load(engine, now=now)
            self.day = day
        with self._refresh_lock:
            self._fold_matured(engine, now)
        return self

    def _fold_matured(self, engine: sa.Engine, now: datetime) -> int:
        folded = 0
        for state in self.campaigns.values():
            spec = state.campaign.spec
            window = spec.window
            target = matured_through(now, window)
            if target <= state.folded_through:  # a date or an instant, by window
                continue  # nothing matured since the last fold: no query
            weights = spec.reward.weights
            params = {
                "c": state.campaign.campaign_id,
                "default_reward": spec.default_reward,
                "kind": spec.reward.kind,
                **{f"w_{k}": float(weights.get(k, 0.0)) for k in ("open", "click", "view", "dwell")},
                "w_conversion": float(weights.get("conversion", 0.0)),
            }
            if window.by_day:
                sql = _MATURED_BY_DAY
                params |= {"lo": state.folded_through, "hi": target, "w": window.amount}
            else:
                sql = _MATURED_BY_TIME
                # The mart as of A counted the decisions of days before A matured by A's end.
                mart_day, mart_end = date.min, NO_MART
                if self.marts_as_of is not None:
                    mart_day, mart_end = self.marts_as_of, midnight_after(self.marts_as_of)
                params |= {
                    "lo": state.folded_through - window.length,
                    "hi": target - window.length,
                    "s": window.seconds,
                    "mart_day": mart_day,
                    "mart_decided": mart_end - window.length,
                }
            with engine.connect() as conn:
                frame = read_frame(conn, sql, params)
            pulls, rewards = stats_arrays(state.campaign, frame)
            state.add(pulls, rewards, target)
            folded += int(pulls.sum())
        return folded


def has_table(conn: sa.Connection, name: str) -> bool:
    """Whether a (dbt-owned) table exists: a fresh install serves before its first daily build."""
    return conn.execute(sa.text("select to_regclass(:n) is not null"), {"n": name}).scalar()


def _utc_day(now: datetime) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()
