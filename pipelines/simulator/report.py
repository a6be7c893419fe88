"""Per-policy results over seeds: means with standard errors, curves, JSON and a chart.

Definitions (per seed, then mean and standard error over seeds):

- expected conversions: sum over sends of the true P(conversion) of the chosen arm;
  realised conversions: the conversions actually drawn.
- regret: the oracle's expected conversions minus the policy's.
- share of oracle: policy / oracle expected conversions; final share of oracle: the
  same over the last fifth of the run (at least 3 days), once learning is done.
- lift vs uniform / vs static A/B: policy / baseline expected conversions - 1.
- days to converge: first day from which the policy's daily share of the oracle
  (3-day trailing mean) stays within ``converge_tolerance`` of its final level (mean of the last fifth of the
  run, at least 3 days); the horizon when it never settles. Measured against the
  oracle's same-day conversions so the day-to-day noise of the world cancels.
- days to beat best arm: first day from which the policy's daily expected conversions
  stay at or above the best single arm's; the horizon when never.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.simulator.loop import RunResult
from pipelines.simulator.runners import BASELINES, CEILINGS


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds and its standard error (NaN with a single seed)."""

    mean: float
    se: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Estimate:
        v = np.asarray(values, dtype=np.float64)
        se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
        return cls(float(v.mean()), se)

    def format(self, spec: str = ".4g", scale: float = 1.0) -> str:
        text = format(self.mean * scale, spec)
        se_spec = spec.lstrip("+")  # a sign belongs to the mean, not to its standard error
        return text if math.isnan(self.se) else f"{text} ± {format(self.se * scale, se_spec)}"


@dataclass(frozen=True)
class PolicySummary:
    label: str
    expected_conversions: Estimate
    realised_conversions: Estimate
    conversion_rate: Estimate
    regret: Estimate
    share_of_oracle: Estimate
    final_share_of_oracle: Estimate
    lift_vs_uniform: Estimate
    lift_vs_static_ab: Estimate
    days_to_converge: Estimate
    days_to_beat_best_arm: Estimate


@dataclass(frozen=True)
class SimulationReport:
    """Everything a run over several seeds measured.

    ``daily_rate`` and ``cumulative_regret`` map each label to a curve of length ``days``,
    averaged over seeds (expected conversions per send, and cumulative expected regret).
    """

    scenario: str
    days: int
    sends_per_day: int
    feedback_lag_days: int
    seeds: list[int]
    model: str
    best_arm: list[str]
    summaries: list[PolicySummary]
    daily_rate: dict[str, list[float]] = field(repr=False)
    cumulative_regret: dict[str, list[float]] = field(repr=False)

    def summary(self, label: str) -> PolicySummary:
        return next(s for s in self.summaries if s.label == label)

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not curves:
            data.pop("daily_rate")
            data.pop("cumulative_regret")
        return _nan_to_none(data)


