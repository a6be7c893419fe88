"""Drift of the day, for the monitor: concept drift per campaign and arm, feature drift (PSI).

Concept drift: per arm, the matured rewards of its last :data:`HISTORY_DAYS` decision days in
time order, standardized segment by segment against the arm's own past and tested with
Page-Hinkley (:func:`bandits.drift.arm_change_points`). The test is recomputed from that
history every day rather than resumed from stored state: it is sequential, so a day's run
finds the alarms of the day before plus any new one, and re-running a day (or a lost day)
needs nothing but the marts. An alarm already alerted on an earlier day is not alerted again.

Feature drift: PSI of each customer feature, latest snapshot against the first one; 0.1 is a
warning, 0.25 critical (the conventional rule of thumb).

The response (:func:`discount_drifted`): a campaign with ``drift: {response: discount}`` counts
the evidence from before the change of an arm with an open concept-drift alert ``factor``
times, in :func:`pipelines.decide.segment_stats` — the one reader of the batch decide and the
real-time snapshot.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bandits.drift import PSI_SHIFTED, PSI_STABLE, arm_change_points, population_stability_index
from pipelines.db import read_frame
from pipelines.domain import SEGMENTS

CONCEPT_DRIFT = "concept_drift:"  # kind prefix: concept_drift:<arm_id>
FEATURE_DRIFT = "feature_drift:"  # kind prefix: feature_drift:<feature>
HISTORY_DAYS = 90
# Page-Hinkley on daily z-scores (N(0, 1) without change): drift tolerated and alarm level in
# standard deviations, days before an alarm may fire. Two-sided ARL without change is roughly
# 10,000 arm-days (Siegmund's approximation for k = 0.5, h = 8).
PH_DELTA = 0.5
PH_THRESHOLD = 8.0
PH_MIN_DAYS = 5
CRITICAL_CHANGE = 0.30  # relative change in the arm's rate that makes a drift critical
PSI_FEATURES = ("age", "income", "digital_engagement", "website_visits")


def concept_drift_alerts(conn: sa.Connection, day: date) -> list[dict]:
    """New concept-drift alarms of ``day``, one alert per (campaign, arm, alarm)."""
    frame = read_frame(
        conn,
        """select t.campaign_id, c.name as campaign, t.arm_id, a.arm_key, t.decision_date, t.segment,
                  count(*) as sends, sum(t.reward) as rewards
           from analytics.training_examples t
           join ops.campaigns c using (campaign_id) join ops.arms a using (arm_id)
           where t.decision_date <= %(d)s and t.decision_date > %(start)s
           group by t.campaign_id, c.name, t.arm_id, a.arm_key, t.decision_date, t.segment""",
        {"d": day, "start": day - timedelta(days=HISTORY_DAYS)},
    )
    if frame.empty:
        return []
    alerted = _alerted_alarms(conn, day)
    alerts = []
    for (campaign_id, campaign, arm_id, arm_key), arm in frame.groupby(
        ["campaign_id", "campaign", "arm_id", "arm_key"], sort=True
    ):
        dates, conversions, sends = arm_daily_counts(arm)
        for change in arm_change_points(conversions, sends, PH_DELTA, PH_THRESHOLD, PH_MIN_DAYS):
            if (int(arm_id), dates[change.alarm]) in alerted:
                continue
            alerts.append(
                _concept_alert(
                    int(campaign_id), campaign, int(arm_id), arm_key, dates, conversions, sends, change
                )
            )
    return alerts


def arm_daily_counts(arm: pd.DataFrame) -> tuple[list[date], np.ndarray, np.ndarray]:
    """Rows (decision_date, segment, sends, rewards) of one arm as (n_days, n_segments) arrays."""
    sends = arm.pivot_table(
        index="decision_date", columns="segment", values="sends", aggfunc="sum", fill_value=0
    ).reindex(columns=list(SEGMENTS), fill_value=0)
    rewards = arm.pivot_table(
        index="decision_date", columns="segment", values="rewards", aggfunc="sum", fill_value=0
    ).reindex(index=sends.index, columns=list(SEGMENTS), fill_value=0)
    return list(sends.index), rewards.to_numpy(dtype=float), sends.to_numpy(dtype=float)


def _alerted_alarms(conn: sa.Connection, day: date) -> set[tuple[int, date]]:
    """(arm_id, alarm day) of the concept-drift alerts of earlier days."""
    rows = conn.execute(
        sa.text(
            "select details->>'arm_id', details->>'alarm_date' from ops.alerts "
            "where alert_date < :d and kind like :k"
        ),
        {"d": day, "k": CONCEPT_DRIFT + "%"},
    ).all()
    return {(int(a), date.fromisoformat(d)) for a, d in rows if a is not None and d is not None}


def _concept_alert(campaign_id, campaign, arm_id, arm_key, dates, conversions, sends, change) -> dict:
    before = slice(0, change.start)
    after = slice(change.start, change.alarm + 1)
    rate_before = conversions[before].sum() / max(sends[before].sum(), 1.0)
    rate_after = conversions[after].sum() / max(sends[after].sum(), 1.0)
    relative = (rate_after - rate_before) / rate_before if rate_before > 0 else float("inf")
    verb = "rose" if change.direction == "increase" else "fell"
    started, alarm = dates[change.start], dates[change.alarm]
    return {
        "campaign_id": campaign_id,
        "kind": CONCEPT_DRIFT + str(arm_id),
        "severity": "critical" if abs(relative) >= CRITICAL_CHANGE else "warning",
        "message": (
            f"campaign {campaign} arm {arm_id} ({arm_key}): reward rate {verb} from {rate_before:.2%} to "
            f"{rate_after:.2%} ({relative:+.0%}) from decisions of {started} on; detected on those of {alarm}"
        ),
        "details": {
            "arm_id": arm_id,
            "arm_key": arm_key,
            "direction": change.direction,
            "change_start": started.isoformat(),
            "alarm_date": alarm.isoformat(),
            "rate_before": round(float(rate_before), 6),
            "rate_after": round(float(rate_after), 6),
            "relative_change": round(float(relative), 4) if np.isfinite(relative) else None,
        },
    }


def psi_severity(psi: float) -> str | None:
    """None below :data:`PSI_STABLE`, a warning up to :data:`PSI_SHIFTED`, critical above."""
    if psi >= PSI_SHIFTED:
        return "critical"
    return "warning" if psi >= PSI_STABLE else None


def feature_drift_alerts(conn: sa.Connection, day: date) -> list[dict]:
    """PSI of the latest customer snapshot up to ``day`` against the first; one alert per moved feature."""
    first, latest = conn.execute(
        sa.text("select min(snapshot_date), max(snapshot_date) from raw.customers where snapshot_date <= :d"),
        {"d": day},
    ).one()
    if first is None or first == latest:
        return []
    sql = f"select {', '.join(PSI_FEATURES)} from raw.customers where snapshot_date = %(s)s"
    reference, current = read_frame(conn, sql, {"s": first}), read_frame(conn, sql, {"s": latest})
    alerts = []
    for feature in PSI_FEATURES:
        ref, cur = reference[feature].dropna().to_numpy(float), current[feature].dropna().to_numpy(float)
        if ref.size == 0 or cur.size == 0:
            continue
        psi = population_stability_index(ref, cur)
        severity = psi_severity(psi)
        if severity is None:
            continue
        alerts.append(
            {
                "campaign_id": None,
                "kind": FEATURE_DRIFT + feature,
                "severity": severity,
                "message": f"customer feature {feature} shifted: PSI {psi:.3f} of the {latest} snapshot "
                f"against {first} (warning >= {PSI_STABLE}, critical >= {PSI_SHIFTED})",
                "details": {
                    "feature": feature,
                    "psi": round(psi, 4),
                    "reference": first.isoformat(),
                    "current": latest.isoformat(),
                },
            }
        )
    return alerts


def open_drift_starts(conn: sa.Connection, campaign_id: int) -> dict[int, date]:
    """Per arm with an unresolved concept-drift alert, the day its latest change began."""
    rows = conn.execute(
        sa.text(
            "select (details->>'arm_id')::int, max((details->>'change_start')::date) from ops.alerts "
            "where campaign_id = :c and kind like :k and resolved_at is null group by 1"
        ),
        {"c": campaign_id, "k": CONCEPT_DRIFT + "%"},
    ).all()
    return {int(a): d for a, d in rows}


def discount_drifted(conn: sa.Connection, campaign, pulls: np.ndarray, rewards: np.ndarray) -> None:
    """In place: the pre-change evidence of drifted arms counts ``drift.factor`` times.

    ``pulls`` and ``rewards`` are segment_stats' (n_segments, n_arms) arrays; nothing changes
    unless the campaign's ``drift.response`` is ``discount`` and an arm has an open alert.
    """
    spec = campaign.spec.drift
    if spec is None or spec.response != "discount":
        return
    starts = {a: d for a, d in open_drift_starts(conn, campaign.campaign_id).items() if a in campaign.arm_ids}
    if not starts:
        return
    old = read_frame(
        conn,
        """select t.segment, t.arm_id, count(*) as matured, sum(t.reward) as reward_sum
           from analytics.training_examples t
           join (select unnest(cast(%(arms)s as int[])) as arm_id,
                        unnest(cast(%(starts)s as date[])) as start) s using (arm_id)
           where t.campaign_id = %(c)s and t.decision_date < s.start
           group by t.segment, t.arm_id""",
        {"c": campaign.campaign_id, "arms": list(starts), "starts": list(starts.values())},
    )
    from pipelines.decide import stats_arrays  # decide imports this module

    old_pulls, old_rewards = stats_arrays(campaign, old)
    pulls -= (1.0 - spec.factor) * old_pulls
    rewards -= (1.0 - spec.factor) * old_rewards
