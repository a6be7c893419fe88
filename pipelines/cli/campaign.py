"""`campaignopt campaign ...`: apply, list and show campaign definitions."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.output import print_json, print_table

campaign_app = typer.Typer(help="Campaign definitions (YAML) and their arms.", no_args_is_help=True)


@campaign_app.command("apply")
def apply(
    files: list[Path] = typer.Argument(..., help="Campaign YAML files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create or update campaigns and their arms (idempotent; arm ids stay stable).

    Every file is validated before anything is written, and all of them are stored in one
    transaction, so one bad file (or a campaign name given twice) changes nothing.
    """
    from dataclasses import asdict

    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaigns, check_unique_names
    from pipelines.db import get_engine

    specs = [(load_campaign(f), f) for f in files]
    check_unique_names(specs)
    results = apply_campaigns(get_engine(), specs)
    if as_json:
        print_json([asdict(r) for r in results])
        return
    for r in results:
        verb = "created" if r.created else ("updated" if r.changed else "unchanged")
        typer.echo(
            f"{r.name}: {verb} (id {r.campaign_id}); {r.arms_active} active arms"
            f" (+{r.arms_added} new, -{r.arms_retired} retired, {r.arms_reactivated} reactivated)"
        )


@campaign_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the campaigns."""
    from pipelines.campaign_store import list_campaigns
    from pipelines.db import get_engine

    rows = list_campaigns(get_engine())
    print_json(rows) if as_json else print_table(rows, title="campaigns")


@campaign_app.command("show")
def show(name: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one campaign: its definition and its arms."""
    import sqlalchemy as sa

    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine

    engine = get_engine()
    campaign = load_campaign_by_name(engine, name)
    with engine.connect() as conn:
        arms = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select arm_id, arm_key, active, is_default from ops.arms "
                    "where campaign_id = :id order by arm_id"
                ),
                {"id": campaign.campaign_id},
            ).mappings()
        ]
    if as_json:
        print_json({"campaign_id": campaign.campaign_id, "definition": campaign.spec.as_json(), "arms": arms})
        return
    spec = campaign.spec
    typer.echo(f"{spec.name} (id {campaign.campaign_id}): {spec.description}")
    typer.echo(f"  dates      {spec.start_date} .. {spec.end_date or 'open'}")
    typer.echo(f"  policy     {spec.policy.name} {spec.policy.params}")
    typer.echo(
        f"  reward     {spec.reward.kind}; holdout {spec.holdout_share:.0%}; "
        f"attribution window {spec.window.describe()}"
    )
    typer.echo(f"  parameters {', '.join(f'{k}: {len(v)}' for k, v in spec.parameters.items())}")
    print_table(arms, title=f"arms of {spec.name}")


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
