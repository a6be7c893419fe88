"""Daily batch decision speed: 1,000,000 customers x 48 arms, segment-level Thompson
sampling with Monte Carlo propensities, against the plain per-customer loop.

    .venv/bin/python benchmarks/bench_decide_throughput.py [--customers N] [--json]

The baseline runs on a sample (default 2,000 customers) and is extrapolated
linearly to the full audience: its cost is the same for every customer.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc

import numpy as np
from speed_common import (
    audience,
    baseline_numpy,
    baseline_pure_python,
    campaign_stats,
    load_average,
    machine,
    peak_rss_mb,
    table,
    timed,
    timed_cpu,
)

from bandits import make_policy


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--arms", type=int, default=48)
    ap.add_argument("--segments", type=int, default=9)
    ap.add_argument("--draws", type=int, default=1000, help="Monte Carlo draws for propensities")
    ap.add_argument("--policy", default="thompson", help="policy name for make_policy")
    ap.add_argument("--with-model", action="store_true", help="pass per-customer model scores")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-sample", type=int, default=2000)
    ap.add_argument("--pure-python-sample", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    pulls, rewards = campaign_stats(args.arms, args.segments, args.seed)
    segments, allowed = audience(args.customers, args.arms, args.segments, args.seed + 1)
    model = None
    if args.with_model:
        model = np.random.default_rng(args.seed + 2).uniform(0, 0.1, size=allowed.shape).astype(np.float32)
    params = {"draws": args.draws} if args.policy.startswith("thompson") else {}
    rss_inputs = peak_rss_mb()

    def build():  # type: ignore[no-untyped-def]
        return make_policy(args.policy, args.arms, args.segments, **params).set_stats(pulls, rewards)

    log(f"deciding for {args.customers:,} customers x {args.arms} arms, {args.repeats} runs ...")
    times, cpu_times = [], []
    load_before = load_average()
    for r in range(args.repeats):
        policy = build()
        batch, secs, cpu = timed_cpu(
            policy.decide, segments, np.random.default_rng(args.seed + 10 + r), allowed, model
        )
        times.append(secs)
        cpu_times.append(cpu)
        log(f"  run {r + 1}: {secs:.2f} s wall, {cpu:.2f} s CPU")
        del batch
        gc.collect()
    rss_peak = peak_rss_mb()

    # Working memory of one decision, measured separately (tracemalloc slows allocation).
    tracemalloc.start()
    batch = build().decide(segments, np.random.default_rng(args.seed), allowed, model)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert allowed[np.arange(args.customers), batch.arm].all()
    assert (batch.propensity > 0).all()

    policy = build()
    ts = make_policy("thompson", args.arms, args.segments).set_stats(pulls, rewards)
    n_base = min(args.baseline_sample, args.customers)
    log(f"baseline: plain loop on {n_base:,} customers ...")
    (_, base_props), base_secs = timed(
        baseline_numpy,
        ts.alpha_,
        ts.beta_,
        segments[:n_base],
        allowed[:n_base],
        args.draws,
        np.random.default_rng(1),
    )
    base_full = base_secs * args.customers / n_base
    n_py = min(args.pure_python_sample, args.customers)
    log(f"baseline: pure Python loop on {n_py:,} customers ...")
    _, py_secs = timed(
        baseline_pure_python, ts.alpha_, ts.beta_, segments[:n_py], allowed[:n_py], args.draws, args.seed
    )
    py_full = py_secs * args.customers / max(n_py, 1)
    median = float(np.median(times))
    result = {
        "machine": machine(),
        "setup": {
            "customers": args.customers,
            "arms": args.arms,
            "segments": args.segments,
            "policy": args.policy,
            "with_model": bool(args.with_model),
            "mc_draws": args.draws,
            "share_with_a_channel_masked": float((~allowed).any(axis=1).mean()),
            "unique_masks": int(np.unique(np.packbits(allowed, axis=1), axis=0).shape[0]),
        },
        "vectorized": {
            "wall_s_runs": [round(t, 3) for t in times],
            "wall_s_median": round(median, 3),
            "cpu_s_runs": [round(t, 3) for t in cpu_times],
            "load_average_1min_before": round(load_before, 2),
            "customers_per_s": round(args.customers / median),
            "decision_working_memory_mb": round(traced_peak / 2**20, 1),
            "inputs_rss_mb": round(rss_inputs, 1),
            "process_peak_rss_mb": round(rss_peak, 1),
        },
        "baseline_numpy_loop": {
            "sample": n_base,
            "wall_s_sample": round(base_secs, 3),
            "wall_s_extrapolated": round(base_full, 1),
            "share_zero_propensity": float((base_props == 0).mean()),
        },
        "baseline_pure_python": {
            "sample": n_py,
            "wall_s_sample": round(py_secs, 3),
            "wall_s_extrapolated": round(py_full, 1),
        },
        "speedup_vs_numpy_loop": round(base_full / median, 1),
        "speedup_vs_pure_python": round(py_full / median, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    m = result["machine"]
    print(
        f"{args.customers:,} customers x {args.arms} arms, {args.segments} segments, policy {args.policy}"
        f"{' + model' if args.with_model else ''}, {args.draws} MC draws"
    )
    print(f"machine: {m['nproc']} cores, {m['cpu']}, numpy {m['numpy']}, {m['date']}")
    rows = [
        ("vectorized (this package)", f"{median:.2f}", f"{args.customers / median:,.0f}", "1.0x"),
        (
            f"plain loop, numpy per customer (n={n_base:,}, extrapolated)",
            f"{base_full:,.0f}",
            f"{args.customers / base_full:,.0f}",
            f"{base_full / median:,.0f}x",
        ),
        (
            f"plain loop, pure Python (n={n_py}, extrapolated)",
            f"{py_full:,.0f}",
            f"{args.customers / py_full:,.1f}",
            f"{py_full / median:,.0f}x",
        ),
    ]
    print(table(rows, ("engine", "wall s", "customers/s", "slower by")))
    if args.with_model or args.policy != "thompson":
        print(
            f"note: the baselines are plain Thompson sampling without a model; against {args.policy} "
            "the ratio is indicative only"
        )
    v = result["vectorized"]
    cpu_list = ", ".join(f"{t:.2f}" for t in cpu_times)
    print(f"CPU s per run: {cpu_list}; 1-min load average before: {load_before:.1f} on {m['nproc']} cores")
    print(
        f"memory: decision working set {v['decision_working_memory_mb']} MB (tracemalloc), "
        f"process peak RSS {v['process_peak_rss_mb']} MB (inputs alone {v['inputs_rss_mb']} MB)"
    )
    print(
        f"baseline logged propensity 0 for {result['baseline_numpy_loop']['share_zero_propensity']:.1%} "
        "of its decisions (the vectorized engine: never)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
