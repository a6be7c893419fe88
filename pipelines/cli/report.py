"""`campaignopt report`: a campaign's KPIs over a window of decision days, for marketing ops.

A table by default; ``--json`` (numbers as numbers), ``--csv`` (one tidy long table: a row per
figure, its section — summary, day, arm, parameter — as a column) or ``--html FILE`` (a
self-contained page with the charts).
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import typer

from pipelines.cli.figures import Column, count, field, interval, money, number, percent, points, text
from pipelines.cli.figures import print_figure_table as show
from pipelines.errors import UserError


def _option_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=f"'{option}'") from None


def report(
    campaign: str = typer.Option(..., "--campaign", help="Campaign name."),
    since: str = typer.Option(None, "--from", help="First decision day (default: 30 days up to --to)."),
    until: str = typer.Option(None, "--to", help="Last decision day (default: today, UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print one tidy CSV table (a row per figure)."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report with charts here."),
) -> None:
    """KPIs of one campaign: per group, per day, per arm and per parameter value."""
    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.performance import resolve_window
    from pipelines.report import campaign_report

    if as_json and as_csv:
        raise UserError("--json and --csv: choose one")
    first, last = _option_date(since, "--from"), _option_date(until, "--to")
    now = datetime.now(UTC)
    if first and last and first > last:
        raise typer.BadParameter(f"{first} is after --to ({last})", param_hint="'--from'")
    try:
        window = resolve_window(now.date(), first, last, None)
    except UserError as exc:  # its messages name the API's since/until
        raise UserError(str(exc).replace("since:", "--from:").replace("until", "--to")) from None
    engine = get_engine()
    target = load_campaign_by_name(engine, campaign)  # unknown: exit 4, as every command
    figures = campaign_report(engine, target, window, now=now)
    if html is not None:
        from pipelines.report_html import write_html

        typer.echo(f"report written to {write_html(figures, html)}")
    elif as_json:
        from pipelines.cli.output import print_json

        print_json(figures)
    elif as_csv:
        write_csv(figures, sys.stdout)
    else:
        print_report(figures)


def write_csv(figures: dict, out) -> None:
    from pipelines.report import CSV_FIELDS, tidy_rows

    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(tidy_rows(figures))


GROUP_COLUMNS = [
    Column("Figure", field("figure", text), numeric=False),
    Column("Treatment (optimized)", field("treatment", text)),
    Column("Holdout (default arm)", field("control", text)),
]
DAY_COLUMNS = [
    Column("Decision day", field("date", text), numeric=False),
    Column("Treatment sends", lambda d: count(d["treatment"]["sends"])),
    Column("Treatment conversions", lambda d: count(d["treatment"]["conversions"])),
    Column("Treatment rate", lambda d: percent(d["treatment"]["conversion_rate"])),
    Column("Holdout sends", lambda d: count(d["control"]["sends"])),
    Column("Holdout conversions", lambda d: count(d["control"]["conversions"])),
    Column("Holdout rate", lambda d: percent(d["control"]["conversion_rate"])),
    Column("Lift", lambda d: points(d["lift"]["absolute"])),
]
POSTERIOR_COLUMNS = [
    Column("Sends", field("sends", count)),
    Column("Matured", field("matured", count)),
    Column("Conversions", field("rewards", number)),
    Column("Posterior mean", field("posterior_mean", percent)),
    Column("95% credible interval", lambda r: interval(r["ci_low"], r["ci_high"])),
    Column("P(best)", field("prob_best", percent)),
]


def print_report(figures: dict) -> None:
    perf = figures["performance"]
    window = figures["window"]
    t, c = perf["treatment"], perf["control"]
    group_rows = [
        {"figure": name, "treatment": fmt(t[key]), "control": fmt(c[key])}
        for name, key, fmt in (
            ("Sends", "sends", count),
            ("Matured (attribution window over)", "matured", count),
            ("Pending", "pending", count),
            ("Conversions", "conversions", count),
            ("Conversion rate", "conversion_rate", percent),
            ("Opened (of matured)", "open_rate", percent),
            ("Click-through (of matured)", "click_through_rate", percent),
            ("Viewed the landing page", "view_rate", percent),
            ("Dwell seconds per view", "dwell_seconds_per_view", number),
            ("Revenue", "revenue", money),
            ("Cost", "cost", money),
        )
    ]
    title = f"{figures['campaign']}: decision days {window['since']} to {window['until']}"
    title += f" ({window['days']} days)"
    show(title, GROUP_COLUMNS, group_rows, f"as of {perf['as_of']:%Y-%m-%d %H:%M} UTC")
    lift, regret = perf["lift"], perf["regret"]
    overall = [
        ("Lift (treatment - holdout)", lift["reason"] or points(lift["absolute"])),
        ("Lift 95% CI (Newcombe)", interval(lift["ci_low"], lift["ci_high"], points)),
        ("Relative lift", percent(lift["relative"])),
        ("Revenue", money(perf["revenue"])),
        ("Cost", money(perf["cost"])),
        ("ROI ((revenue - cost) / cost)", percent(perf["roi"])),
        ("Exploration share of treatment", percent(perf["exploration_share"])),
        (
            "Regret estimate (conversions)",
            number(regret["estimate"]) if regret["estimate"] is not None else regret["reason"],
        ),  # fmt: skip
        ("Pending decisions", count(perf["pending"])),
        ("Matured through", text(perf["matured_through"])),
    ]
    show("The window's KPIs", [Column("KPI", field("kpi", text), numeric=False),
                               Column("Value", field("value", text))],
         [{"kpi": k, "value": v} for k, v in overall])  # fmt: skip
    show("Per decision day", DAY_COLUMNS, figures["days"])
    source = _statistics_source(figures["posteriors"])
    arm = Column("Arm", lambda r: ", ".join(f"{k}={v}" for k, v in r["parameters"].items()), numeric=False)
    show("Per arm (posterior of matured conversions)", [arm, *POSTERIOR_COLUMNS], figures["arms"], source)
    value = Column("Parameter value", lambda r: f"{r['parameter']}={r['value']}", numeric=False)
    show("Per parameter value (pooled over its arms)", [value, *POSTERIOR_COLUMNS], figures["parameters"])


def _statistics_source(posteriors: dict) -> str:
    prior = posteriors["prior"]
    as_of = posteriors["statistics"].get("marts_as_of")
    evidence = (
        f"matured sends of the daily build of {as_of}" if as_of else "no daily build yet: the prior alone"
    )
    return f"Beta({prior['alpha']:g}, {prior['beta']:g}) prior; {evidence}; P(best) by Monte Carlo"


def register(app: typer.Typer) -> None:
    app.command("report")(report)
