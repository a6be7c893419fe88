"""`campaignopt suggest`: untested arms worth a try, and the campaign-file edit for each."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from pipelines.cli.output import console, print_json


def _pct(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2%}"


def _points(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 100:+.2f} pts"


def suggest(
    campaign: str = typer.Option(..., "--campaign", help="Campaign name."),
    file: Path | None = typer.Option(
        None, "--file", help="The campaign's YAML file to diff (default: the stored definition)."
    ),
    top: int = typer.Option(10, "--top", min=1, help="How many candidate arms to show."),
    sample: int = typer.Option(2000, "--sample", min=1, help="Audience customers the model scores."),
    seed: int = typer.Option(0, "--seed", help="Seed of the audience sample and the bootstrap."),
    write_diff: Path | None = typer.Option(
        None, "--write-diff", help="Write the top suggestion's diff here (apply it, then `campaign apply`)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank arms the campaign does not send (new values, excluded combinations) by the champion's
    predicted conversion plus one bootstrap standard error; propose the next value where the best
    send time sits at the campaign's edge. Each suggestion is a diff of the campaign file."""
    from rich.table import Table

    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.suggest import K, load_champion
    from pipelines.suggest import suggest as run_suggest

    load_campaign_by_name(get_engine(), campaign)  # unknown: exit 4, as every command, before the model
    model, note = load_champion()
    report = run_suggest(
        get_engine(), campaign, model=model, model_note=note, file=file, top=top, sample=sample, seed=seed
    )
    first = report.suggestions[:1] or report.edges[:1]
    if write_diff is not None and first:
        write_diff.write_text(first[0].diff, encoding="utf-8")
    if as_json:
        print_json(report.as_json())
        return
    best = report.best_arm
    console.print(f"[bold]{report.campaign}[/bold]: ranked by the {report.basis} ({report.note})")
    console.print(f"current best arm {best['arm_key']}: {_pct(best['mean'])} predicted by the {best['by']}")
    table = Table(title=f"untested arms of {report.campaign}, by mean + {K:g} x uncertainty")
    for col in (
        "Rank",
        "Arm",
        "Change to the campaign file",
        "Predicted conversion",
        "Uncertainty (sd)",
        "Optimistic score",
        "Versus best arm",
        "Model saw values",
    ):
        table.add_column(col, overflow="fold")
    for i, s in enumerate(report.suggestions, 1):
        saw = "-" if s.model_knows_values is None else ("yes" if s.model_knows_values else "no")
        table.add_row(
            str(i),
            ", ".join(s.arm.values()),
            s.change.describe(),
            _pct(s.mean),
            _pct(s.uncertainty),
            _pct(s.optimistic),
            _points(s.lift_vs_best),
            saw,
        )
    console.print(table)
    for edge in report.edges:
        console.print(f"edge: {edge.reason} -> {edge.change.describe()}")
    if write_diff is not None:
        console.print(
            f"diff of '{first[0].change.describe()}' written to {write_diff}"
            if first
            else "nothing to suggest: no diff written"
        )
    elif first:
        console.print(f"top change, as a diff of {report.file} (--write-diff PATH saves it):")
        console.print(first[0].diff, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest)
