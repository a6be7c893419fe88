"""Stage 6 of the day: KPIs per campaign, drift alerts (pipelines/drift.py), fair-lending alerts
(pipelines/fairness.py).

KPIs come from the `campaign_daily_kpis` mart, pooled over the campaign's days so far:
conversion-rate lift of treatment over the holdout (with a 95% CI), estimated regret,
exploration rate, cost, revenue and ROI. Alerts (concept drift per arm, feature drift of
the customer base, quarantined rows) of day D are brought up to date on each run.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.db import read_frame
from pipelines.drift import CONCEPT_DRIFT, FEATURE_DRIFT, concept_drift_alerts, feature_drift_alerts
from pipelines.fairness import FAIR_LENDING, fairness_alerts


def campaign_kpis(conn: sa.Connection, day: date) -> list[dict]:
    """One row per campaign with decisions up to ``day``: pooled KPIs so far."""
    kpis = read_frame(
        conn,
        """select k.campaign_id, c.name as campaign, sum(k.treatment_sends) as treatment_sends,
                  sum(k.treatment_conversions) as treatment_conversions,
                  sum(k.control_sends) as control_sends, sum(k.control_conversions) as control_conversions,
                  sum(coalesce(k.exploration_rate, 0) * k.treatment_sends) as treatment_explored,
                  sum(k.pending) as pending,
                  sum(k.cost) as cost, sum(k.revenue) as revenue
           from analytics.campaign_daily_kpis k join ops.campaigns c using (campaign_id)
           where k.kpi_date <= %(d)s group by k.campaign_id, c.name order by c.name""",
        {"d": day},
    )
    regret = _estimated_regret(conn)
    rows = []
    for r in kpis.itertuples(index=False):
        t_rate = r.treatment_conversions / r.treatment_sends if r.treatment_sends else float("nan")
        c_rate = r.control_conversions / r.control_sends if r.control_sends else float("nan")
        lift = t_rate - c_rate
        se = math.sqrt(
            (t_rate * (1 - t_rate) / r.treatment_sends if r.treatment_sends else math.inf)
            + (c_rate * (1 - c_rate) / r.control_sends if r.control_sends else math.inf)
        )
        cost, revenue = float(r.cost or 0), float(r.revenue or 0)
        rows.append(
            {
                "campaign": r.campaign,
                "treatment_sends": int(r.treatment_sends),
                "treatment_rate": t_rate,
                "control_sends": int(r.control_sends),
                "control_rate": c_rate,
                "lift": lift,
                "lift_ci_low": lift - 1.96 * se,
                "lift_ci_high": lift + 1.96 * se,
                "relative_lift": lift / c_rate if c_rate else float("nan"),
                "exploration_rate": r.treatment_explored / r.treatment_sends if r.treatment_sends else 0.0,
                "estimated_regret": regret.get(int(r.campaign_id), float("nan")),
                "pending": int(r.pending),
                "cost": cost,
                "revenue": revenue,
                "roi": (revenue - cost) / cost if cost else float("nan"),
            }
        )
    return rows


def _estimated_regret(conn: sa.Connection) -> dict[int, float]:
    """Conversions lost to not always sending the best arm, by posterior means (an estimate)."""
    stats = read_frame(conn, "select campaign_id, arm_id, matured, alpha, beta from analytics.arm_stats")
    if stats.empty:
        return {}
    stats["mean"] = stats["alpha"] / (stats["alpha"] + stats["beta"])
    # The best arm among those tried: an arm never sent sits at its prior mean, which says
    # nothing about what it would have earned and would make the estimate the prior's.
    tried_mean = stats["mean"].where(stats["matured"] > 0)
    best = tried_mean.groupby(stats["campaign_id"]).transform("max").fillna(stats["mean"])
    stats["lost"] = (best - stats["mean"]) * stats["matured"]
    return {int(k): float(v) for k, v in stats.groupby("campaign_id")["lost"].sum().items()}


def drift_alerts(conn: sa.Connection, day: date) -> list[dict]:
    """The monitor's alerts of ``day``: concept and feature drift (pipelines/drift.py), quarantine."""
    alerts = concept_drift_alerts(conn, day) + feature_drift_alerts(conn, day) + fairness_alerts(conn, day)
    bad = conn.execute(
        sa.text("select count(*) from ops.quarantine where logical_date = :d and superseded_by is null"),
        {"d": day},
    ).scalar_one()
    if bad:
        alerts.append(
            {
                "campaign_id": None,
                "kind": "quarantine",
                "severity": "warning",
                "message": f"{bad} rows of {day} were quarantined; see ops.quarantine",
                "details": {"rows": int(bad)},
            }
        )
    return alerts


# conversion_drift and feature_drift: the kinds of earlier versions, still cleared on a re-run.
MONITOR_ALERT_KINDS = ("conversion_drift", "feature_drift", "quarantine")
MONITOR_ALERT_PREFIXES = (CONCEPT_DRIFT, FEATURE_DRIFT, FAIR_LENDING)


def monitor_day(engine: sa.Engine, day: date) -> dict:
    """Compute KPIs and the day's alerts; returns a summary for XCom and people.

    Alerts are upserted, so re-running the day leaves the ones it finds again untouched but
    for their text (an acknowledgement stays), and drops the day's monitor alerts it no longer finds.
    """
    with engine.connect() as conn:
        kpis = campaign_kpis(conn, day)
        alerts = drift_alerts(conn, day)
    with engine.begin() as conn:
        # Only the kinds monitoring writes: other steps' alerts of D (model_unavailable, ingest_rejected,
        # task failures) stay.
        conn.execute(
            sa.text(
                """delete from ops.alerts where alert_date = :d
                   and (kind = any(:kinds) or kind like any(:prefixes))
                   and not (coalesce(campaign_id, 0), kind) in
                       (select * from unnest(cast(:campaigns as int[]), cast(:found as text[])))"""
            ),
            {
                "d": day,
                "kinds": list(MONITOR_ALERT_KINDS),
                "prefixes": [p + "%" for p in MONITOR_ALERT_PREFIXES],
                "campaigns": [a["campaign_id"] or 0 for a in alerts],
                "found": [a["kind"] for a in alerts],
            },
        )
        if alerts:
            conn.execute(
                sa.text(
                    """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
                       values (:d, :c, :k, :s, :m, cast(:details as jsonb))
                       on conflict (alert_date, (coalesce(campaign_id, 0)), kind)
                       do update set severity = excluded.severity, message = excluded.message,
                                     details = excluded.details"""
                ),
                [
                    {
                        "d": day,
                        "c": a["campaign_id"],
                        "k": a["kind"],
                        "s": a["severity"],
                        "m": a["message"],
                        "details": json.dumps(a["details"]),
                    }
                    for a in alerts
                ],
            )
    clean = [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in kpis
    ]
    return {"date": day.isoformat(), "kpis": clean, "alerts": [a["message"] for a in alerts]}


def kpi_frame(summary: dict) -> pd.DataFrame:
    return pd.DataFrame(summary["kpis"])
