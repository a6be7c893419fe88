"""Run a scenario over several seeds (optionally in parallel processes) and summarize."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from pipelines.simulator.loop import Progress, RunResult, simulate_run
from pipelines.simulator.report import SimulationReport, summarize
from pipelines.simulator.scenario import Scenario


def run_simulation(
    scenario: Scenario,
    policies: Sequence[str],
    seeds: Sequence[int],
    *,
    days: int | None = None,
    sends_per_day: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> SimulationReport:
    """Simulate ``policies`` and the baselines on every seed and summarize.

    Parameters
    ----------
    scenario : Scenario
    policies : sequence of str
        Policy names; see :func:`pipelines.simulator.runners.make_runner`.
    seeds : sequence of int
        One independent world per seed.
    days, sends_per_day : int, optional
        Override the scenario's loop settings.
    workers : int
        Processes to spread the seeds over; 1 runs in this process.
    progress : callable, optional
        Called with the number of simulated days completed (per day in-process, per seed
        with workers).

    Returns
    -------
    SimulationReport
    """
    if not seeds:
        raise ValueError("seeds must not be empty")
    days = days or scenario.loop.days
    runs: list[RunResult]
    if workers > 1 and len(seeds) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(seeds))) as pool:
            futures = [
                pool.submit(
                    simulate_run, scenario, list(policies), seed, days=days, sends_per_day=sends_per_day
                )
                for seed in seeds
            ]
            runs = []
            for future in futures:
                runs.append(future.result())
                if progress is not None:
                    progress(days)
    else:
        runs = [
            simulate_run(scenario, policies, seed, days=days, sends_per_day=sends_per_day, progress=progress)
            for seed in seeds
        ]
    return summarize(
        runs,
        scenario=scenario.name,
        lag=scenario.loop.feedback_lag_days,
        model=_model_label(scenario),
        tolerance=scenario.loop.converge_tolerance,
    )


def _model_label(scenario: Scenario) -> str:
    model = scenario.model
    return model.kind if model.kind == "none" else f"{model.kind}(noise_sd={model.noise_sd})"
