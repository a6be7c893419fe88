"""Concept drift: how soon the monitor's detector alerts, how often it cries wolf, what the response buys.

The simulated bank (pipelines/simulator) runs segment-level Thompson sampling for 30 days of
20,000 sends over 48 arms with a 2-day feedback lag, twice on the same draws: without a
response, and with ``drift: {response: discount, factor: F}`` (each alerted arm's evidence
from before its change counts F times). Every day, after the matured feedback arrives, the
detector of the daily monitor (:func:`bandits.drift.arm_change_points` with
:mod:`pipelines.drift`'s settings) runs over each arm's matured days, as the monitor does on
the marts. The `drift` scenario changes the arm effects on day 15; `default` never changes.

Reported over seeds (mean ± standard error):

- days from the change to the first alert on an arm whose population rate moved >= 25%;
  the share of those arms alerted by the end; alerts before the change (false by construction);
- the expected conversion rate over the N days from the change, with and without the
  response, against the oracle's;
- on `default`, false alarms per arm-day tested.

    .venv/bin/python benchmarks/bench_drift.py --seeds 5 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bandits import make_policy  # noqa: E402
from bandits.drift import arm_change_points  # noqa: E402
from pipelines.domain import SEGMENTS  # noqa: E402
from pipelines.drift import PH_DELTA, PH_MIN_DAYS, PH_THRESHOLD  # noqa: E402
from pipelines.simulator import World, load_scenario  # noqa: E402

CHANGED = 0.25  # relative move of an arm's population rate that counts as a change to find


class DriftAwareThompson:
    """Thompson over (segment x arm) stats rebuilt every day from per-day counts, as segment_stats
    reads the mart; ``factor`` None runs no response."""

    def __init__(self, n_arms: int, days: int, factor: float | None) -> None:
        self.policy = make_policy("thompson", n_arms=n_arms, n_segments=len(SEGMENTS))
        self.pulls = np.zeros((days, len(SEGMENTS), n_arms))
        self.rewards = np.zeros_like(self.pulls)
        self.factor = factor
        self.starts: dict[int, int] = {}  # arm -> first sent day of its new regime
        self.alerts: list[tuple[int, int, int]] = []  # (alert day, arm, sent day of the alarm)
        self._alerted: set[tuple[int, int]] = set()

    def learn(self, day: int, sent_day: int, segments, arms, rewards) -> None:
        np.add.at(self.pulls[sent_day], (segments, arms), 1.0)
        np.add.at(self.rewards[sent_day], (segments, arms), rewards)
        self._monitor(day, sent_day)
        weight = np.ones(self.pulls.shape[::2])  # (days, arms)
        if self.factor is not None:
            for arm, start in self.starts.items():
                weight[:start, arm] = self.factor
        w = weight[:, None, :]
        self.policy.set_stats((self.pulls * w).sum(axis=0), (self.rewards * w).sum(axis=0))

    def _monitor(self, day: int, last: int) -> None:
        """The monitor of ``day``: every arm's matured days so far, new alarms alerted once."""
        for arm in range(self.pulls.shape[2]):
            sent = np.flatnonzero(self.pulls[: last + 1, :, arm].sum(axis=1) > 0)
            conv, sends = self.rewards[sent, :, arm], self.pulls[sent, :, arm]
            for change in arm_change_points(conv, sends, PH_DELTA, PH_THRESHOLD, PH_MIN_DAYS):
                key = (arm, int(sent[change.alarm]))
                if key not in self._alerted:
                    self._alerted.add(key)
                    self.alerts.append((day, arm, key[1]))
                    self.starts[arm] = int(sent[change.start])


