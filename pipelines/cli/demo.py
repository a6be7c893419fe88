"""`campaignopt demo`: the main job end to end on simulated days."""

from __future__ import annotations

import typer

from pipelines.cli.daily import _parse_date


def demo(
    history_days: int = typer.Option(
        24, "--history-days", min=0, help="Earlier days through the daily job's functions in-process."
    ),
    days: int = typer.Option(2, "--days", min=0, help="Then days through the daily DAG in Airflow."),
    customers: int = typer.Option(40_000, "--customers", min=100, help="Customers in the generated base."),
    start: str = typer.Option("2026-11-02", "--start", help="First logical date."),
    retrain: bool = typer.Option(
        True, "--retrain/--no-retrain", help="Run the retraining DAG after the history."
    ),
    screenshots: bool = typer.Option(
        True, "--screenshots/--no-screenshots", help="Screenshots of the dashboard (needs chromium)."
    ),
) -> None:
    """Start the database, apply the campaigns, simulate a history, run the last days through Airflow."""
    from pipelines.demo import DemoConfig, run_demo
    from pipelines.demo_report import print_demo_report

    config = DemoConfig(
        start=_parse_date(start),
        history_days=history_days,
        days=days,
        customers=customers,
        retrain=retrain,
        screenshots=screenshots,
    )
    summary = run_demo(config, progress=lambda line: typer.echo(f"- {line}"))
    print_demo_report(summary, config)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
