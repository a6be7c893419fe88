"""The `campaignopt` command line: one typer app, one module per command group.

Each module in ``COMMAND_MODULES`` exposes ``register(app: typer.Typer) -> None``.
Errors a user can cause are raised as :class:`pipelines.errors.UserError` and end in
one line on stderr with exit code 2 (bad input) or 3 (unreachable service).
"""

from __future__ import annotations

import importlib
import sys

import typer

from pipelines.errors import UserError

COMMAND_MODULES = ("db", "campaign", "simulate", "daily", "sendlist", "model", "demo")

app = typer.Typer(
    name="campaignopt",
    help="Optimize bank marketing campaigns with bandits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"pipelines.cli.{_name}").register(app)


def main() -> None:
    """Console entry point: run the app and turn user errors into one line."""
    try:
        app(standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
