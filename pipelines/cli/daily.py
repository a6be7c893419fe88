"""`campaignopt daily` and `campaignopt retrain`: run a DAG for one day through Airflow."""

from __future__ import annotations

from datetime import date, datetime

import typer


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="'--date'") from None


def daily(
    day: str = typer.Option(..., "--date", help="Logical date D (YYYY-MM-DD)."),
) -> None:
    """Run (or re-run) the daily DAG for D through Airflow, as `airflow dags test` does."""
    from pipelines.cli.dag_progress import dag_progress
    from pipelines.cli.output import console
    from pipelines.orchestration import run_dag
    from pipelines.settings import get_settings

    logical_date = _parse_date(day)
    started = datetime.now()
    if console.is_terminal:  # a person watching; piped output and logs get no bar
        with dag_progress(console, _campaigns_of(logical_date), get_settings().decide_buckets) as follow:
            result = run_dag("daily_campaign_optimization", logical_date, follow=follow)
    else:
        result = run_dag("daily_campaign_optimization", logical_date)
    seconds = (datetime.now() - started).total_seconds()
    typer.echo(f"daily_campaign_optimization {result.logical_date}: {result.state} in {seconds:.0f} s")
    typer.echo(f"log: {result.log_path}")
    _print_day_summary(result.logical_date)


def _campaigns_of(day: date) -> list[str]:
    """The names of the campaigns the run will decide, in its mapping order (by id)."""
    import sqlalchemy as sa

    from pipelines.campaign_store import active_campaign_ids, list_campaigns
    from pipelines.db import get_engine

    try:
        engine = get_engine()
        names = {c["campaign_id"]: c["name"] for c in list_campaigns(engine)}
        return [names[i] for i in active_campaign_ids(engine, day)]
    except sa.exc.DBAPIError:  # not migrated yet: the bar counts them as they start
        return []


def _print_day_summary(day: date) -> None:
    """The day's lists and the KPIs so far, as marketing ops read them."""
    import sqlalchemy as sa

    from pipelines.cli.output import print_table
    from pipelines.db import get_engine
    from pipelines.monitor import campaign_kpis

    with get_engine().connect() as conn:
        lists = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    """select c.name as campaign, s.status, s.n_rows, s.n_control, s.model_version, s.csv_path
                       from ops.send_lists s join ops.campaigns c using (campaign_id)
                       where s.list_date = :d order by c.name"""
                ),
                {"d": day},
            ).mappings()
        ]
        kpis = campaign_kpis(conn, day)
        alerts = [
            r[0]
            for r in conn.execute(sa.text("select message from ops.alerts where alert_date = :d"), {"d": day})
        ]
    print_table(lists, title=f"send lists of {day}")
    from pipelines.cli.figures import print_kpi_table

    cols = ["campaign", "treatment_sends", "treatment_rate", "control_rate", "lift", "lift_ci"]
    print_kpi_table(kpis, "KPIs so far (matured sends)", cols + ["exploration_rate", "roi"])
    for message in alerts:
        typer.echo(f"alert: {message}")


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
