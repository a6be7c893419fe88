"""The decide step partitioned over customer-hash buckets: per-bucket throughput and the
speed-up from one to two worker processes, on the local PostgreSQL.

    .venv/bin/python benchmarks/bench_partitioned_decide.py [--customers N] [--buckets B] [--json]

A throwaway database (as in bench_pipeline.py) gets N customers with consents through the real
ingest and dbt build, and a 56-arm campaign (4 offers x 2 channels x 7 days of the week,
thompson_blend) with a real XGBoost model trained on synthetic logged decisions. Then, in the
same run, one day's list is decided three ways and the lists compared row for row:

1. whole, in this process (``decide_campaign``, 1 bucket): the baseline;
2. as B buckets one after another in one worker process;
3. as B buckets over two worker processes at once (bucket b on worker b % 2).

Each bucket is the real task body (``decide_bucket``: audience read, consent mask, scoring,
policy, COPY of its decisions), then ``finish_list``. The workers are spawned processes with
their own database connections, as Celery workers are.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_pipeline import DAY, ensure_one_campaign_channel, log, throwaway_database  # noqa: E402
from speed_common import load_average, machine, table  # noqa: E402

CAMPAIGN = "bench-56"
CAMPAIGN_YAML = f"""\
name: {CAMPAIGN}
description: partitioned decide benchmark, 4 offers x 2 channels x 7 days = 56 arms
start_date: 2026-11-01
audience: {{min_age: 18, min_income: 0}}
parameters:
  offer_type: [credit_card, loan, savings_account, investment_product]
  channel: [email, sms]
  day_of_week: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]
policy: {{name: thompson_blend}}
holdout_share: 0.1
frequency_caps: {{max_per_week: 7, min_days_between: 0}}
default_arm: {{offer_type: credit_card, channel: email, day_of_week: monday}}
"""
LIST_SQL = (
    "select customer_id, arm_id, propensity, treatment_group, model_score from ops.decisions "
    "where decision_date = :d and source = 'batch' order by customer_id"
)


def _handle(response):  # type: ignore[no-untyped-def]
    from pipelines.decide import ModelHandle

    return ModelHandle(
        "1", lambda c, a, allowed=None: response.score_matrix(c, a, allowed=allowed), 0.6, response
    )


def _worker(database_url: str, home: str, response, buckets: list[int], n_buckets: int, run_id: str):  # type: ignore[no-untyped-def]
    """One worker process: decide ``buckets`` in order; returns (bucket, seconds, rows) each."""
    os.environ["DATABASE_URL"], os.environ["CAMPAIGNOPT_HOME"] = database_url, home
    from pipelines.campaign_store import load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.decide_buckets import decide_bucket

    engine = get_engine()
    campaign = load_campaign_by_name(engine, CAMPAIGN)
    model, out = _handle(response), []
    for bucket in buckets:
        t0 = time.perf_counter()
        result = decide_bucket(engine, campaign, DAY, bucket, n_buckets, run_id, model)
        out.append((bucket, time.perf_counter() - t0, result.n_rows))
    engine.dispose()
    return out


def _warm(_: int) -> None:
    import xgboost  # noqa: F401

    import pipelines.decide_buckets  # noqa: F401


def _decide_with_workers(n_workers: int, n_buckets: int, response, run_id: str) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    """Wall time of B buckets over ``n_workers`` processes (spawned before the clock starts)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_workers, mp_context=ctx) as pool:
        list(pool.map(_warm, range(n_workers)))  # the workers are up and have imported the code
        t0 = time.perf_counter()
        futures = [
            pool.submit(
                _worker,
                os.environ["DATABASE_URL"],
                os.environ["CAMPAIGNOPT_HOME"],
                response,
                list(range(w, n_buckets, n_workers)),
                n_buckets,
                run_id,
            )
            for w in range(n_workers)
        ]
        per_bucket = [row for f in futures for row in f.result()]
        return time.perf_counter() - t0, per_bucket


