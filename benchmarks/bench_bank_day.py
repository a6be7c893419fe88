"""One whole daily run at bank size through the DAG: 1,000,000 customers, 5,000,000 events, two
campaigns (one of 56 arms scored by the champion model), with the time of each task and the peak
memory of the run's process.

    .venv/bin/python benchmarks/bench_bank_day.py [--customers N] [--events N] [--json] [--keep-db]

In a throwaway database (and a throwaway MLflow database beside it):
- two campaigns are applied: `bank-cards` (8 arms, thompson) and `bank-56` (4 offers x email/SMS x 7
  days of the week, thompson_blend), with no audience cap and caps that do not bind;
- a champion is trained, registered and promoted by the product's retraining (`retrain`, on
  synthetic logged decisions: the first day has no history);
- day D: the inbox holds the customer snapshot and consents; `run_dag` runs the daily DAG as
  `campaignopt daily` does (ingest, GX, dbt, decide both campaigns, publish, monitor);
- day D + 1, the figure: the inbox holds 5M interaction events of D's decisions, and the DAG runs
  again, now deciding on the statistics those events built.
- with ``--history-days H``, the figure again after H days of accumulated history: D's decisions,
  snapshot and lists and the events of D + 1 are copied to the H days before D (bank_history.py),
  the marts are rebuilt over them one day at a time as the DAG would have built them (a setup
  step; each build is timed: the dbt build as history grows), and day D + 2 runs
  on 5M events of D + 1's decisions. Day D + 1 is the same run's baseline. The campaigns start a
  month before D and cap at 20 sends a week, so the history's two sends a day do not bind.

The tasks' times come from the run's own log (`[DAG TEST] starting` / `end task` lines); the peak
memory is the largest resident set of the `airflow dags test` process tree (getrusage of the
children; PostgreSQL's backends are separate and not included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bank_history import add_history  # noqa: E402
from bench_pipeline import DAY, NEXT, ensure_one_campaign_channel, log, throwaway_database, write_events  # noqa: E402
from speed_common import load_average, machine, table  # noqa: E402

CAMPAIGNS = {
    "bank-cards": """\
name: bank-cards
description: bank-size benchmark, 8 arms
start_date: 2026-10-01
audience: {min_age: 18, min_income: 0}
parameters:
  offer_type: [credit_card]
  discount: [cashback, fee_waiver]
  channel: [email, sms]
  time_of_day: [morning, evening]
policy: {name: thompson}
holdout_share: 0.1
frequency_caps: {max_per_week: 20, min_days_between: 0}
default_arm: {offer_type: credit_card, discount: cashback, channel: email, time_of_day: morning}
""",
    "bank-56": """\
name: bank-56
description: bank-size benchmark, 4 offers x 2 channels x 7 days = 56 arms, with the model
start_date: 2026-10-01
audience: {min_age: 18, min_income: 0}
parameters:
  offer_type: [credit_card, loan, savings_account, investment_product]
  channel: [email, sms]
  day_of_week: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]
policy: {name: thompson_blend}
holdout_share: 0.1
frequency_caps: {max_per_week: 20, min_days_between: 0}
default_arm: {offer_type: credit_card, channel: email, day_of_week: monday}
""",
}
_EVENT = re.compile(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\S+) map_index=(-?\d+)")


def task_times(log_path: Path) -> list[tuple[str, float]]:
    """(task[map index], seconds) in the order the tasks started, from the run's log."""
    started: dict[str, datetime] = {}
    out: list[tuple[str, float]] = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = _EVENT.match(line)
        if not m:
            continue
        stamp = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        name = m.group(3) + (f"[{m.group(4)}]" if m.group(4) != "-1" else "")
        if m.group(2) == "starting":
            started[name] = stamp
        elif name in started:
            out.append((name, (stamp - started.pop(name)).total_seconds()))
    return out


def _run_day(day, label: str) -> dict:  # type: ignore[no-untyped-def]
    from pipelines.orchestration import run_dag

    log(f"{label}: the daily DAG for {day}")
    t0 = time.perf_counter()
    result = run_dag("daily_campaign_optimization", day)
    seconds = time.perf_counter() - t0
    return {
        "day": day.isoformat(),
        "state": result.state,
        "seconds": seconds,
        "tasks": task_times(result.log_path),
        "peak_rss_mb_so_far": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "load_end": load_average(),
    }


