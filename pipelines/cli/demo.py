"""`campaignopt demo`: the main job end to end on simulated days."""

from __future__ import annotations

import typer

from pipelines.cli.daily import _parse_date


def demo(
    days: int = typer.Option(6, "--days", min=1, help="Simulated days to run through the daily DAG."),
    customers: int = typer.Option(20_000, "--customers", min=100, help="Customers in the generated base."),
    start: str = typer.Option("2026-11-02", "--start", help="First logical date."),
    retrain_after: int = typer.Option(4, "--retrain-after", min=0, help="Retrain after N days (0: never)."),
) -> None:
    """Start the database, apply the campaigns, and run simulated days through Airflow."""
    from pipelines.demo import DemoConfig, run_demo
    from pipelines.demo_report import print_demo_report

    config = DemoConfig(
        start=_parse_date(start), days=days, customers=customers, retrain_after=retrain_after or None
    )
    summary = run_demo(config, progress=lambda line: typer.echo(f"- {line}"))
    print_demo_report(summary, config)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
