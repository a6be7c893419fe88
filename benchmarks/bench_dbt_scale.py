"""The daily dbt build of one new day at 1M, 2M and 5M accumulated decisions (issue 11).

For each size, a scratch database `bench_dbt_scale_<size>_<pid>` on the local PostgreSQL gets a
seeded history generated server-side (`insert ... select` over generate_series with setseed:
no rows cross the wire): 50,000 decisions a day for size / 50,000 days over two campaigns (a
conversion campaign of 12 arms with a 7-day window, an engagement one of 4 arms with 3 days),
100,000 customers, and events of about 40% of the decisions, 5% of them landing 1-3 days late.
The marts are built for the history's last day T (a full build: the tables' first build), then
day T's decisions and the events landing on T + 1 are added and the build of T + 1 is timed
twice on the same data: incremental (what the daily job runs) and `--full-refresh` (the
same-run baseline, what the daily job ran before the marts were incremental).

    .venv/bin/python benchmarks/bench_dbt_scale.py                 # 1M, 2M and 5M
    .venv/bin/python benchmarks/bench_dbt_scale.py --sizes 1000000 --keep-db
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipelines import migrate
from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.settings import Settings
from pipelines.transform import run_dbt

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PER_DAY = 50_000
CUSTOMERS = 100_000
LAST_DAY = date(2026, 6, 30)
CAMPAIGNS = (
    {
        "name": "conv",
        "start_date": "2026-01-01",
        "parameters": {
            "offer_type": ["credit_card", "loan", "savings_account", "investment_product"],
            "channel": ["email", "sms", "app_push"],
        },
        "channel_costs": {"email": 0.5, "sms": 2.0},
        "reward": {"kind": "conversion", "conversion_value": 100},
        "attribution_window_days": 7,
    },
    {
        "name": "eng",
        "start_date": "2026-01-01",
        "parameters": {"offer_type": ["investment_product", "loan"], "channel": ["email", "app_push"]},
        "reward": {"kind": "weighted_engagement", "weights": {"open": 0.25, "click": 0.5, "conversion": 1}},
        "attribution_window_days": 3,
    },
)

CUSTOMERS_SQL = """
insert into raw.customers (snapshot_date, customer_id, age, gender, income, loyalty_points, tenure_years,
    products_held, digital_engagement, website_visits, past_purchases, source_file)
select :first, 'c' || n, 18 + (n * 7) % 70, case when n % 2 = 0 then 'F' else 'M' end,
       15000 + (n * 7919) % 150000, n % 500, (n % 30) / 2.0, 1 + n % 4, (n % 100) / 100.0, n % 40, n % 9,
       'bench'
from generate_series(0, cast(:customers as integer) - 1) as n
"""

ARMS_NUMBERED_SQL = """
create temporary table arms_numbered on commit drop as
select arm_id, campaign_id, dense_rank() over (order by campaign_id) - 1 as campaign_rank,
       row_number() over (partition by campaign_id order by arm_id) - 1 as arm_rank,
       count(*) over (partition by campaign_id) as arm_count
from ops.arms
"""

# Day d (0 = the first) gets PER_DAY decisions; decision k of the day goes to customer
# (k + 7919 d) mod CUSTOMERS (distinct within a day) and campaign k mod 2, arms drawn at random.
DECISIONS_SQL = """
insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date, decided_at,
    policy, policy_version, propensity, selected_by, explored, treatment_group, source)
select 'd' || d || '-' || k, a.campaign_id, 'c' || ((k + 7919 * d) % :customers), a.arm_id,
       day, day + interval '8 hours' + (k % 36000) * interval '1 second',
       'thompson', 'bench', 0.5, 'bandit', k % 10 = 0,
       case when k % 10 = 9 then 'control' else 'treatment' end, 'batch'
from generate_series(cast(:d0 as integer), cast(:d1 as integer)) as d
cross join lateral (select cast(:first as date) + d as day) as days
cross join generate_series(0, cast(:per_day as integer) - 1) as k
inner join lateral (
    select arm_id, campaign_id from arms_numbered
    where campaign_rank = k % 2 and arm_rank = (k * 31 + d * 17) % arm_count
) as a on true
"""

# About 40% of decisions get an open, 15% a click and 4% a conversion, within hours to days
# of the send; 5% of events land 1-3 days after their UTC day (late), the rest on it.
EVENTS_SQL = """
insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id, event_type, value,
    occurred_at, logical_date, source_file)
with drawn as materialized (
    select t.kind || '-' || d.decision_id as event_id, d.decision_id, d.customer_id, d.campaign_id, d.arm_id,
           t.kind as event_type, case when t.kind = 'conversion' then 50 else 0 end as value,
           d.decided_at + random() * t.spread as occurred_at, random() < 0.05 as late, random() as lag,
           random() as draw, t.share
    from ops.decisions as d
    cross join (values ('open', 0.40, interval '2 days'), ('click', 0.15, interval '3 days'),
                       ('conversion', 0.04, interval '6 days')) as t (kind, share, spread)
    where d.decision_date between :first_decision and :last_decision
)
select event_id, decision_id, customer_id, campaign_id, arm_id, event_type, value, occurred_at,
       cast(occurred_at at time zone 'UTC' as date) + case when late then 1 + floor(lag * 3)::int else 0 end,
       'bench'
