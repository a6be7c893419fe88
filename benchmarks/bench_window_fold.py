"""What a snapshot refresh costs for a campaign with a 1-minute attribution window: every refresh
(each REALTIME_REFRESH_SECONDS) reads the real-time decisions that matured since the last one.

    .venv/bin/python benchmarks/bench_window_fold.py [--decisions N] [--without-index]

A scratch database on the local PostgreSQL gets N real-time decisions spread over one day; the
snapshot is loaded at noon and refreshed 20 times, 2 s of decision time apart. --without-index
drops ops.decisions_realtime_decided_at (migration 0006) to show what it saves.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipelines import migrate
from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.realtime.snapshot import Snapshot

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DAY = datetime(2026, 7, 6, tzinfo=UTC)

_DECISIONS = """
insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date, decided_at,
    segment, policy, policy_version, propensity, selected_by, explored, treatment_group, source)
select 'd' || g, :c, 'c' || g, :a, cast(:t0 as date), :t0 + g * (interval '86000 seconds' / :n),
       'middle_mid', 'thompson', 'bench', 0.5, 'bandit', false, 'treatment', 'realtime'
from generate_series(1, :n) g
"""


def measure(engine: sa.Engine, n: int, without_index: bool) -> list[float]:
    migrate.upgrade(engine)
    spec = {"name": "minute", "start_date": "2026-01-01", "parameters": {"channel": ["email", "sms"]}}
    result = apply_campaign(engine, CampaignSpec.model_validate(spec | {"attribution_window": "1m"}))
    with engine.begin() as conn:
        arm = conn.execute(sa.text("select min(arm_id) from ops.arms")).scalar()
        conn.execute(sa.text(_DECISIONS), {"c": result.campaign_id, "a": arm, "t0": DAY, "n": n})
        if without_index:
            conn.execute(sa.text("drop index ops.decisions_realtime_decided_at"))
        conn.execute(sa.text("analyze ops.decisions"))
    now = DAY + timedelta(hours=12)
    snapshot = Snapshot.load(engine, now=now)
    times = []
    for _ in range(20):
        now += timedelta(seconds=2)
        start = time.perf_counter()
        snapshot = snapshot.refresh(engine, now=now)
        times.append(time.perf_counter() - start)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--without-index", action="store_true")
    args = parser.parse_args()
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bench_window_fold_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    engine = sa.create_engine(ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        times = measure(engine, args.decisions, args.without_index)
        index = "without" if args.without_index else "with"
        print(
            f"{args.decisions} real-time decisions a day, {index} the decided_at index: "
            f"refresh p50 {times[10] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


if __name__ == "__main__":
    main()
