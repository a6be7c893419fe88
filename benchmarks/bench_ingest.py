"""Ingest speed and memory: ``ingest_day`` of one interactions CSV against a same-run COPY floor.

    .venv/bin/python benchmarks/bench_ingest.py [--events N] [--decisions N] [--json] [--keep-db]

Creates a throwaway database ``bench_ingest_<pid>`` on postgresql://postgres@127.0.0.1:5432 (dropped
at the end unless --keep-db) and a temporary CAMPAIGNOPT_HOME, applies the 48-arm campaign of
``bench_pipeline.py``, writes ``--decisions`` batch decisions straight into ``ops.decisions`` (COPY:
the pipeline's decide step is not what is measured here), and the interactions CSV of
``bench_pipeline.write_events`` (impression/open/click/view/dwell per decision in turn, all valid).

Measured: ``ingest_day`` of that file in a fresh Python process (what an Airflow task pays):
wall time, peak RSS of that process (its VmHWM, read by itself before it exits), CPU of the
PostgreSQL backends (sampled from /proc), and the time of its inner steps (the pipeline's own
functions wrapped inside the child). Floor: a plain ``COPY ... FROM STDIN`` of the same CSV into an
unlogged, unindexed table of text columns, once before and once after the ingest (mean).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import (  # noqa: E402
    CAMPAIGN,
    CAMPAIGN_YAML,
    DAY,
    NEXT,
    BackendSampler,
    Recorder,
    copy_in,
    csv_columns,
    log,
    text_table,
    throwaway_database,
    uptime,
    write_events,
)
from speed_common import machine, table  # noqa: E402

GOAL_S, GOAL_MB = 60.0, 1536.0


def write_decisions(engine, n: int) -> int:  # type: ignore[no-untyped-def]
    """``n`` batch decisions of DAY for the benchmark campaign, one per customer, arms in turn."""
    import numpy as np
    import pandas as pd
    import sqlalchemy as sa

    from pipelines.db import copy_frame

    with engine.connect() as conn:
        cid = conn.execute(sa.text("select campaign_id from ops.campaigns where name = :n"), {"n": CAMPAIGN})
        cid = cid.scalar_one()
        arms = np.asarray(
            conn.execute(
                sa.text("select arm_id from ops.arms where campaign_id = :c order by arm_id"), {"c": cid}
            )
            .scalars()
            .all()
        )
    customers = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7)).astype(object)
    frame = pd.DataFrame(
        {
            "decision_id": f"{cid}-{DAY:%Y%m%d}-" + pd.Series(customers),
            "campaign_id": cid,
            "customer_id": customers,
            "arm_id": arms[np.arange(n) % len(arms)],
            "decision_date": DAY.isoformat(),
            "decided_at": f"{DAY.isoformat()}T06:00:00Z",
            "policy": "thompson",
            "policy_version": "1",
            "propensity": 1.0 / len(arms),
            "selected_by": "bandit",
            "explored": False,
            "treatment_group": "treatment",
            "source": "batch",
        }
    )
    with engine.begin() as conn:
        copy_frame(conn, "ops.decisions", frame)
    return n


def copy_floor(raw_conn, path: Path) -> float:  # type: ignore[no-untyped-def]
    """Plain COPY of the CSV into an unlogged text table (no types, no index, no WAL): seconds."""
    text_table(raw_conn, "copy_floor", csv_columns(path), unlogged=True)
    seconds = copy_in(raw_conn, "copy_floor", path, header=True)
    raw_conn.execute("drop table copy_floor")
    raw_conn.commit()
    return seconds


def instruments(loader, readers, records) -> tuple:  # type: ignore[no-untyped-def]
    """(owner, attribute, label) of the pipeline functions timed inside the ingest."""
    from pipelines.db import CopyStream

    return (
        (loader, "checksum", "checksum (sha256)"),
        (readers, "_as_chunk", "Arrow batch -> pandas strings"),
        (loader, "frame_csv", "good rows -> CSV bytes (pyarrow)"),
        (CopyStream, "write", "waiting for the COPY stream (PostgreSQL behind)"),
        (CopyStream, "close", "end of the COPY stream into _stage"),
        (records.QuarantineSpool, "flush", "quarantine rows (COPY)"),
        (loader, "_quarantine_unmatched_events", "SQL: events vs ops.decisions"),
        (loader, "_insert_new", "SQL: insert new rows (on conflict)"),
        (loader, "_classify_not_inserted", "SQL: duplicates / conflicts"),
    )


def child(day: str, inbox: str) -> None:
    """Run in the measured process: ingest the day, print the report and the inner steps as JSON."""
    from pipelines.db import get_engine
    from pipelines.ingest import ingest_day, loader, readers, records, schemas

    rec = Recorder(None)
    with rec.stage("ingest") as st, contextlib.ExitStack() as stack:
        for owner, attr, label in instruments(loader, readers, records):
            stack.enter_context(rec.wrap(owner, attr, label))
        kind = schemas.KINDS["interactions"]  # ingest_day finds parse through the kind
        schemas.KINDS["interactions"] = dataclasses.replace(
            kind, parse=rec.timed(kind.parse, "parse + checks")
        )
        stack.callback(schemas.KINDS.__setitem__, "interactions", kind)
        report = ingest_day(get_engine(), date.fromisoformat(day), inbox=Path(inbox))
    with open("/proc/self/status") as fh:  # the peak of this process image (exec'd: its own)
        hwm_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    out = {
        "report": report.as_dict(),
        "wall_s": st.wall,
        "cpu_s": st.cpu,
        "steps": st.steps,
        "hwm_kb": hwm_kb,
    }
    print(json.dumps(out))


def run(args: argparse.Namespace, dbname: str, home: Path, result: dict) -> None:
    from pipelines import migrate
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign
    from pipelines.db import get_engine
    from pipelines.settings import get_settings

    settings = get_settings()
    engine = get_engine()
    migrate.upgrade(engine)
    spec = home / f"{CAMPAIGN}.yaml"
    spec.write_text(CAMPAIGN_YAML)
    apply_campaign(engine, load_campaign(spec), source_file=spec)
    t0 = time.perf_counter()
    write_decisions(engine, args.decisions)
    events_csv = settings.inbox_dir / NEXT.isoformat() / "interactions_bench.csv"
    write_events(engine, events_csv, args.events, NEXT, seed=5)
    result["setup_s"] = round(time.perf_counter() - t0, 1)
    result["csv_mb"] = round(events_csv.stat().st_size / 2**20, 1)
    raw = engine.raw_connection()
    pg = raw.driver_connection
    pg.execute("checkpoint")
    pg.commit()
    floor_before = copy_floor(pg, events_csv)
    pg.execute("checkpoint")  # start the ingest with the floor's dirty pages written
    pg.commit()

    sampler = BackendSampler(dbname)
    sampler.start()
    pg_cpu0 = sampler.begin()
    log(f"ingest of {args.events:,} events in a child process ...")
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", NEXT.isoformat(), str(settings.inbox_dir)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ,
    )
    wall = time.perf_counter() - t0
    pg_cpu, pg_peak_mb = sampler.end(pg_cpu0)
    sampler.stop.set()
    if out.returncode != 0:
        raise SystemExit(f"the ingest process failed ({out.returncode}):\n{out.stderr[-3000:]}")
    child_out = json.loads(out.stdout.strip().splitlines()[-1])
    # Not getrusage(RUSAGE_CHILDREN): Linux carries the pre-exec image's peak into ru_maxrss, and
    # with vfork that image is this (big) process. VmHWM of the exec'd child is its own peak.
    peak_mb = child_out["hwm_kb"] / 1024.0
    result["ru_maxrss_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
    report = child_out["report"]
    assert report["loaded"] == args.events and report["quarantined"] == 0, report
    pg.execute("checkpoint")
    pg.commit()
    floor_after = copy_floor(pg, events_csv)
    raw.close()
    engine.dispose()
    floor = (floor_before + floor_after) / 2
    result["ingest"] = {
        "wall_s": round(wall, 1),
        "inside_s": round(child_out["wall_s"], 1),
        "cpu_s": round(child_out["cpu_s"], 1),
        "pg_cpu_s": round(pg_cpu, 1),
        "peak_rss_mb": round(peak_mb),
        "pg_peak_rss_mb": round(pg_peak_mb),
        "steps_s": {k: round(v, 2) for k, v in child_out["steps"].items()},
        "files": report["files"],
    }
    result["floor"] = {
        "before_s": round(floor_before, 2),
        "after_s": round(floor_after, 2),
        "mean_s": round(floor, 2),
    }
    result["summary"] = {
        "events": args.events,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "vs_copy_floor": round(wall / floor, 1),
        "time_goal_met": wall <= GOAL_S,
        "memory_goal_met": peak_mb < GOAL_MB,
    }


def print_report(result: dict) -> None:
    ing, s = result["ingest"], result["summary"]
    print(f"machine: {result['machine']}")
    print(f"load: {result['uptime_start']} -> {result['uptime_end']}")
    print(f"CSV {result['csv_mb']} MB, {s['events']:,} events")
    rows = [
        (
            "ingest_day (fresh process)",
            ing["wall_s"],
            ing["cpu_s"],
            ing["pg_cpu_s"],
            f"{ing['peak_rss_mb']:,}",
        ),
        ("COPY floor (unlogged text table)", result["floor"]["mean_s"], "", "", ""),
    ]
    print(table(rows, ("step", "wall s", "CPU s", "PG CPU s", "peak RSS MB")))
    print(table([(k, v) for k, v in ing["steps_s"].items()], ("inner step", "s")))
    print(
        f"ratio to the COPY floor: {s['vs_copy_floor']}x; goal {GOAL_S:.0f} s -> "
        f"{'met' if s['time_goal_met'] else 'MISSED'}; memory < {GOAL_MB:,.0f} MB -> "
        f"{'met' if s['memory_goal_met'] else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--keep-db", action="store_true", help="keep the database and the home folder")
    ap.add_argument("--child", nargs=2, metavar=("DAY", "INBOX"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    result: dict = {"machine": machine(), "uptime_start": uptime(), "args": vars(args)}
    with throwaway_database("bench_ingest", args.keep_db) as (dbname, home):
        run(args, dbname, home, result)
    result["uptime_end"] = uptime()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
