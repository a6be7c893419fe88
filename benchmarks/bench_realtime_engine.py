"""Real-time engine latency: `decide_one` end to end (lock, eligibility, Thompson choice, logged
insert, commit) for a 36-arm Thompson campaign over 5,000 customers, one thread, in-process, in a
throwaway database; with its parts timed alone and the floor of the same run: a bare
``select 1`` + one-row insert + commit in one transaction (what any logged decision costs).

    .venv/bin/python benchmarks/bench_realtime_engine.py [--calls N] [--customers N] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pipelines.seed_rows
from bench_pipeline import throwaway_database
from bench_realtime_decision import latencies
from speed_common import load_average, machine, table

WARM_UP = 50
D = date(2026, 11, 2)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
CAMPAIGN = {  # 4 discounts x 3 channels x 3 times of day = 36 arms
    "name": "bench-rt",
    "start_date": "2026-10-01",
    "parameters": {
        "offer_type": ["credit_card"],
        "discount": ["rate_reduction", "fee_waiver", "cashback", "loyalty_points"],
        "channel": ["email", "sms", "app_push"],
        "time_of_day": ["morning", "afternoon", "evening"],
    },
    "policy": {"name": "thompson"},
    "holdout_share": 0.1,
    "frequency_caps": {"max_per_week": 100, "min_days_between": 0},  # every call decides
}


def build_world(engine, n_customers: int, seed: int):  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from pipelines import migrate
    from pipelines.domain import SEGMENTS
    from pipelines.transform import run_dbt
    from tests.pipelines.seed_rows import add_campaign, insert_consents, insert_customers, random_customers

    migrate.upgrade(engine)
    customers = random_customers(n_customers, seed=seed, prefix="c")
    insert_customers(engine, customers, D - timedelta(days=7))
    rng = np.random.default_rng(seed)
    consents = [  # ~20% lack one channel: several consent masks per segment
        (c["customer_id"], ch, datetime(2026, 10, 1, 12, tzinfo=UTC), bool(rng.random() > 0.07))
        for c in customers
        for ch in ("email", "sms", "app_push")
    ]
    insert_consents(engine, consents)
    campaign = add_campaign(engine, CAMPAIGN)
    run_dbt(D)
    k = len(campaign.arm_ids)
    rates = rng.beta(2.0, 60.0, size=k)
    rows = [
        {"c": campaign.campaign_id, "s": s, "a": a, "m": int(m), "r": int(rng.binomial(int(m), rates[j]))}
        for s in SEGMENTS
        for j, (a, m) in enumerate(zip(campaign.arm_ids, rng.integers(50, 5000, size=k), strict=True))
    ]
    with engine.begin() as conn:
        conn.execute(sa.text("delete from analytics.segment_arm_stats"))
        conn.execute(
            sa.text(
                """insert into analytics.segment_arm_stats (campaign_id, segment, arm_id, sends, matured,
                       pending, opens, clicks, conversions, revenue, reward_sum, alpha, beta)
                   values (:c, :s, :a, :m, :m, 0, 0, 0, :r, 0, :r, 1 + :r, 1 + :m - :r)"""
            ),
            rows,
        )
        conn.execute(sa.text("create table public.floor_probe (id bigint, note text)"))
    return campaign, [c["customer_id"] for c in customers]


def summary(lat_us: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.median(lat_us)) / 1e3, "p99_ms": float(np.percentile(lat_us, 99)) / 1e3}


def run(args: argparse.Namespace) -> dict:
    import sqlalchemy as sa

    from pipelines.db import get_engine
    from pipelines.realtime.optimize import choose, decide_one, eligible_customer, request_seed
    from pipelines.realtime.snapshot import Snapshot

    engine = get_engine()
    campaign, ids = build_world(engine, args.customers, args.seed)
    snapshot = Snapshot.load(engine, now=NOW)
    state = snapshot.state(campaign.campaign_id)
    order = np.random.default_rng(args.seed + 1).integers(len(ids), size=args.calls + WARM_UP)
    cid = campaign.campaign_id

    def decide(i: int) -> None:
        decide_one(engine, snapshot, cid, ids[order[i]], idempotency_key=f"k{args.seed}-{i}", now=NOW)

    def decide_no_key(i: int) -> None:
        decide_one(engine, snapshot, cid, ids[order[i]], now=NOW)

    def eligibility(i: int) -> None:
        with engine.begin() as conn:
            eligible_customer(conn, campaign, ids[order[i]], None, None, D, NOW)

    with engine.begin() as conn:
        picked = [
            eligible_customer(conn, campaign, ids[order[i]], None, None, D, NOW)
            for i in range(min(200, len(order)))
        ]

    def choice(i: int) -> None:
        frame, allowed = picked[i % len(picked)]
        choose(state, frame, allowed, request_seed(cid, "x", str(i)), None)

    def floor(i: int) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("select 1"))
            conn.execute(sa.text("insert into public.floor_probe values (:i, 'x')"), {"i": i})

    variants = [
        ("decide_one, idempotency key", decide),
        ("decide_one, no key", decide_no_key),
        ("  eligibility alone (own transaction)", eligibility),
        ("  Thompson choice alone (no database)", choice),
        ("floor: select 1 + insert + commit", floor),
    ]
    if args.compare_with:  # an earlier optimize.py, timed in the same rounds as today's
        spec = importlib.util.spec_from_file_location("optimize_before", args.compare_with)
        before = sys.modules["optimize_before"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)

        def decide_before(i: int) -> None:
            key = f"b{args.seed}-{i}"
            before.decide_one(engine, snapshot, cid, ids[order[i]], idempotency_key=key, now=NOW)

        def eligibility_before(i: int) -> None:
            with engine.begin() as conn:
                before.eligible_customer(conn, campaign, ids[order[i]], None, None, D, NOW)

        variants[1:1] = [("decide_one before, idempotency key", decide_before)]
        variants[4:4] = [("  eligibility alone before", eligibility_before)]
    for _label, fn in variants:
        for i in range(WARM_UP):  # connections, caches, imports
            fn(args.calls + i)
    # Rounds interleave the variants: the load of the shared machine moves from second to second.
    per_round = -(-args.calls // args.rounds)
    lat: dict[str, list[np.ndarray]] = {label: [] for label, _ in variants}
    for r in range(args.rounds):
        lo = r * per_round
        for label, fn in variants:
            lat[label].append(latencies(lambda i, fn=fn, lo=lo: fn(lo + i), min(per_round, args.calls - lo)))
    results = {label: summary(np.concatenate(parts)) for label, parts in lat.items()}
    with engine.connect() as conn:
        logged = conn.execute(
            sa.text("select count(*) from ops.decisions where source = 'realtime'")
        ).scalar()
    results_floor = results["floor: select 1 + insert + commit"]["p50_ms"]
    for r in results.values():
        r["vs_floor_p50"] = r["p50_ms"] / results_floor
    engine.dispose()
    return {"results": results, "decisions_logged": int(logged), "arms": len(campaign.arm_ids)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--compare-with", help="an earlier pipelines/realtime/optimize.py to time alongside")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with throwaway_database("bench_rt_engine", args.keep_db):
        out = run(args)
    out["machine"] = {**machine(), "load_average_1min": round(load_average(), 2)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    m = out["machine"]
    print(f"{out['arms']}-arm Thompson campaign, {args.customers} customers, {args.calls} calls per variant")
    print(
        f"machine: {m['nproc']} cores, {m['cpu']}, {m['date']}, 1-min load average {m['load_average_1min']}"
    )
    rows = [
        (label, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['vs_floor_p50']:.1f}x")
        for label, r in out["results"].items()
    ]
    print(table(rows, ("variant", "p50 ms", "p99 ms", "p50 / floor")))
    expected = (3 if args.compare_with else 2) * (args.calls + WARM_UP)
    print(f"decisions logged: {out['decisions_logged']} (expected {expected})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
