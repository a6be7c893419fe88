"""Cost- and capacity-aware allocation (issue 12, part 3): profit and overrun on the simulator, and
the decide's cost with pricing against the unconstrained decide, measured in the same run.

    .venv/bin/python benchmarks/bench_capacity.py [--seeds 5] [--sends 100000] [--speed-customers 1000000]

(a) Simulator (benchmarks/scenarios/default.yaml: 48 arms, the scenario's noisy-truth model): one
    day's list of ``--sends`` customers per seed under an SMS budget, branch slots and a loan share.
    The policy is thompson_blend on a learned state (segment x arm statistics drawn from the true
    rates); the value is P(convert) x 150 - channel cost with the model's P. Compared:
    - unconstrained-truncated: the expected-value choice without prices, then the sends over each
      capacity (in random order) moved to the customer's best free arm;
    - priced: LP prices on a 4,000-customer sample, the priced choice, the exact repair.
    Profit is expected (true P) and realised (the world's outcome draws), per seed; overrun is the
    priced list's before the repair (after it: 0 by construction, checked).
(b) Speed: pipelines.decide.choose_arms_by_shard over ``--speed-customers`` x 56 arms (the
    cross-sell campaign), thompson_blend with per-customer model scores, unconstrained vs priced
    (sample LP + priced choice + repair), each timed in this run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
import yaml
from speed_common import audience, campaign_stats, machine

from bandits import make_policy
from pipelines import allocation as A
from pipelines.campaign_spec import CampaignSpec, load_campaign
from pipelines.campaign_store import Campaign
from pipelines.decide import ModelHandle, choose_arms_by_shard, priced_inputs
from pipelines.domain import SEGMENTS
from pipelines.simulator import World, load_scenario
from pipelines.simulator.arms import arm_parameters

COSTS = {"email": 0.01, "sms": 0.06, "app_push": 0.005, "branch": 3.0}
VALUE = 150.0
SAMPLE = 4_000


def capacities(sends: int) -> list[dict]:
    return [
        {"where": {"channel": "sms"}, "max_cost": round(0.06 * 0.05 * sends, 2)},  # 5% of sends by SMS
        {"where": {"channel": "branch"}, "max_sends": int(0.01 * sends)},  # 1% branch slots
        {"where": {"offer_type": "loan"}, "max_share": 0.15},
    ]


def sim_seed(seed: int, sends: int, truth: bool) -> dict[str, float]:
    scenario = load_scenario("benchmarks/scenarios/default.yaml")
    scenario = scenario.model_copy(update={"customers": max(2 * sends, 50_000)})
    world = World(scenario, seed)
    batch = world.day_batch(10, sends)
    arms = arm_parameters(world.arms_frame)
    spec = CampaignSpec(
        name="sim",
        start_date="2026-01-01",
        parameters={k: list(v) for k, v in scenario.arms.items()},
        channel_costs=COSTS,
        reward={"conversion_value": VALUE},
        objective={"kind": "expected_value", "exploration": 0.1},
        capacities=capacities(len(batch)),
    )
    alloc = A.allocation_for(spec, arms)
    rng = np.random.default_rng([seed, 7])
    pulls = np.full((len(SEGMENTS), world.n_arms), 300.0)
    rewards = rng.binomial(300, world.segment_arm_rates(10)).astype(float)
    policy = make_policy("thompson_blend", n_arms=world.n_arms, n_segments=len(SEGMENTS))
    policy.set_stats(pulls, rewards)
    proba = batch.probabilities if truth else batch.model_proba  # the values' P(convert)
    values, probs = priced_inputs(policy, alloc, batch.segments, batch.allowed, proba, *rng.spawn(2))
    n = len(batch)
    true_p, cost = batch.probabilities, alloc.arm_cost

    def profit(arm: np.ndarray) -> tuple[float, float]:
        rows = np.arange(n)
        expected = float((true_p[rows, arm] * VALUE - cost[arm]).sum())
        realised = float(((batch.uniforms < true_p[rows, arm]) * VALUE - cost[arm]).sum())
        return expected, realised

    budgets = alloc.budgets(n)
    # Unconstrained, then truncated: overflow in random order to the best free arm.
    free = A.priced_choice(alloc, values, batch.allowed, probs, np.random.default_rng([seed, 8]))
    order = np.random.default_rng([seed, 9]).permutation(n)
    everyone = np.ones(n, dtype=bool)
    trunc, _ = A.repair(alloc, free.arm, everyone, free.fallback, np.zeros(n), order)
    # Priced: sample LP, priced choice, exact repair (least regret first).
    t0 = time.perf_counter()
    s = np.sort(np.random.default_rng([seed, 10]).choice(n, size=min(SAMPLE, n), replace=False))
    priced_alloc = A.solve_prices(alloc, values[s], batch.allowed[s], probs[s], n, n, np.zeros(len(budgets)))
    lp_seconds = time.perf_counter() - t0
    priced = A.priced_choice(priced_alloc, values, batch.allowed, probs, np.random.default_rng([seed, 8]))
    overrun = (A.list_usage(alloc, priced.arm) - budgets) / budgets
    final, moved = A.repair(alloc, priced.arm, everyone, priced.fallback, priced.regret, np.arange(n))
    after = A.list_usage(alloc, final) - budgets
    assert (after <= 1e-9).all(), after
    (te, tr), (pe, pr) = profit(trunc), profit(final)
    out = {
        "seed": seed,
        "values": "truth" if truth else "model",
        "sends": n,
        "unconstrained_over": (A.list_usage(alloc, free.arm) / budgets).round(3).tolist(),
        "trunc_expected": te,
        "trunc_realised": tr,
        "priced_expected": pe,
        "priced_realised": pr,
        "overrun_before_repair": overrun.round(5).tolist(),
        "moved_share": float(moved.mean()),
        "prices": priced_alloc.prices.round(4).tolist(),
        "lp_seconds": lp_seconds,
    }
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def speed(n: int, seed: int) -> dict[str, float]:
    spec = load_campaign("campaigns/cross_sell.yaml")
    data = json.loads(spec.model_dump_json())
    data |= {"objective": "expected_value", "capacities": capacities(n)}
    spec = CampaignSpec(**data)
    arms = spec.arms()
    ids = list(range(1, len(arms) + 1))
    control = ids[[a for a in arms].index(spec.control_arm())]
    campaign = Campaign(1, spec, ids, arms, control)
    pulls, rewards = campaign_stats(len(arms), len(SEGMENTS), seed)
    segments, allowed = audience(n, len(arms), len(SEGMENTS), seed + 1)
    proba = np.random.default_rng(seed + 2).uniform(0, 0.1, size=allowed.shape).astype(np.float32)
    rng = np.random.default_rng(seed + 3)
    customers = pd.DataFrame(
        {"segment_idx": segments, "is_control": rng.random(n) < 0.1, "shard": np.sort(rng.integers(0, 64, n))}
    )
    model = ModelHandle("bench", lambda c, a, allowed=None: proba[c.index.to_numpy()])
    policy = make_policy("thompson_blend", n_arms=len(arms), n_segments=len(SEGMENTS))
    policy.set_stats(pulls, rewards)
    t0 = time.perf_counter()
    base = choose_arms_by_shard(campaign, policy, customers, allowed, seed, model)
    t_base = time.perf_counter() - t0

    t0 = time.perf_counter()
    alloc = A.allocation_for(spec, arms)
    treat = np.flatnonzero(~customers["is_control"].to_numpy())
    s = treat[:: max(1, len(treat) // SAMPLE)]
    values, probs = priced_inputs(policy, alloc, segments[s], allowed[s], proba[s], *rng.spawn(2))
    static = base["arm_idx"][customers["is_control"].to_numpy()]
    alloc = A.solve_prices(alloc, values, allowed[s], probs, n, len(treat), A.list_usage(alloc, static))
    t_lp = time.perf_counter() - t0
    out = choose_arms_by_shard(campaign, policy, customers, allowed, seed, model, alloc)
    t_choice = time.perf_counter() - t0 - t_lp
    arm, moved = A.repair(
        alloc,
        out["arm_idx"],
        ~customers["is_control"].to_numpy(),
        out["fallback_idx"],
        out["capacity_regret"],
        np.arange(n),
    )
    t_priced = time.perf_counter() - t0
    over = A.list_usage(alloc, out["arm_idx"]) / alloc.budgets(n) - 1
    return {
        "customers": n,
        "arms": len(arms),
        "unconstrained_s": t_base,
        "priced_s": t_priced,
        "lp_s": t_lp,
        "choice_s": t_choice,
        "repair_s": t_priced - t_lp - t_choice,
        "ratio": t_priced / t_base,
        "overrun_before_repair": over.round(5).tolist(),
        "moved_share": float(moved.mean()),
    }


def mean_se(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():,.1f} ± {se:,.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sends", type=int, default=100_000)
    ap.add_argument("--speed-customers", type=int, default=1_000_000)
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)
    report: dict = {"machine": machine()}
    if not args.skip_sim:
        report["sim"] = {}
        for truth in (False, True):
            rows = [sim_seed(seed, args.sends, truth) for seed in range(args.seeds)]
            gain = [100 * (r["priced_expected"] / r["trunc_expected"] - 1) for r in rows]
            gain_r = [100 * (r["priced_realised"] / r["trunc_realised"] - 1) for r in rows]
            worst = [max(r["overrun_before_repair"]) * 100 for r in rows]
            report["sim"]["true P as values" if truth else "scenario model as values"] = {
                "expected_profit_truncated": mean_se([r["trunc_expected"] for r in rows]),
                "expected_profit_priced": mean_se([r["priced_expected"] for r in rows]),
                "expected_gain_pct": mean_se(gain),
                "realised_gain_pct": mean_se(gain_r),
                "worst_overrun_before_repair_pct": mean_se(worst),
                "max_overrun_before_repair_pct": max(worst),
                "moved_by_repair_pct": mean_se([100 * r["moved_share"] for r in rows]),
            }
    if not args.skip_speed:
        report["speed"] = speed(args.speed_customers, 0)
    print(yaml.safe_dump(report, sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
