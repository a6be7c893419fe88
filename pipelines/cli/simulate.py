"""`campaignopt simulate`: run policies through the simulated bank and compare them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from pipelines.cli.output import console, err_console, print_json
from pipelines.errors import UserError

if TYPE_CHECKING:
    from pipelines.simulator.report import SimulationReport

_PROGRESS_AFTER_SECONDS = 2.0


class _LateProgress:
    """A rich progress bar on stderr that only appears once a run takes a while."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, days: int) -> None:
        self.done += days
        if self._bar is None and time.monotonic() - self.started > _PROGRESS_AFTER_SECONDS:
            self._bar = Progress(
                "simulating",
                BarColumn(),
                MofNCompleteColumn(),
                "days",
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("simulate", total=self.total)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def simulate(
    scenario: Path | None = typer.Option(
        None, "--scenario", help="Scenario YAML (default: benchmarks/scenarios/default.yaml)."
    ),
    policies: str | None = typer.Option(
        None,
        "--policies",
        help="Comma-separated policies (default: the scenario's). Baselines uniform, static_ab, "
        "best_arm and oracle always run; add segment_oracle/feature_oracle for ceilings and "
        "the suffix _global for a policy without context.",
    ),
    days: int | None = typer.Option(None, "--days", min=1, help="Simulated days (default: the scenario's)."),
    seed: int = typer.Option(0, "--seed", help="First seed."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Number of seeds (seed, seed+1, ...)."),
    sends_per_day: int | None = typer.Option(
        None, "--sends-per-day", min=10, help="Sends per simulated day."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes to spread the seeds over."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (per policy, means and standard errors)."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write cumulative regret and conversion curves (PNG)."
    ),
) -> None:
    """Simulate daily decisions with delayed feedback and compare policies with the baselines.

    Reports, per policy, expected and realised conversions, regret against the oracle,
    share of the oracle's conversions, lift against uniform and static A/B, and days to
    converge — means ± standard errors over the seeds.
    """
    from pipelines.simulator.experiment import run_simulation
    from pipelines.simulator.runners import check_policy_names
    from pipelines.simulator.scenario import DEFAULT_SCENARIO, load_scenario

    scenario_path = scenario or DEFAULT_SCENARIO
    spec = load_scenario(scenario_path)
    names = [p.strip() for p in policies.split(",") if p.strip()] if policies else list(spec.policies.names)
    check_policy_names(names, where="--policies")
    if plot is not None and plot.suffix.lower() != ".png":
        raise UserError(f"--plot: {plot} must be a .png file")
    n_days = days or spec.loop.days
    progress = _LateProgress(total=n_days * seeds)
    try:
        report = run_simulation(
            spec,
            names,
            list(range(seed, seed + seeds)),
            days=n_days,
            sends_per_day=sends_per_day,
            workers=workers,
            progress=progress,
        )
    finally:
        progress.stop()
    if plot is not None:
        from pipelines.simulator.report import plot_report

        plot_report(report, plot)
    if as_json:
        data = report.to_dict()
        data["scenario_file"] = str(scenario_path)
        print_json(data)
        return
    _print_report(report)
    if plot is not None:
        err_console.print(f"chart written to {plot}")


def _print_report(report: SimulationReport) -> None:
    from rich.table import Table

    table = Table(
        title=(
            f"{report.scenario}: {report.days} days x {report.sends_per_day:,} sends, "
            f"lag {report.feedback_lag_days} d, {len(report.seeds)} seed(s), model {report.model}"
        ),
        caption=(
            "mean ± std error over seeds. conv: expected conversions (sum of true probabilities); "
            "oracle %: share of the oracle's; late %: the same over the last fifth of the run; "
            "vs unif / vs A/B: lift; conv d: days to converge"
        ),
    )
    # Short headers: the caption explains them.
    for col in (
        "policy",
        "conv",
        "realised",
        "rate %",
        "regret",
        "oracle %",
        "late %",
        "vs unif %",
        "vs A/B %",
        "conv d",
    ):
        if col == "policy":  # never truncate a policy name, however narrow the terminal
            table.add_column(col, no_wrap=True, min_width=max(len(s.label) for s in report.summaries))
        else:
            table.add_column(col, justify="right")
    for s in report.summaries:
        table.add_row(
            s.label,
            s.expected_conversions.format(".0f"),
            s.realised_conversions.format(".0f"),
            s.conversion_rate.format(".3f", 100),
            s.regret.format(".0f"),
            s.share_of_oracle.format(".1f", 100),
            s.final_share_of_oracle.format(".1f", 100),
            s.lift_vs_uniform.format(".1f", 100),
            s.lift_vs_static_ab.format(".1f", 100),
            s.days_to_converge.format(".1f"),
        )
    console.print(table)
    console.print(f"best single arm in hindsight: {', '.join(report.best_arm)}")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
