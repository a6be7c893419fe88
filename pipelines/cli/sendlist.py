"""`campaignopt sendlist ...`: what marketing ops pull every morning."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.daily import _parse_date
from pipelines.cli.output import print_json, print_table

sendlist_app = typer.Typer(help="Daily send lists: status and exports.", no_args_is_help=True)


@sendlist_app.command("export")
def export(
    campaign: str = typer.Option(..., "--campaign", help="Campaign name."),
    day: str = typer.Option(..., "--date", help="List date (YYYY-MM-DD)."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    output: Path = typer.Option(None, "--output", help="Write here (default: print the export's path)."),
) -> None:
    """Export a published send list; an unpublished or missing list is an error."""
    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.publish import export_list

    engine = get_engine()
    path, rows = export_list(engine, load_campaign_by_name(engine, campaign), _parse_date(day), fmt, output)
    typer.echo(f"{path} ({rows} rows)")


@sendlist_app.command("status")
def status(
    day: str = typer.Option(None, "--date", help="Only this list date."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Lists per campaign and date: draft or published, size, control share, model."""
    import sqlalchemy as sa

    from pipelines.db import get_engine

    with get_engine().connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    """select c.name as campaign, s.list_date, s.status, s.n_rows, s.n_control,
                              s.model_version, s.csv_path
                       from ops.send_lists s join ops.campaigns c using (campaign_id)
                       where cast(:d as date) is null or s.list_date = cast(:d as date)
                       order by s.list_date desc, c.name limit 60"""
                ),
                {"d": _parse_date(day) if day else None},
            ).mappings()
        ]
    print_json(rows) if as_json else print_table(rows, title="send lists")


def register(app: typer.Typer) -> None:
    app.add_typer(sendlist_app, name="sendlist")
