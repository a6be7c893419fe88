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

COMMAND_MODULES = (
    "db",
    "campaign",
    "simulate",
    "daily",
    "sendlist",
    "model",
    "demo",
    "apikey",
    "serve",
    "alerts",
    "anomalies",
    "suggest",
    "report",
    "stream",
    "fairness",
    "explain",
)

app = typer.Typer(
    name="campaignopt",
    help="Optimize bank marketing campaigns with bandits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"pipelines.cli.{_name}").register(app)


def _usage_error_classes() -> tuple[type[Exception], ...]:
    """typer vendors click (``typer._click``) and raises its own classes; plain click's may
    come from a library's command. Both have ``format_message`` and ``exit_code``."""
    classes: list[type[Exception]] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        classes.append(TyperClickException)
    except ImportError:  # an older typer uses click itself
        pass
    try:
        import click

        classes.append(click.ClickException)
    except ImportError:
        pass
    return tuple(classes)


def _usage_line(exc: Exception) -> str:
    """One line: what is wrong, and where to read the usage."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return f"error: {message}"


def main() -> None:
    """Console entry point: user errors and usage errors end in one line on stderr, no traceback."""
    usage_errors = _usage_error_classes()
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `campaignopt` or a group alone: the help
            if exc.format_message().strip():  # type: ignore[attr-defined] # rich printed it already
                typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
        else:
            typer.echo(_usage_line(exc), err=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(n) returns n without standalone mode