def run(args: argparse.Namespace, home: Path) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    from ml.scoring import ResponseModel
    from ml.synthetic import make_training_examples
    from ml.train import train_model
    from pipelines import migrate
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign, load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.decide import decide_campaign
    from pipelines.decide_buckets import finish_list
    from pipelines.demo import write_customer_files
    from pipelines.ingest import ingest_day
    from pipelines.settings import get_settings
    from pipelines.transform import run_dbt

    engine = get_engine()
    migrate.upgrade(engine)
    spec_path = home / f"{CAMPAIGN}.yaml"
    spec_path.write_text(CAMPAIGN_YAML)
    assert apply_campaign(engine, load_campaign(spec_path), source_file=spec_path).arms_active == 56
    campaign = load_campaign_by_name(engine, CAMPAIGN)
    log(f"writing and ingesting {args.customers:,} customers")
    _, consents_csv = write_customer_files(get_settings().inbox_dir, DAY, args.customers, seed=11)
    ensure_one_campaign_channel(consents_csv)
    ingest_day(engine, DAY)
    run_dbt(DAY)
    log("training the model")
    fitted = train_model(make_training_examples(20_000, seed=3))
    response = ResponseModel(fitted.model, fitted.spec)

    def the_list() -> pd.DataFrame:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(LIST_SQL), conn, params={"d": DAY})

    log("whole list, in this process")
    t0 = time.perf_counter()
    whole = decide_campaign(engine, campaign, DAY, model=_handle(response))
    whole_s = time.perf_counter() - t0
    reference = the_list()
    assert len(reference) == whole.n_rows > 0
    runs = {"whole (1 bucket, this process)": {"seconds": whole_s, "identical": True, "per_bucket": []}}
    for n_workers in (1, 2):
        label = f"{args.buckets} buckets, {n_workers} worker process{'es' if n_workers > 1 else ''}"
        log(label)
        run_id = f"bench-{n_workers}"
        seconds, per_bucket = _decide_with_workers(n_workers, args.buckets, response, run_id)
        t0 = time.perf_counter()
        finish_list(engine, campaign, DAY, args.buckets, run_id)
        seconds += time.perf_counter() - t0
        identical = the_list().equals(reference)
        assert identical, f"{label}: the list differs from the whole list"
        runs[label] = {"seconds": seconds, "identical": identical, "per_bucket": per_bucket}
    return {"rows": whole.n_rows, "runs": runs}


def summarise(result: dict, args: argparse.Namespace) -> dict:
    runs, rows = result["runs"], result["rows"]
    base = runs["whole (1 bucket, this process)"]["seconds"]
    one = runs[f"{args.buckets} buckets, 1 worker process"]
    two = runs[f"{args.buckets} buckets, 2 worker processes"]
    bucket_rates = [r / s for _, s, r in one["per_bucket"]]
    return {
        "rows": rows,
        "rows_per_s": {k: rows / v["seconds"] for k, v in runs.items()},
        "vs_whole": {k: base / v["seconds"] for k, v in runs.items()},
        "speedup_2_vs_1_worker": one["seconds"] / two["seconds"],
        "per_bucket_rows_per_s_median": sorted(bucket_rates)[len(bucket_rates) // 2],
        "per_bucket_seconds_max": max(s for _, s, _ in one["per_bucket"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--buckets", type=int, default=16)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    result: dict = {"machine": machine(), "load_start": load_average(), "args": vars(args)}
    with throwaway_database("bench_partitioned", keep=False) as (_, home):
        result |= run(args, home)
    result["load_end"] = load_average()
    result["summary"] = summary = summarise(result, args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    rows = [
        (name, f"{run['seconds']:.1f}", f"{summary['rows_per_s'][name]:,.0f}",
         f"{summary['vs_whole'][name]:.2f}x", "yes" if run["identical"] else "NO")
        for name, run in result["runs"].items()
    ]  # fmt: skip
    print(
        f"{summary['rows']:,} decisions, 56 arms, thompson_blend + XGBoost; load {result['load_start']:.1f}"
    )
    print(table(rows, ("run", "seconds", "decisions/s", "vs whole", "list identical")))
    print(f"per bucket (1 worker): median {summary['per_bucket_rows_per_s_median']:,.0f} decisions/s, "
          f"slowest {summary['per_bucket_seconds_max']:.1f} s")  # fmt: skip
    print(f"speed-up from 1 to 2 workers: {summary['speedup_2_vs_1_worker']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
