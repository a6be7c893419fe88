"""`campaignopt model ...`: list, promote and roll back response-model versions; retrain.

Versions live in the MLflow model registry (one registered model per environment,
``campaignopt-response-<env>``); scorers use the one with alias ``champion``.
"""

from __future__ import annotations

import getpass
import math
import os
from contextlib import contextmanager

import typer

from pipelines.cli.output import print_json, print_table
from pipelines.errors import NotFound, ServiceUnavailable, UserError

UI_HELP = (
    "Browse runs, charts and versions in the MLflow UI (then open http://127.0.0.1:5000):\n\n"
    "    mlflow ui --backend-store-uri \"$MLFLOW_TRACKING_URI\" --port 5000 --workers 1\n\n"
    "MLFLOW_TRACKING_URI defaults to the database 'mlflow' on the project's PostgreSQL "
    "(postgresql+psycopg://USER@HOST:5432/mlflow); artifacts live under "
    "~/.campaignopt/mlartifacts. `campaignopt model ui` prints the exact command."
)

model_app = typer.Typer(
    name="model",
    help="Response model versions in MLflow: list, promote, roll back, retrain.\n\n" + UI_HELP,
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach the ``model`` command group to the main app."""
    app.add_typer(model_app, name="model")


@contextmanager
def _registry_errors():
    """Registry failures end in one line: unknown version -> NotFound, unreachable -> ServiceUnavailable,
    a gate-refused version without --force -> UserError (exit 2)."""
    from ml.registry import GateRefused, RegistryUnavailable, UnknownModelVersion

    try:
        yield
    except GateRefused as exc:
        raise UserError(str(exc)) from None
    except UnknownModelVersion as exc:
        raise NotFound(str(exc)) from None
    except RegistryUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None


def _target():
    from pipelines.retrain import registry_target

    return registry_target()


@model_app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON (for scripts)."),
) -> None:
    """List registered versions, newest first, with aliases, gate status and key metrics."""
    from ml.registry import list_versions

    with _registry_errors():
        target = _target()
        versions = list_versions(target)
    if as_json:
        print_json({"model_name": target.model_name, "versions": _jsonable(versions)})
        return
    if not versions:
        typer.echo(f"model {target.model_name}: no versions yet (run `campaignopt model retrain`)")
        return
    rows = [
        {
            "version": row["version"],
            "aliases": ",".join(row["aliases"]) or None,
            "status": row["status"] or None,
            "gate": {True: "passed", False: "refused"}.get(row["gate"]["passed"]),
            "auc": _round(row["metrics"]["auc"], 3),
            "log loss": _round(row["metrics"]["log_loss"], 4),
            "DR value": _round(row["metrics"]["ope_dr_value"], 4),
            "validated on": row["valid_window"] or None,
        }
        for row in versions
    ]
    print_table(rows, title=f"model {target.model_name}")


BY_HELP = "Who does it (recorded on the version); default $CAMPAIGNOPT_USER or the login name."


def _who(by: str | None) -> str:
    by = by or os.environ.get("CAMPAIGNOPT_USER") or ""
    if not by:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):  # no login name (e.g. a container without a passwd entry)
            by = "unknown"
    return by


@model_app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="Registered version number to make champion."),
    force: bool = typer.Option(
        False, "--force", help="Promote although the gate refused (or never judged) it; needs --reason."
    ),
    by: str = typer.Option(None, "--by", help=BY_HELP),
    reason: str = typer.Option("", "--reason", help="Why (recorded on the version)."),
) -> None:
    """Make VERSION the champion (scorers pick it up on their next load).

    Records who, when and why on the version (tags promoted_by, promoted_at, promote_reason,
    promote_forced; see `model list --json`).
    """
    from ml.registry import Actor, promote

    if force and not reason.strip():
        raise UserError("--force needs --reason: say why the gate's verdict is overridden")
    with _registry_errors():
        target = _target()
        previous = promote(target, version, actor=Actor(by=_who(by), reason=reason), force=force)
    was = f" (was {previous})" if previous else ""
    typer.echo(f"{target.model_name}: version {version} is now champion{was}")


@model_app.command("rollback")
def rollback_command(
    by: str = typer.Option(None, "--by", help=BY_HELP),
    reason: str = typer.Option("", "--reason", help="Why (recorded on both versions)."),
) -> None:
    """Give the champion alias back to the previous champion (who, when and why are recorded)."""
    from ml.registry import Actor, rollback

    with _registry_errors():
        target = _target()
        old, new = rollback(target, actor=Actor(by=_who(by), reason=reason))
    typer.echo(f"{target.model_name}: champion rolled back from version {old} to version {new}")


@model_app.command("retrain")
def retrain_command(
    as_of: str = typer.Option(None, "--as-of", help="Logical date YYYY-MM-DD: decisions up to it."),
    min_examples: int = typer.Option(1000, "--min-examples", help="Skip with fewer matured examples."),
    auto_promote: bool = typer.Option(True, "--promote/--no-promote", help="Promote when the gate passes."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train on analytics.training_examples, register a challenger, gate it, maybe promote it."""
    from pipelines.retrain import retrain

    typer.echo("retraining: load -> train -> evaluate -> register -> gate -> promote", err=True)
    try:
        with _registry_errors():
            result = retrain(config={"min_examples": min_examples, "auto_promote": auto_promote}, as_of=as_of)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(_jsonable(result))
    elif result["status"] == "skipped":
        typer.echo(f"skipped: {result['reason']}")
    else:
        verdict = "promoted to champion" if result["promoted"] else "kept as challenger"
        typer.echo(f"version {result['version']} (run {result['run_id']}): {verdict}")
        typer.echo(f"gate: {result['gate']}")
        for key, value in result["metrics"].items():
            typer.echo(f"  {key:<18} {_fmt(value, 5)}")


@model_app.command("ui")
def ui_command() -> None:
    """Print the command that serves the MLflow UI for this environment (does not run it)."""
    from pipelines.retrain import mlflow_ui_command

    typer.echo(mlflow_ui_command())


def _round(value, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
