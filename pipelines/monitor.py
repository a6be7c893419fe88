"""Stage 6 of the day: KPIs per campaign and drift alerts.

KPIs come from the `campaign_daily_kpis` mart, pooled over the campaign's days so far:
conversion-rate lift of treatment over the holdout (with a 95% CI), estimated regret,
exploration rate, cost, revenue and ROI. Alerts (conversion drift per arm, feature
drift of the customer base, quarantined rows) are replaced for day D on each run.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bandits.drift import PSI_SHIFTED, conversion_rate_drift, population_stability_index
from pipelines.db import read_frame

DRIFT_WINDOW_DAYS = 3
PSI_FEATURES = ("age", "income", "digital_engagement", "website_visits")


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
    best = stats.groupby("campaign_id")["mean"].transform("max")
    stats["lost"] = (best - stats["mean"]) * stats["matured"]
    return {int(k): float(v) for k, v in stats.groupby("campaign_id")["lost"].sum().items()}


def drift_alerts(conn: sa.Connection, day: date) -> list[dict]:
    alerts = []
    daily = read_frame(
        conn,
        """select campaign_id, decision_date, arm_id, count(*) as sends, sum(converted::int) as conversions
           from analytics.training_examples where decision_date <= %(d)s
           group by campaign_id, decision_date, arm_id""",
        {"d": day},
    )
    for campaign_id, frame in daily.groupby("campaign_id") if not daily.empty else []:
        sends = frame.pivot_table(index="decision_date", columns="arm_id", values="sends", fill_value=0)
        if len(sends) <= DRIFT_WINDOW_DAYS:
            continue
        conversions = frame.pivot_table(
            index="decision_date", columns="arm_id", values="conversions", fill_value=0
        )
        result = conversion_rate_drift(conversions.to_numpy(), sends.to_numpy(), window=DRIFT_WINDOW_DAYS)
        drifted = [int(a) for a, d in zip(sends.columns, result.drifted, strict=True) if d]
        if drifted:
            alerts.append(
                {
                    "campaign_id": int(campaign_id),
                    "kind": "conversion_drift",
                    "severity": "warning",
                    "message": f"conversion rate of arms {drifted} changed in the last "
                    f"{DRIFT_WINDOW_DAYS} days",
                    "details": {"arms": drifted},
                }
            )
    alerts += _feature_drift(conn, day)
    bad = conn.execute(
        sa.text("select count(*) from ops.quarantine where logical_date = :d"), {"d": day}
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


def _feature_drift(conn: sa.Connection, day: date) -> list[dict]:
    """PSI of the latest customer snapshot against the first one."""
    bounds = conn.execute(
        sa.text("select min(snapshot_date), max(snapshot_date) from raw.customers where snapshot_date <= :d"),
        {"d": day},
    ).one()
    if bounds[0] is None or bounds[0] == bounds[1]:
        return []
    cols = ", ".join(PSI_FEATURES)
    sql = f"select {cols} from raw.customers where snapshot_date = %(s)s"
    reference, current = read_frame(conn, sql, {"s": bounds[0]}), read_frame(conn, sql, {"s": bounds[1]})
    psi = {
        c: population_stability_index(reference[c].to_numpy(float), current[c].to_numpy(float))
        for c in PSI_FEATURES
    }
    shifted = {c: round(v, 3) for c, v in psi.items() if v > PSI_SHIFTED}
    if not shifted:
        return []
    return [
        {
            "campaign_id": None,
            "kind": "feature_drift",
            "severity": "warning",
            "message": f"customer features shifted since {bounds[0]} (PSI > {PSI_SHIFTED}): {shifted}",
            "details": {"psi": {c: round(v, 4) for c, v in psi.items()}},
        }
    ]


def monitor_day(engine: sa.Engine, day: date) -> dict:
    """Compute KPIs and replace the day's alerts; returns a summary for XCom and people."""
    with engine.connect() as conn:
        kpis = campaign_kpis(conn, day)
        alerts = drift_alerts(conn, day)
    with engine.begin() as conn:
        # Only monitoring's own alerts: task failures (pipelines.alerts) stay for the operator.
        conn.execute(
            sa.text("delete from ops.alerts where alert_date = :d and kind not like 'task_failed:%'"),
            {"d": day},
        )
        if alerts:
            conn.execute(
                sa.text(
                    """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
                       values (:d, :c, :k, :s, :m, cast(:details as jsonb))"""
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
