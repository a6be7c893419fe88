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
    last_day = config.start.fromordinal(config.start.toordinal() + config.history_days + config.days - 1)
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
        "simulated conversion rate of the sends, a week of history, then a day, per row (known at once)",
        DAY_COLUMNS,
        summary.days,
    )
    summary.recent_lift = recent_lift(engine, last_day)
    _print_recent_lift(summary.recent_lift)
    _print_model_effect(summary)
    _print_model_vs_bandit(engine, summary)
    _print_realtime(summary.realtime)
    _print_dashboard(summary.realtime, config)


RECENT_DAYS = 14  # the lift once learned: the last two weeks of decisions that have matured


def recent_lift(engine, last_day) -> list[dict]:
    """Per campaign: the dashboard's lift (Newcombe CI) over the last RECENT_DAYS matured decision days."""
    from datetime import UTC, datetime, time, timedelta

    from pipelines.campaign_store import list_campaigns, load_campaign_by_id
    from pipelines.performance import Window, campaign_performance

    now = datetime.combine(last_day + timedelta(days=1), time(6), tzinfo=UTC)  # after the last run
    rows = []
    for c in list_campaigns(engine):
        campaign = load_campaign_by_id(engine, c["campaign_id"])
        until = last_day - timedelta(days=campaign.spec.attribution_window_days + 1)
        window = Window(until - timedelta(days=RECENT_DAYS - 1), until)
        perf = campaign_performance(engine, campaign, window, now=now)
        rows.append({**perf, "campaign": c["name"], "window": f"{window.since}..{window.until}"})
    return rows


def _print_recent_lift(rows: list[dict]) -> None:
    for r in rows:
        t, c, lift = r["treatment"], r["control"], r["lift"]
        if lift["absolute"] is None:
            continue
        console.print(
            f"{r['campaign']}, decisions of {r['window']} (matured): treatment {t['conversion_rate']:.2%} of "
            f"{t['matured']:,}, holdout {c['conversion_rate']:.2%} of {c['matured']:,}: lift "
            f"{100 * lift['absolute']:+.2f} pts "
            f"(95% CI {100 * lift['ci_low']:+.2f} to {100 * lift['ci_high']:+.2f})"
        )


def _print_model_vs_bandit(engine, summary) -> None:
    from pipelines.demo_model import model_vs_bandit

    champion = summary.retrain or {}
    if "version" not in champion:
        return
    got = model_vs_bandit(engine, champion.get("valid_window", ""))
    if got is None:
        return
    summary.model_vs_bandit = got
    m, b, d = got["model_auc"], got["bandit_auc"], got["difference"]
    console.print(
        f"on the {got['rows']:,} validation sends of {got['window']}: model AUC {m.value:.3f} "
        f"[{m.low:.3f}, {m.high:.3f}], the bandit alone (its segment x arm rates) {b.value:.3f} "
        f"[{b.low:.3f}, {b.high:.3f}]; difference {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
    )


def _print_dashboard(realtime, config) -> None:
    import os

    from pipelines.serve_process import CLI

    home = os.environ.get("CAMPAIGNOPT_HOME")
    env = f"CAMPAIGNOPT_HOME={home} " if home else ""
    if realtime is not None and realtime.screenshots:
        folder = realtime.screenshots[0].png.parent
        console.print(f"dashboard screenshots: {len(realtime.screenshots)} pages in {folder}")
    elif realtime is not None and realtime.screenshot_note:
        console.print(realtime.screenshot_note)
    console.print(
        "the dashboard: the demo stopped its service; to open it, start one and make a key:\n"
        f"  {env}{CLI} serve    # leave it running; Ctrl-C stops it\n"
        f"  {env}{CLI} apikey create --name me --role analyst\n"
        "then open http://127.0.0.1:8000/dashboard and sign in with that key "
        f"(the demo's days are {config.start} onwards)"
    )


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
