"""Real-time decision latency: one customer, 48 arms, in-process, against the plain
per-customer loop (Beta draw per allowed arm, argmax, Monte Carlo propensity).

    .venv/bin/python benchmarks/bench_realtime_decision.py [--calls N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from speed_common import (
    audience,
    baseline_numpy,
    baseline_pure_python,
    campaign_stats,
    load_average,
    machine,
    table,
)

from bandits import make_policy


def latencies(fn, n_calls: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Wall time of each call ``fn(i)``, in microseconds."""
    out = np.empty(n_calls)
    for i in range(n_calls):
        start = time.perf_counter_ns()
        fn(i)
        out[i] = (time.perf_counter_ns() - start) / 1e3
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--arms", type=int, default=48)
    ap.add_argument("--segments", type=int, default=9)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--pure-python-calls", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    print(f"timing {args.calls} single-customer decisions per variant ...", file=sys.stderr, flush=True)

    pulls, rewards = campaign_stats(args.arms, args.segments, args.seed)
    segments, allowed = audience(args.calls, args.arms, args.segments, args.seed + 1)
    model = np.random.default_rng(args.seed + 2).uniform(0, 0.1, size=allowed.shape)
    rng = np.random.default_rng(args.seed + 3)

    def policy(name: str, **params: object):  # type: ignore[no-untyped-def]
        return make_policy(name, args.arms, args.segments, **params).set_stats(pulls, rewards)

    variants = [
        ("thompson, fresh MC draws each call", policy("thompson", draws=args.draws), False),
        ("thompson, fresh draws, draws=200", policy("thompson", draws=200), False),
        ("thompson, reuse_draws=True", policy("thompson", draws=args.draws, reuse_draws=True), False),
        ("thompson_blend + model (200 draws)", policy("thompson_blend"), True),
        ("ucb", policy("ucb"), False),
        ("epsilon_greedy + model", policy("epsilon_greedy"), True),
    ]
    results: dict[str, dict[str, float]] = {}
    for label, pol, with_model in variants:

        def call(i: int, pol=pol, with_model=with_model) -> None:  # type: ignore[no-untyped-def]
            pol.decide(segments[i : i + 1], rng, allowed[i : i + 1], model[i : i + 1] if with_model else None)

        call(0)  # warm-up (imports, first allocation)
        lat = latencies(call, args.calls)
        results[label] = {"median_us": float(np.median(lat)), "p99_us": float(np.percentile(lat, 99))}

    ts = policy("thompson")

    def base_call(i: int) -> None:
        baseline_numpy(ts.alpha_, ts.beta_, segments[i : i + 1], allowed[i : i + 1], args.draws, rng)

    lat = latencies(base_call, args.calls)
    baseline = {"median_us": float(np.median(lat)), "p99_us": float(np.percentile(lat, 99))}

    def py_call(i: int) -> None:
        baseline_pure_python(ts.alpha_, ts.beta_, segments[i : i + 1], allowed[i : i + 1], args.draws, i)

    lat = latencies(py_call, args.pure_python_calls)
    pure = {"median_us": float(np.median(lat)), "p99_us": float(np.percentile(lat, 99))}
    for r in results.values():
        r["speedup_vs_numpy_loop"] = baseline["median_us"] / r["median_us"]
    out = {
        "machine": {**machine(), "load_average_1min": round(load_average(), 2)},
        "setup": {"arms": args.arms, "segments": args.segments, "calls": args.calls, "mc_draws": args.draws},
        "policies": results,
        "baseline_numpy_loop": baseline,
        "baseline_pure_python": {**pure, "calls": args.pure_python_calls},
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    m = out["machine"]
    print(
        f"one customer x {args.arms} arms, {args.segments} segments, "
        f"{args.calls} calls, {args.draws} MC draws"
    )
    print(
        f"machine: {m['nproc']} cores, {m['cpu']}, numpy {m['numpy']}, {m['date']}, "
        f"1-min load average {m['load_average_1min']}"
    )
    rows = [
        (label, f"{r['median_us']:,.0f}", f"{r['p99_us']:,.0f}", f"{r['speedup_vs_numpy_loop']:,.1f}x")
        for label, r in results.items()
    ]
    rows.append(
        (
            "baseline: plain loop, numpy per customer",
            f"{baseline['median_us']:,.0f}",
            f"{baseline['p99_us']:,.0f}",
            "1.0x",
        )
    )
    rows.append(
        (
            f"baseline: pure Python ({args.pure_python_calls} calls)",
            f"{pure['median_us']:,.0f}",
            f"{pure['p99_us']:,.0f}",
            f"{baseline['median_us'] / pure['median_us']:.2f}x",
        )
    )
    print(table(rows, ("variant", "median us", "p99 us", "vs numpy loop")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
