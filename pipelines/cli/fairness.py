"""`campaignopt fairness report`: which offers reached which groups, against who was eligible."""

from __future__ import annotations

from datetime import date

import typer

from pipelines.cli.figures import Column, count, field, interval, percent, text
from pipelines.cli.figures import print_figure_table as show
from pipelines.errors import UserError

fairness_app = typer.Typer(help="The fair-lending monitor (pipelines/fairness.py).", no_args_is_help=True)


@fairness_app.command("report")
def report(
    campaign: str = typer.Option(..., "--campaign", help="Campaign name."),
    day: str = typer.Option(None, "--day", help="Decision day (default: the campaign's latest list)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per offer and protected attribute: each group's share of the eligible audience and of the
    offer's recipients, the variance between the two, and whether it is flagged."""
    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.fairness import campaign_fairness, latest_list_day

    engine = get_engine()
    target = load_campaign_by_name(engine, campaign)  # unknown: exit 4, as every command
    try:
        when = None if day is None else date.fromisoformat(day)
    except ValueError:
        raise UserError(f"--day: {day!r} is not a date (YYYY-MM-DD)") from None
    with engine.connect() as conn:
        when = when or latest_list_day(conn, target.campaign_id, campaign)
        figures = campaign_fairness(conn, target.campaign_id, when)
    if as_json:
        from pipelines.cli.output import print_json

        print_json(figures)
        return
    print_fairness(campaign, figures)


OFFER_COLUMNS = [
    Column("Offer", lambda r: f"{r['parameter']}={r['value']}", numeric=False),
    Column("Attribute", field("attribute", text), numeric=False),
    Column("Recipients", field("recipients", count)),
    Column("Variance", field("variance", percent)),
    Column("Variance 95% CI", lambda r: interval(r["variance_low"], r["variance_high"])),
    Column("Flagged", lambda r: _flag(r), numeric=False),
]
GROUP_COLUMNS = [
    Column("Offer", lambda r: r["offer"], numeric=False),
    Column("Group", field("group", text), numeric=False),
    Column("Eligible share", field("eligible_share", percent)),
    Column("Share of recipients", field("recipient_share", percent)),
    Column("95% CI", lambda r: interval(r["recipient_share_low"], r["recipient_share_high"])),
    Column("Ratio", lambda r: f"{r['share_ratio']:.2f}" if r["share_ratio"] == r["share_ratio"] else "-"),
]


def _flag(offer: dict) -> str:
    reasons = (["variance"] if offer["over_variance"] else []) + [
        f"{g} short" for g in offer["under_represented"]
    ]
    return ", ".join(reasons) or "no"


def print_fairness(name: str, figures: dict) -> None:
    limits = figures["thresholds"]
    show(
        f"Fair lending, {name}, {figures['date']}: {figures['eligible']:,} eligible, "
        f"{figures['treatment']:,} in treatment",
        OFFER_COLUMNS,
        figures["offers"],
        f"Variance: the share of an offer's recipients that would have to change group for them to "
        f"look like the eligible audience (total variation distance). Flagged when its 95% CI is above "
        f"{limits['max_variance']:.0%}, or a group's share is significantly below "
        f"{limits['min_share_ratio']:.0%} of its eligible share, with at least "
        f"{limits['min_recipients']:,} recipients.",
    )
    rows = [
        {"offer": f"{o['parameter']}={o['value']} ({o['attribute']})", **g}
        for o in figures["offers"]
        for g in o["groups"]
    ]
    show("Per group", GROUP_COLUMNS, rows)


def register(app: typer.Typer) -> None:
    app.add_typer(fairness_app, name="fairness")