def run(args: argparse.Namespace, dbname: str, home: Path) -> dict:
    import sqlalchemy as sa

    from ml.synthetic import make_arms, make_training_examples
    from pipelines import migrate
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.db import get_engine
    from pipelines.demo import write_customer_files
    from pipelines.retrain import retrain
    from pipelines.settings import get_settings

    os.environ["MLFLOW_TRACKING_URI"] = f"postgresql://postgres@127.0.0.1:5432/{dbname}_mlflow"
    get_settings.cache_clear()
    settings = get_settings()
    engine = get_engine()
    migrate.upgrade(engine)
    for name, text in CAMPAIGNS.items():
        path = home / f"{name}.yaml"
        path.write_text(text)
        apply_campaign(engine, load_campaign(path), source_file=path)
    log("training and promoting the champion")
    trained = retrain(settings=settings, examples=make_training_examples(20_000, seed=3), arms=make_arms())
    assert trained["status"] == "done" and trained["promoted"], trained
    log(f"writing {args.customers:,} customers and their consents for {DAY}")
    _, consents_csv = write_customer_files(settings.inbox_dir, DAY, args.customers, seed=11)
    ensure_one_campaign_channel(consents_csv)
    first = _run_day(DAY, "day 1")
    with engine.connect() as conn:
        decided = conn.execute(
            sa.text("select count(*) from ops.decisions where decision_date = :d"), {"d": DAY}
        ).scalar()
    log(f"writing {args.events:,} events of the {decided:,} decisions of {DAY}")
    write_events(
        engine, settings.inbox_dir / NEXT.isoformat() / "interactions.csv", args.events, NEXT, seed=5
    )
    second = _run_day(NEXT, "day 2")
    days = [first, second]
    history: dict = {}
    if args.history_days:
        history = _with_history(args, engine, settings, days)
    with engine.connect() as conn:
        lists = conn.execute(
            sa.text(
                "select c.name, s.n_rows, s.model_version, s.status from ops.send_lists s "
                "join ops.campaigns c using (campaign_id) where s.list_date = :d order by 1"
            ),
            {"d": days[-1]["day"]},
        ).all()
        events = conn.execute(sa.text("select count(*) from raw.interactions")).scalar()
    engine.dispose()
    return {
        "decisions_day_1": decided,
        "events_landed": events,
        "lists_last_day": [tuple(map(str, r)) for r in lists],
        "days": days,
        "history": history,
    }


def _with_history(args: argparse.Namespace, engine, settings, days: list[dict]) -> dict:  # type: ignore[no-untyped-def]
    """H days of history before D, the marts rebuilt over them, and day D + 2 run (appended to days)."""
    import sqlalchemy as sa

    log(f"copying D's decisions, events and snapshot to the {args.history_days} days before {DAY}")
    history = add_history(engine, DAY, args.history_days, log=log)
    history["builds"] = _build_history_daily(DAY - timedelta(days=args.history_days), settings)
    third = NEXT + timedelta(days=1)
    with engine.connect() as conn:
        history["decisions_total"] = conn.execute(sa.text("select count(*) from ops.decisions")).scalar()
        history["events_total"] = conn.execute(sa.text("select count(*) from raw.interactions")).scalar()
        history["database_gb"] = conn.execute(
            sa.text("select pg_database_size(current_database()) / 2.0 ^ 30")
        ).scalar()
    log(f"writing {args.events:,} events of {NEXT}'s decisions")
    write_events(
        engine,
        settings.inbox_dir / third.isoformat() / "interactions.csv",
        args.events,
        third,
        seed=6,
        decided_on=NEXT,
    )
    days.append(_run_day(third, f"day 3, after {args.history_days} days of history"))
    return history


def _build_history_daily(first_day, settings) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    """The marts rebuilt one day at a time over the history, as a deployment that ran those days
    built them: a full refresh for the first day's build (it sees only that day), then one
    incremental build per day up to D + 1. One full refresh over all history needs more temporary
    space than this machine's disk (BENCHMARKS.md); returns each build's (logical date, seconds)."""
    from pipelines.transform import run_dbt

    builds = []
    as_of, last = first_day + timedelta(days=1), NEXT
    while as_of <= last:
        t0 = time.perf_counter()
        run_dbt(as_of, settings=settings, full_refresh=as_of == first_day + timedelta(days=1))
        builds.append((as_of.isoformat(), round(time.perf_counter() - t0, 1)))
        log(f"history: marts built for {as_of} in {builds[-1][1]:.0f} s")
        as_of += timedelta(days=1)
    return builds


def _drop_mlflow_database(dbname: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{dbname}_mlflow" with (force)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--history-days", type=int, default=0, help="then run once more after this much history")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--keep-db", action="store_true", help="keep the database and the home folder")
    args = ap.parse_args(argv)
    result: dict = {"machine": machine(), "load_start": load_average(), "args": vars(args)}
    with throwaway_database("bench_bank", args.keep_db) as (dbname, home):
        try:
            result |= run(args, dbname, home)
        finally:
            if not args.keep_db:
                _drop_mlflow_database(dbname)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    for day in result["days"]:
        print(
            f"\n{day['day']}: {day['state']} in {day['seconds']:.0f} s; "
            f"peak RSS {day['peak_rss_mb_so_far']:,.0f} MB"
        )
        print(table([(n, f"{s:.1f}") for n, s in day["tasks"]], ("task", "seconds")))
    print(f"\nlists of {result['days'][-1]['day']}: {result['lists_last_day']}")
    if result["history"]:
        print(f"history: {result['history']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
