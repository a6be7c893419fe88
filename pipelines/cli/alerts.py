"""`campaignopt alerts ...`: list, acknowledge and resolve the alerts in ops.alerts."""

from __future__ import annotations

from datetime import date

import typer
from rich.table import Table

from pipelines.cli.output import console, print_json
from pipelines.errors import UserError

alerts_app = typer.Typer(help="Drift, data-quality and task alerts (ops.alerts).", no_args_is_help=True)

COLUMNS = ("id", "date", "campaign", "kind", "severity", "status", "message")
_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def _status(row: dict) -> str:
    if row["resolved_at"] is not None:
        return f"resolved by {row['resolved_by']}"
    if row["acknowledged_at"] is not None:
        return f"acknowledged by {row['acknowledged_by']}"
    return "open"


def _print_alerts(rows: list[dict], title: str) -> None:
    if not rows:
        console.print(f"[dim]{title}: nothing to show[/dim]")
        return
    table = Table(title=title)
    for column in COLUMNS:  # headers never cut: a column is at least as wide as its name
        table.add_column(column, min_width=len(column), overflow="fold", no_wrap=column != "message")
    for r in rows:
        table.add_row(
            str(r["alert_id"]),
            r["alert_date"].isoformat(),
            r["campaign"] or "-",
            r["kind"],
            f"[{_STYLE[r['severity']]}]{r['severity']}[/]",
            _status(r),
            r["message"],
        )
    console.print(table)


@alerts_app.command("list")
def list_(
    day: str | None = typer.Option(None, "--day", help="Only the alerts of this day (YYYY-MM-DD)."),
    since: str | None = typer.Option(None, "--since", help="Only alerts of this day or later."),
    severity: str | None = typer.Option(
        None, "--severity", help="info, warning or critical: that level and above."
    ),
    kind: str | None = typer.Option(None, "--kind", help="A kind or its prefix, e.g. concept_drift."),
    open_only: bool = typer.Option(False, "--open", help="Only alerts not resolved."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List alerts, newest first."""
    from pipelines.alerts import SEVERITIES, list_alerts
    from pipelines.db import get_engine

    on, after = _day(day, "--day"), _day(since, "--since")  # bad input says so before any connection
    if severity is not None and severity not in SEVERITIES:
        raise UserError(f"--severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    with get_engine().connect() as conn:
        rows = list_alerts(conn, on, after, severity, kind, open_only)
    print_json(rows) if as_json else _print_alerts(rows, "Alerts")


def _mark_command(what: str):
    def command(
        alert_id: int = typer.Argument(..., help="The alert's id (see 'campaignopt alerts list')."),
        by: str = typer.Option(..., "--by", help="Who (a name or an e-mail address)."),
        note: str | None = typer.Option(None, "--note", help="Why, for the next person."),
    ) -> None:
        from pipelines import alerts
        from pipelines.db import get_engine

        with get_engine().begin() as conn:
            row = getattr(alerts, f"{what}_alert")(conn, alert_id, by, note)
        typer.echo(f"alert {row['alert_id']} ({row['kind']}, {row['alert_date']}) {what}d by {by.strip()}")

    return command


alerts_app.command("ack", help="Acknowledge an alert: seen, still applies.")(_mark_command("acknowledge"))
alerts_app.command("resolve", help="Resolve an alert: dealt with; a drift discount stops.")(
    _mark_command("resolve")
)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
