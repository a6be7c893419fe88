"""`campaignopt db ...`: the schema."""

from __future__ import annotations

import typer

from pipelines.cli.output import print_json

db_app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the migrations (harmless when already applied)."""
    from pipelines import migrate
    from pipelines.db import get_engine

    engine = get_engine()
    before = migrate.current_revision(engine)
    after = migrate.upgrade(engine, revision)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        typer.echo(f"database at {where} already at revision {after}")
    else:
        typer.echo(f"database at {where} upgraded from {before or 'empty'} to {after}")


@db_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the database URL and its schema revision."""
    from pipelines import migrate
    from pipelines.db import get_engine

    engine = get_engine()
    info = {
        "url": engine.url.render_as_string(hide_password=True),
        "revision": migrate.current_revision(engine),
        "head": migrate.head_revision(engine),
    }
    if as_json:
        print_json(info)
    else:
        for k, v in info.items():
            typer.echo(f"{k:9} {v}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