def run_seed(args: tuple[str, int, int, int, float, int]) -> dict:
    scenario_name, seed, days, sends, factors, horizon = args
    scenario = load_scenario(ROOT / "benchmarks" / "scenarios" / f"{scenario_name}.yaml")
    world = World(scenario, seed)
    lag = scenario.loop.feedback_lag_days
    runners = {"none": DriftAwareThompson(world.n_arms, days, None)}
    if scenario.drift is not None:  # without a change, the response changes nothing worth measuring
        runners |= {f"discount_{f:g}": DriftAwareThompson(world.n_arms, days, f) for f in factors}
    rngs = {label: np.random.default_rng([seed, i]) for i, label in enumerate(runners)}
    pending = {label: [] for label in runners}
    rate = {label: np.zeros(days) for label in [*runners, "oracle"]}
    for day in range(days):
        batch = world.day_batch(day, sends)
        rows = np.arange(len(batch))
        rate["oracle"][day] = np.where(batch.allowed, batch.probabilities, 0).max(axis=1).mean()
        for label, runner in runners.items():
            arms = runner.policy.decide(batch.segments, rngs[label], allowed=batch.allowed).arm
            p = batch.probabilities[rows, arms]
            rate[label][day] = p.mean()
            pending[label].append((day, batch.segments, arms, (batch.uniforms < p).astype(float)))
            while pending[label] and pending[label][0][0] <= day - lag:
                sent_day, segments, chosen, rewards = pending[label].pop(0)
                runner.learn(day, sent_day, segments, chosen, rewards)
    change = scenario.drift.day if scenario.drift is not None else None
    plain = runners["none"]
    out = {
        "scenario": scenario_name,
        "seed": seed,
        "alerts": len(plain.alerts),
        "arm_days": world.n_arms * (days - lag - 1),
    }
    if change is None:
        return out
    sample = np.arange(min(20_000, len(world.customers)))
    before = world.probabilities(sample, change - 1).mean(axis=0)
    after = world.probabilities(sample, change).mean(axis=0)
    moved = set(np.flatnonzero(np.abs(after / before - 1) >= CHANGED).tolist())
    # Found: alarmed on post-change data of an arm that moved. False: alarmed on pre-change data.
    hits = [(d, a) for d, a, sent in plain.alerts if a in moved and sent >= change]
    window = slice(change, min(change + horizon, days))
    out |= {
        "moved_arms": len(moved),
        "days_to_alert": (min(d for d, _ in hits) - change) if hits else None,
        "moved_alerted": len({a for _, a in hits}) / max(len(moved), 1),
        "alerts_before_change": sum(1 for _, _, sent in plain.alerts if sent < change),
        "arm_days_before_change": world.n_arms * (change - 1),
        **{f"rate_{label}": float(rate[label][window].mean()) for label in rate},
        "rate_before_none": float(rate["none"][change - 5 : change].mean()),
    }
    return out


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 0.0])
    parser.add_argument(
        "--horizon", type=int, default=10, help="N: days after the change the rate is averaged"
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [
        (name, seed, args.days, args.sends, args.factors, args.horizon)
        for name in ("drift", "default")
        for seed in range(args.seeds)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_seed, jobs))
    seconds = time.perf_counter() - started
    drift = [r for r in results if r["scenario"] == "drift"]
    still = [r for r in results if r["scenario"] == "default"]
    summary = {
        "command": " ".join(["benchmarks/bench_drift.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "seconds": round(seconds, 1),
        "factors": args.factors,
        "horizon_days": args.horizon,
        "moved_arms": mean_se([r["moved_arms"] for r in drift]),
        "days_to_alert": mean_se([r["days_to_alert"] for r in drift]),
        "runs_without_alert_on_moved_arm": sum(r["days_to_alert"] is None for r in drift),
        "moved_alerted_share": mean_se([r["moved_alerted"] for r in drift]),
        "false_alarms_per_arm_day_before_change": mean_se(
            [r["alerts_before_change"] / r["arm_days_before_change"] for r in drift]
        ),
        "false_alarms_per_arm_day_no_drift": mean_se([r["alerts"] / r["arm_days"] for r in still]),
        "rate_before_change": mean_se([r["rate_before_none"] for r in drift]),
        "rate_after_none": mean_se([r["rate_none"] for r in drift]),
        "rate_after_oracle": mean_se([r["rate_oracle"] for r in drift]),
        **{
            f"rate_after_discount_{f:g}": mean_se([r[f"rate_discount_{f:g}"] for r in drift])
            for f in args.factors
        },
        **{
            f"discount_{f:g}_minus_none": mean_se([r[f"rate_discount_{f:g}"] - r["rate_none"] for r in drift])
            for f in args.factors
        },
        "per_seed": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
