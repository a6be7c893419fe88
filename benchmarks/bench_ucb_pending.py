"""UCB counting the sends still pending, against the same UCB ignoring them, in the simulated bank.

Feedback arrives two days late: a morning's statistics miss the last two days' sends. Ignoring
them, UCB explores an arm again for sends already on their way (issue 12: "UCB over-explores ...
pending sends are not counted"). ``count_pending`` (default true) counts them as pulls at the
arm's current mean. Both run in the same process on the same seeded worlds (the same customers,
the same draws): the difference per seed is paired. Share of the oracle's expected conversions
over 30 days and over the last 10, mean ± se over seeds, beside plain Thompson sampling, the
gradient-boosting greedy baseline, static A/B and the best arm in hindsight.

    .venv/bin/python benchmarks/bench_ucb_pending.py --seeds 3 --sends-per-day 2000 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decision_quality import RETRAIN, machine  # noqa: E402

from pipelines.simulator import load_scenario, simulate_run  # noqa: E402
from pipelines.simulator.loop import RunResult  # noqa: E402

SCENARIOS = ("default", "continuous_heterogeneity", "no_heterogeneity", "few_arms")
POLICIES = ("ucb", "thompson", "gb_greedy")
SHOWN = ("ucb", "thompson", "gb_greedy", "static_ab", "best_arm")
LAST = 10


def _run(job: tuple[str, int, bool, int, int]) -> tuple[str, int, bool, RunResult]:
    from threadpoolctl import threadpool_limits

    name, seed, count_pending, days, sends = job
    scenario = load_scenario(ROOT / "benchmarks" / "scenarios" / f"{name}.yaml")
    params = {**scenario.policies.params, "ucb": {"count_pending": count_pending}}
    scenario = scenario.model_copy(
        update={"policies": scenario.policies.model_copy(update={"params": params})}
    )
    with threadpool_limits(1):
        run = simulate_run(scenario, POLICIES, seed, days=days, sends_per_day=sends, retrain=RETRAIN)
    return name, seed, count_pending, run


def _share(run: RunResult, label: str, last: int | None = None) -> float:
    days = slice(-last, None) if last else slice(None)
    return float(run.expected[run.row(label)][days].sum() / run.expected[run.row("oracle")][days].sum())


def _estimate(values: list[float]) -> str:
    v = np.asarray(values) * 100
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():.1f} ± {se:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sends-per-day", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [
        (name, seed, count, args.days, args.sends_per_day)
        for name in SCENARIOS
        for seed in range(args.seeds)
        for count in (True, False)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = {(n, s, c): r for n, s, c, r in pool.map(_run, jobs)}
    print(
        f"Machine: {machine()}; {args.seeds} seeds x {args.days} days x {args.sends_per_day:,} sends/day; "
        f"wall {time.perf_counter() - started:.0f} s\n"
    )
    print(
        "| world | UCB counting pending | UCB ignoring pending | paired difference (pts) | "
        + " | ".join(SHOWN[1:])
        + " |"
    )
    print("|---|---|---|---|" + "---|" * (len(SHOWN) - 1))
    for name in SCENARIOS:
        for last in (None, LAST):
            on = [_share(runs[(name, s, True)], "ucb", last) for s in range(args.seeds)]
            off = [_share(runs[(name, s, False)], "ucb", last) for s in range(args.seeds)]
            others = [
                _estimate([_share(runs[(name, s, True)], label, last) for s in range(args.seeds)])
                for label in SHOWN[1:]
            ]
            where = name if last is None else f"{name}, last {LAST} d"
            diff = _estimate([a - b for a, b in zip(on, off, strict=True)])
            print(
                f"| {where} | {_estimate(on)} % | {_estimate(off)} % | {diff} | "
                + " | ".join(f"{o} %" for o in others)
                + " |"
            )


if __name__ == "__main__":
    main()
