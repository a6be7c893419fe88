"""`campaignopt anomalies ...`: the feedback source-days held out of learning (ops.feedback_holds)."""

from __future__ import annotations

import typer
from rich.table import Table

from pipelines.cli.alerts import _day
from pipelines.cli.output import console, print_json

anomalies_app = typer.Typer(
    help="Feedback anomalies: source-days held out of learning until released.", no_args_is_help=True
)
COLUMNS = ("date", "source", "status", "reason")


def _print_holds(rows: list[dict]) -> None:
    if not rows:
        console.print("[dim]Feedback holds: nothing to show[/dim]")
        return
    table = Table(title="Feedback holds")
    for column in COLUMNS:
        table.add_column(column, min_width=len(column), overflow="fold", no_wrap=column != "reason")
    for r in rows:
        status = f"released by {r['released_by']}" if r["released_at"] else "[bold red]held[/]"
        table.add_row(r["logical_date"].isoformat(), f"{r['channel']}:{r['landing']}", status, r["reason"])
    console.print(table)


@anomalies_app.command("list")
def list_(
    open_only: bool = typer.Option(False, "--open", help="Only the holds not released."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List held feedback source-days, newest first."""
    from pipelines.anomalies import list_holds
    from pipelines.db import get_engine

    with get_engine().connect() as conn:
        rows = list_holds(conn, open_only)
    print_json(rows) if as_json else _print_holds(rows)


@anomalies_app.command("release")
def release(
    source: str = typer.Option(..., "--source", help="CHANNEL:LANDING, e.g. email:file or sms:realtime."),
    day: str = typer.Option(..., "--date", help="The held logical date (YYYY-MM-DD)."),
    by: str = typer.Option(..., "--by", help="Who (a name or an e-mail address)."),
    note: str | None = typer.Option(None, "--note", help="Why it can be learned from, for the next person."),
) -> None:
    """Release a held source-day: the next mart build learns from it; its alert is resolved."""
    from pipelines.anomalies import parse_source, release_hold
    from pipelines.db import get_engine

    channel, landing = parse_source(source)
    on = _day(day, "--date")  # bad input says so before any connection
    with get_engine().begin() as conn:
        row = release_hold(conn, channel, landing, on, by, note)
    typer.echo(
        f"{channel}:{landing} on {on} released by {row['released_by']}: the next mart build "
        "(the next daily run) learns from it"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(anomalies_app, name="anomalies")
