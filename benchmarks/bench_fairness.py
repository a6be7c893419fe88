"""What the fair-lending monitor costs per campaign-day: `campaign_fairness` on a list of N
decisions, against reading the same list once (the same-run baseline).

    .venv/bin/python benchmarks/bench_fairness.py [--decisions N] [--snapshots S] [--repeats R]

In a throwaway database: one campaign of 56 arms (4 offers x 2 channels x 7 days), N customers
with S daily snapshots each (S = 30: a month of the bank's daily extracts, which the monitor's
lookup of each customer's latest snapshot up to D must skip), and a list of N decisions on D, 90%
treatment. Baseline: `select arm_id, treatment_group, count(*) ... group by 1, 2` over the same
list — the one scan any report of the list needs. The monitor adds, per decision, the lookup of
its customer's attributes and, per offer and attribute, a 400-draw bootstrap.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_bank_day import CAMPAIGNS  # noqa: E402
from bench_pipeline import DAY, log, throwaway_database  # noqa: E402
from speed_common import load_average, machine  # noqa: E402


def seed_world(engine, n: int, snapshots: int) -> int:  # type: ignore[no-untyped-def]
    """The campaign, N customers x S snapshots and the day's list, in SQL; returns the campaign id."""
    import sqlalchemy as sa
    import yaml

    from pipelines.campaign_spec import CampaignSpec
    from pipelines.campaign_store import apply_campaign

    spec = CampaignSpec.model_validate(yaml.safe_load(CAMPAIGNS["bank-56"]))
    cid = apply_campaign(engine, spec).campaign_id
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into raw.customers (snapshot_date, customer_id, age, gender, income, loyalty_points,
                       tenure_years, products_held, digital_engagement, website_visits, past_purchases,
                       source_file)
                   select :d - s, 'c' || lpad(i::text, 8, '0'), 18 + (i * 7 + s) % 60,
                          case when i % 2 = 0 then 'F' else 'M' end, 50000, 100, 3.0, 2, 0.4, 5, 1, 'bench'
                   from generate_series(1, :n) i cross join generate_series(0, :s - 1) s"""
            ),
            {"d": DAY, "n": n, "s": snapshots},
        )
        arms = conn.execute(
            sa.text("select arm_id from ops.arms where campaign_id = :c order by 1"), {"c": cid}
        )
        arm_ids = [a for (a,) in arms]
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   select 'd' || i, :c, 'c' || lpad(i::text, 8, '0'),
                          (:arms)[1 + (i * 2654435761 % 4294967296) % cardinality(:arms)], :d, now(),
                          'thompson', 'bench', 0.5, 'bandit', false,
                          case when i % 10 = 0 then 'control' else 'treatment' end, 'batch'
                   from generate_series(1, :n) i"""
            ),
            {"c": cid, "d": DAY, "n": n, "arms": arm_ids},
        )
        conn.execute(
            sa.text(
                "insert into ops.send_lists (campaign_id, list_date, status, n_rows) "
                "values (:c, :d, 'draft', :n)"
            ),
            {"c": cid, "d": DAY, "n": n},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze raw.customers"))
        conn.execute(sa.text("vacuum analyze ops.decisions"))
    return cid


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    import sqlalchemy as sa

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--snapshots", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(machine(), f"load {load_average()}")
    with throwaway_database("bench_fair", keep=False) as _:
        from pipelines import migrate
        from pipelines.db import get_engine
        from pipelines.fairness import Thresholds, campaign_fairness

        engine = get_engine()
        migrate.upgrade(engine)
        log(f"seeding {args.decisions:,} customers x {args.snapshots} snapshots and the list")
        cid = seed_world(engine, args.decisions, args.snapshots)
        baseline, monitor = [], []
        for _ in range(args.repeats):  # interleaved: drift in the machine's load hits both alike
            with engine.connect() as conn:
                seconds, _ = timed(
                    lambda c=conn: c.execute(
                        sa.text(
                            "select arm_id, treatment_group, count(*) from ops.decisions "
                            "where campaign_id = :c and decision_date = :d and source = 'batch' group by 1, 2"
                        ),
                        {"c": cid, "d": DAY},
                    ).all()
                )
                baseline.append(seconds)
                seconds, figures = timed(lambda c=conn: campaign_fairness(c, cid, DAY, Thresholds()))
                monitor.append(seconds)
        engine.dispose()
    best_b, best_m = min(baseline), min(monitor)
    print(f"decisions {args.decisions:,}, snapshots per customer {args.snapshots}, repeats {args.repeats}")
    print(f"baseline (one scan of the list): best {best_b:.2f} s, all {[round(s, 2) for s in baseline]}")
    print(f"campaign_fairness: best {best_m:.2f} s, all {[round(s, 2) for s in monitor]}")
    print(f"ratio {best_m / best_b:.1f}x; per 1M decisions {best_m / args.decisions * 1e6:.1f} s")
    flagged = sum(o["flagged"] for o in figures["offers"])
    print(f"offers x attributes reported: {len(figures['offers'])}; flagged {flagged}")
    print(f"days of snapshots: {DAY - timedelta(days=args.snapshots - 1)} .. {DAY}; load {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
