"""`campaignopt daily` and `campaignopt retrain`: run a DAG for one day through Airflow."""

from __future__ import annotations

from datetime import date, datetime

import typer


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def daily(
    day: str = typer.Option(..., "--date", help="Logical date D (YYYY-MM-DD)."),
) -> None:
    """Run (or re-run) the daily DAG for D through Airflow, as `airflow dags test` does."""
    from pipelines.orchestration import run_dag

    started = datetime.now()
    result = run_dag("daily_campaign_optimization", _parse_date(day))
    seconds = (datetime.now() - started).total_seconds()
    typer.echo(f"daily_campaign_optimization {result.logical_date}: {result.state} in {seconds:.0f} s")
    typer.echo(f"log: {result.log_path}")


def retrain(
    day: str = typer.Option(None, "--date", help="Logical date (default: today)."),
) -> None:
    """Run the model retraining DAG through Airflow."""
    from pipelines.orchestration import run_dag

    result = run_dag("model_retraining", _parse_date(day) if day else date.today())
    typer.echo(f"model_retraining {result.logical_date}: {result.state}; log: {result.log_path}")


def register(app: typer.Typer) -> None:
    app.command("daily")(daily)
    app.command("retrain")(retrain)