from drawn
where draw < share and cast(occurred_at at time zone 'UTC' as date) <= :last_landing
"""


def _generate(engine: sa.Engine, days: int, seed: float) -> dict[str, float]:
    first = LAST_DAY - timedelta(days=days - 1)
    timings: dict[str, float] = {}
    with engine.begin() as conn:
        conn.execute(sa.text("select setseed(:s)"), {"s": seed})
        started = time.perf_counter()
        conn.execute(sa.text(CUSTOMERS_SQL), {"first": first - timedelta(days=1), "customers": CUSTOMERS})
        conn.execute(sa.text(ARMS_NUMBERED_SQL))
        # the history: decisions of days first .. T - 1 (T's are made after T's build) ...
        conn.execute(sa.text(DECISIONS_SQL), {
            "first": first, "d0": 0, "d1": days - 2, "customers": CUSTOMERS, "per_day": PER_DAY,
        })  # fmt: skip
        # ... and their events landed up to T
        conn.execute(sa.text(EVENTS_SQL), {
            "first_decision": first, "last_decision": LAST_DAY, "last_landing": LAST_DAY,
        })  # fmt: skip
        conn.execute(sa.text("delete from raw.interactions where logical_date > :t"), {"t": LAST_DAY})
        timings["generate_s"] = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze"))
    return timings


def _new_day(engine: sa.Engine, days: int) -> int:
    """Day T's decisions (made after T's build) and the events landing on T + 1."""
    first = LAST_DAY - timedelta(days=days - 1)
    with engine.begin() as conn:
        conn.execute(sa.text("select setseed(0.5)"))
        conn.execute(sa.text(ARMS_NUMBERED_SQL))
        conn.execute(sa.text(DECISIONS_SQL), {
            "first": first, "d0": days - 1, "d1": days - 1, "customers": CUSTOMERS, "per_day": PER_DAY,
        })  # fmt: skip
        landing = LAST_DAY + timedelta(days=1)
        # opens and clicks on T + 1 of the last 8 days' decisions (some of them late for their window)
        n = conn.execute(sa.text(
            """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                   event_type, value, occurred_at, logical_date, source_file)
               select t.kind || '-' || d.decision_id, d.decision_id, d.customer_id, d.campaign_id, d.arm_id,
                      t.kind, 0,
                      cast(:landing as timestamp) at time zone 'UTC' + random() * interval '23 hours',
                      :landing, 'bench-new'
               from ops.decisions as d
               cross join (values ('open', 0.10), ('click', 0.04)) as t (kind, share)
               -- the draw names a column of d: otherwise the planner draws once per kind
               where d.decision_date >= cast(:landing as date) - 8 and random() + 0 * d.propensity < t.share
               on conflict do nothing"""
        ), {"landing": landing}).rowcount  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("analyze"))
    return n


def _slowest(settings: Settings, top: int = 5) -> list[tuple[str, float]]:
    results = json.loads((settings.home / "dbt" / "target" / "run_results.json").read_text())["results"]
    times = sorted(
        ((r["unique_id"].split(".", 2)[-1], r["execution_time"]) for r in results), key=lambda x: -x[1]
    )
    return [(name, round(t, 1)) for name, t in times[:top]]


def run_size(size: int, keep_db: bool) -> dict[str, object]:
    days = size // PER_DAY
    name = f"bench_dbt_scale_{size // 1_000_000}m_{os.getpid()}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        conn.execute(sa.text(f'create database "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    try:
        migrate.upgrade(engine)
        for spec in CAMPAIGNS:
            apply_campaign(engine, CampaignSpec.model_validate(spec))
        out: dict[str, object] = {"decisions": size, "days": days}
        out |= _generate(engine, days, seed=size / 1e8)
        print(f"{size:,}: generated in {out['generate_s']:.0f} s", flush=True)
        settings = Settings(database_url=url)
        started = time.perf_counter()
        run_dbt(LAST_DAY, settings=settings)
        out["history_build_s"] = time.perf_counter() - started
        print(f"{size:,}: history built in {out['history_build_s']:.0f} s", flush=True)
        out["new_events"] = _new_day(engine, days)
        new_day = LAST_DAY + timedelta(days=1)
        started = time.perf_counter()
        run_dbt(new_day, settings=settings)
        out["incremental_s"] = time.perf_counter() - started
        out["incremental_slowest"] = _slowest(settings)
        started = time.perf_counter()
        run_dbt(new_day, settings=settings, full_refresh=True)
        out["full_refresh_s"] = time.perf_counter() - started
        out["full_refresh_slowest"] = _slowest(settings)
        with engine.connect() as conn:
            out["decisions_in_marts"] = conn.execute(
                sa.text("select count(*) from analytics.int_decisions_attributed")
            ).scalar_one()
        return out
    finally:
        engine.dispose()
        if not keep_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000])
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("CAMPAIGNOPT_HOME", str(Path("/tmp") / f"bench_dbt_scale_{os.getpid()}"))
    results = []
    for size in args.sizes:
        res = run_size(size, args.keep_db)
        results.append(res)
        if not args.json:
            print(
                f"{size:>9,} decisions ({res['days']} days): generate {res['generate_s']:.0f} s, "
                f"history build {res['history_build_s']:.1f} s; new day: "
                f"incremental {res['incremental_s']:.1f} s, full refresh {res['full_refresh_s']:.1f} s; "
                f"slowest incremental: {res['incremental_slowest']}; "
                f"slowest full: {res['full_refresh_slowest']}",
                flush=True,
            )
    base = results[0]
    summary = {
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"load {os.getloadavg()[0]:.1f}",
        "results": results,
        "incremental_ratio_to_first": [round(r["incremental_s"] / base["incremental_s"], 2) for r in results],
        "full_refresh_ratio_to_first": [
            round(r["full_refresh_s"] / base["full_refresh_s"], 2) for r in results
        ],
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"ratio to {base['decisions']:,}: incremental {summary['incremental_ratio_to_first']}, "
              f"full refresh {summary['full_refresh_ratio_to_first']}; {summary['machine']}")  # fmt: skip


if __name__ == "__main__":
    main()
