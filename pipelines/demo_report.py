"""The demo's closing summary: latest lists, KPIs so far, and the model's effect."""

from __future__ import annotations

import math

import sqlalchemy as sa

from pipelines.cli.figures import Column, count, field, percent, print_figure_table, print_kpi_table, text
from pipelines.cli.output import console, print_table
from pipelines.db import get_engine


def print_demo_report(summary, config) -> None:
    from pipelines.monitor import campaign_kpis

    engine = get_engine()
    last_day = config.start.fromordinal(config.start.toordinal() + config.days - 1)
    with engine.connect() as conn:
        lists = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    """select c.name as campaign, s.list_date, s.n_rows, s.n_control, s.model_version,
                              s.csv_path
                       from ops.send_lists s join ops.campaigns c using (campaign_id)
                       where s.list_date = :d and s.status = 'published' order by c.name"""
                ),
                {"d": last_day},
            ).mappings()
        ]
        kpis = campaign_kpis(conn, last_day)
    console.rule("campaignopt demo")
    print_table(lists, title=f"latest published send lists ({last_day})")
    cols = ["campaign", "treatment_sends", "treatment_rate", "control_sends", "control_rate", "lift"]
    cols += ["lift_ci", "exploration_rate", "estimated_regret", "roi"]
    print_kpi_table(kpis, "KPIs so far (matured, attributed sends; the newest days are still pending)", cols)
    print_figure_table(
        "simulated conversion rate of each day's sends (the simulator knows at once)",
        DAY_COLUMNS,
        summary.days,
    )
    _print_model_effect(summary)
    _print_realtime(summary.realtime)


DAY_COLUMNS = [
    Column("Day", field("date", text), numeric=False),
    Column("Sends", field("rows", count)),
    Column("Model version", field("model_version", text), numeric=False),
    Column("Treatment conversion", field("treatment_rate", percent)),
    Column("Holdout conversion", field("control_rate", percent)),
]
REALTIME_COLUMNS = (
    "customer",
    "parameters",
    "propensity",
    "selected_by",
    "group",
    "model_version",
    "feedback",
)


def _print_realtime(realtime) -> None:
    if realtime is None:
        return
    print_table(
        realtime.rows,
        title=f"real-time decisions of {realtime.campaign} (POST /optimize, POST /feedback)",
        columns=REALTIME_COLUMNS,
    )
    ready = realtime.readiness
    reasons = "; ".join(ready.get("reasons") or []) or "no problem"
    console.print(f"GET /readyz: {ready.get('status_code', '-')} {ready.get('status', '-')} ({reasons})")


def _print_model_effect(summary) -> None:
    champion = summary.retrain or {}
    if not champion or "version" not in champion:
        console.print(f"model: none promoted ({champion.get('error', 'retraining skipped or not run')})")
        return
    metrics = champion.get("metrics", {})
    console.print(
        f"model in use: version {champion['version']} ({', '.join(champion.get('aliases', []))}), "
        f"validation AUC {metrics.get('auc') or float('nan'):.3f}, "
        f"log loss {metrics.get('log_loss') or float('nan'):.4f}"
    )
    before = [d for d in summary.days if not d["model_version"]]
    after = [d for d in summary.days if d["model_version"]]
    if before and after:
        console.print(
            f"simulated treatment conversion rate: {_mean_rate(before):.2%} on {len(before)} days "
            "before the model, "
            f"{_mean_rate(after):.2%} on {len(after)} days with it (bandit learning continues throughout, "
            "so the difference is not the model's alone)"
        )


def _mean_rate(days: list[dict]) -> float:
    rates = [d["treatment_rate"] for d in days if not math.isnan(d["treatment_rate"])]
    return sum(rates) / len(rates) if rates else float("nan")
