"""What a warm start gains in a new campaign's first week, and what misleading history costs.

    .venv/bin/python benchmarks/bench_warm_start.py [--seeds 5] [--sends 2000] [--strengths 20,50,200]

Per seed, on the simulator's default world (benchmarks/scenarios/default.yaml: 48 arms, hidden
per-customer effects, daily noise, feedback 2 days late):

- the previous campaign: the product's segment Thompson sampling (prior Beta(1, 30), as
  campaigns/card_cashback.yaml) runs days 0-29; its matured (segment, arm) statistics are the
  history, as `segment_arm_stats` would hold them;
- the new campaign runs days 30-36 on the same customers' world (new customers each day), from
  cold (the prior alone), warm (the history mapped by pipelines/warm_start.map_history with a
  strength of S pseudo-observations per segment and arm), and *misled*: the same history with its
  arms relabelled so that each segment's best old arm lands on its worst and so on (every ranking
  reversed), the worst a stale history can be.

Figures: expected conversions (the true probabilities of the chosen arms) over the 7 days, as a
share of the oracle's, and warm or misled minus cold in points of the oracle (paired by seed:
the same customers and outcome draws), mean ± standard error.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_common import load_average, machine  # noqa: E402

from bandits import make_policy  # noqa: E402
from pipelines.domain import SEGMENTS  # noqa: E402
from pipelines.simulator import load_scenario  # noqa: E402
from pipelines.simulator.world import World  # noqa: E402
from pipelines.warm_start import map_history  # noqa: E402

PRIOR = {"prior_alpha": 1.0, "prior_beta": 30.0}
HISTORY_DAYS, NEW_DAYS, LAG = 30, 7, 2


def thompson(n_arms: int, pulls: np.ndarray | None = None, rewards: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    policy = make_policy("thompson", n_arms=n_arms, n_segments=len(SEGMENTS), **PRIOR)
    if pulls is not None:
        policy.set_stats(pulls, rewards)
    return policy


def run_days(world: World, policy, first: int, days: int, sends: int, label: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """``policy`` over days first..first+days-1, learning with the feedback lag; returns its
    expected conversions and the oracle's."""
    rng = np.random.default_rng([world.seed, zlib.crc32(label.encode())])
    pending: deque = deque()
    got = best = 0.0
    for day in range(first, first + days):
        batch = world.day_batch(day, sends)
        arms = policy.decide(batch.segments, rng, allowed=batch.allowed).arm
        rows = np.arange(len(batch))
        p = batch.probabilities[rows, arms]
        got += p.sum()
        best += np.where(batch.allowed, batch.probabilities, -np.inf).max(axis=1).sum()
        pending.append((day, batch.segments, arms, (batch.uniforms < p).astype(float)))
        while pending and pending[0][0] <= day - LAG:
            _, segments, chosen, rewards = pending.popleft()
            policy.partial_fit(segments, chosen, rewards)
    return got, best


def history_frame(
    world: World, pulls: np.ndarray, rewards: np.ndarray, relabel: np.ndarray | None
) -> pd.DataFrame:
    """The old campaign's statistics as a history table: a row per (segment, arm) with the arm's
    parameters; ``relabel`` (segment x arm -> arm) moves each row's evidence to another arm."""
    params = world.arms_frame.to_dict("records")
    rows = []
    for s, segment in enumerate(SEGMENTS):
        for a in range(pulls.shape[1]):
            target = a if relabel is None else int(relabel[s, a])
            rows.append(
                {"segment": segment, "sends": pulls[s, a], "rewards": rewards[s, a], **params[target]}
            )
    return pd.DataFrame(rows)


def reversed_ranking(pulls: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Per segment, the arm of rank r (by old posterior mean) relabelled as the arm of rank K-1-r."""
    means = (rewards + PRIOR["prior_alpha"]) / (pulls + PRIOR["prior_alpha"] + PRIOR["prior_beta"])
    order = np.argsort(-means, axis=1, kind="stable")
    relabel = np.empty_like(order)
    for s in range(order.shape[0]):
        relabel[s, order[s]] = order[s, ::-1]
    return relabel


def one_seed(seed: int, sends: int, strengths: list[float]) -> dict[str, float]:
    scenario = load_scenario(ROOT / "benchmarks" / "scenarios" / "default.yaml")
    world = World(scenario, seed)
    n_arms = world.arms.n_arms
    old = thompson(n_arms)
    run_days(world, old, 0, HISTORY_DAYS, sends, "history")
    pulls, rewards = np.asarray(old.pulls_, dtype=float), np.asarray(old.rewards_, dtype=float)
    arm_params = world.arms_frame.to_dict("records")
    cold, oracle = run_days(world, thompson(n_arms), HISTORY_DAYS, NEW_DAYS, sends, "new")
    out = {"oracle": oracle, "cold": cold}
    for strength in strengths:
        for kind, relabel in (("warm", None), ("misled", reversed_ranking(pulls, rewards))):
            warm = map_history(history_frame(world, pulls, rewards, relabel), arm_params, strength)
            out[f"{kind}_{strength:g}"], _ = run_days(
                world, thompson(n_arms, *warm), HISTORY_DAYS, NEW_DAYS, sends, "new"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sends", type=int, default=2_000)
    ap.add_argument("--strengths", default="20,50,200")
    args = ap.parse_args(argv)
    strengths = [float(s) for s in args.strengths.split(",")]
    t0 = time.perf_counter()
    runs = [one_seed(seed, args.sends, strengths) for seed in range(args.seeds)]
    print(machine(), f"load {load_average()}; {time.perf_counter() - t0:.0f} s")
    days = "a new campaign's days 1-7 after 30 days of history"
    print(f"seeds 0-{args.seeds - 1}, {args.sends:,} sends a day; {days}")

    def stat(values: list[float]) -> str:
        v = np.asarray(values) * 100
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return f"{v.mean():+.1f} ± {se:.1f}"

    share = lambda key: [r[key] / r["oracle"] for r in runs]  # noqa: E731
    cold = share("cold")
    print("| start | share of oracle, days 1-7 | minus cold, pp of oracle |\n|---|---|---|")
    print(f"| cold (prior only) | {stat(cold).lstrip('+')} % | — |")
    for strength in strengths:
        for kind in ("warm", "misled"):
            values = share(f"{kind}_{strength:g}")
            diff = [v - c for v, c in zip(values, cold, strict=True)]
            print(f"| {kind}, strength {strength:g} | {stat(values).lstrip('+')} % | {stat(diff)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