def summarize(
    runs: Sequence[RunResult],
    *,
    scenario: str,
    lag: int,
    model: str,
    tolerance: float,
    tail_days: int | None = None,
) -> SimulationReport:
    """Aggregate seeded runs of the same scenario and policies into a report.

    ``tail_days``: the window of the final share of the oracle (default: the last fifth, at least 3).
    """
    first = runs[0]
    days = first.expected.shape[1]
    tail = min(days, tail_days or max(3, days // 5))
    per_seed: dict[str, list[dict[str, float]]] = {label: [] for label in first.labels}
    for run in runs:
        oracle = run.expected[run.row("oracle")]
        uniform = run.expected[run.row("uniform")].sum()
        static_ab = run.expected[run.row("static_ab")].sum()
        best_arm = run.expected[run.row("best_arm")]
        for label in run.labels:
            daily = run.expected[run.row(label)]
            per_seed[label].append(
                {
                    "expected_conversions": daily.sum(),
                    "realised_conversions": run.realised[run.row(label)].sum(),
                    "conversion_rate": daily.sum() / run.sends.sum(),
                    "regret": oracle.sum() - daily.sum(),
                    "share_of_oracle": daily.sum() / oracle.sum(),
                    "final_share_of_oracle": daily[-tail:].sum() / oracle[-tail:].sum(),
                    "lift_vs_uniform": daily.sum() / uniform - 1.0,
                    "lift_vs_static_ab": daily.sum() / static_ab - 1.0,
                    "days_to_converge": days_to_settle(daily / oracle, tolerance),
                    "days_to_beat_best_arm": days_to_stay_above(daily, best_arm),
                }
            )
    summaries = [
        PolicySummary(label=label, **{k: Estimate.of([m[k] for m in metrics]) for k in metrics[0]})
        for label, metrics in per_seed.items()
    ]
    sends = np.mean([run.sends for run in runs], axis=0)
    daily_rate = {
        label: (np.mean([run.expected[run.row(label)] for run in runs], axis=0) / sends).tolist()
        for label in first.labels
    }
    cumulative_regret = {
        label: np.mean(
            [np.cumsum(run.expected[run.row("oracle")] - run.expected[run.row(label)]) for run in runs],
            axis=0,
        ).tolist()
        for label in first.labels
    }
    return SimulationReport(
        scenario=scenario,
        days=days,
        sends_per_day=int(round(sends.mean())),
        feedback_lag_days=lag,
        seeds=[run.seed for run in runs],
        model=model,
        best_arm=sorted({run.best_arm for run in runs}),
        summaries=summaries,
        daily_rate=daily_rate,
        cumulative_regret=cumulative_regret,
    )


def _regret(run: RunResult, label: str) -> np.ndarray:
    return run.expected[run.row("oracle")] - run.expected[run.row(label)]


def days_to_settle(series: np.ndarray, tolerance: float, smooth_days: int = 3) -> float:
    """First index from which ``series`` stays within ``tolerance`` of its final level.

    The series is first averaged over a trailing window of ``smooth_days`` (fewer at the
    start) so one noisy day does not reset convergence.
    """
    n = series.size
    csum = np.concatenate([[0.0], np.cumsum(series)])
    start = np.maximum(np.arange(n) + 1 - smooth_days, 0)
    smoothed = (csum[1:] - csum[start]) / (np.arange(n) + 1 - start)
    final = series[-max(3, n // 5) :].mean()
    outside = np.flatnonzero(np.abs(smoothed - final) > tolerance)
    return float(outside[-1] + 1) if outside.size else 0.0


def days_to_stay_above(series: np.ndarray, reference: np.ndarray) -> float:
    """First index from which ``series >= reference`` holds to the end (``len`` if never)."""
    below = np.flatnonzero(series < reference)
    return float(below[-1] + 1) if below.size else 0.0


def plot_report(report: SimulationReport, path: str | Path) -> Path:
    """Cumulative regret and daily conversion rate per policy, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig, (ax_regret, ax_rate) = plt.subplots(1, 2, figsize=(13, 5))
    days = np.arange(report.days)  # 0-based, as in the loop and days-to-converge
    colours = plt.get_cmap("tab20").colors  # enough distinct colours for every policy
    for i, label in enumerate(report.daily_rate):
        dashes = "--" if label in BASELINES else ":" if label in CEILINGS else "-"
        style = {"linestyle": dashes, "color": colours[i % len(colours)], "label": label}
        if label != "oracle":
            ax_regret.plot(days, report.cumulative_regret[label], **style)
        ax_rate.plot(days, np.asarray(report.daily_rate[label]) * 100.0, **style)
    ax_regret.set(title="Cumulative regret vs oracle", xlabel="day", ylabel="expected conversions")
    ax_rate.set(title="Daily conversion rate (expected)", xlabel="day", ylabel="% of sends")
    ax_rate.legend(fontsize=8, ncol=2)
    for ax in (ax_regret, ax_rate):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(
        f"{report.scenario}: {report.sends_per_day:,} sends/day, lag {report.feedback_lag_days} d, "
        f"{len(report.seeds)} seed(s), model {report.model}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
