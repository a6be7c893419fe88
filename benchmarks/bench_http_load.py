"""HTTP load on the real-time service: `campaignopt serve` (uvicorn, N workers) driven by wrk over
loopback, POST /optimize on a 56-arm thompson_blend campaign scored by an XGBoost champion from
MLflow, every decision logged in `ops.decisions` before its 200.

    .venv/bin/python benchmarks/bench_http_load.py [--workers 2] [--seconds 15] [--json]

Set-up, in a throwaway database on the local PostgreSQL (dropped at the end): the cross-sell
campaign of campaigns/cross_sell.yaml (4 offers x 5 channels x 3 times of day less branch in the
evening = 56 arms, thompson_blend) with loose frequency caps, ``--customers`` customers in the
`customer_features` mart (real dbt) with consent per channel, segment statistics, a champion
trained on ``ml.synthetic`` examples and promoted by the real retrain (MLflow on the same
database), and a service API key. Two servers run side by side: one as shipped, one with
``REALTIME_LOG_DECISIONS=false``. Paced runs at each ``--rates`` on the logging one, then maximum
throughput (no pacing, ``--max-connections``) alternating between the two, ``--max-rounds`` each.
After every run the decisions logged are counted and must equal the 200 responses (0 with
logging off): the script fails loudly otherwise. Needs Debian's wrk (4.x); the Lua script is
benchmarks/http_load.lua.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pipelines.seed_rows, tests.api.conftest
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as ml/__init__.py, before XGBoost loads

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from bench_pipeline import log, throwaway_database  # noqa: E402
from http_load_profile import CpuMeter, Spies, analyse, descendants  # noqa: E402
from speed_common import machine, table  # noqa: E402

LUA = Path(__file__).with_name("http_load.lua")
RESULTS = Path(__file__).with_name("results") / "http_load.json"
GOAL_P99_MS, GOAL_RATE, GOAL_RATIO = 5.0, 1000, 0.5
GRACE_SECONDS = 3.0  # wrk runs this much past the send window: requests in flight finish
CHANNELS = ("email", "sms", "app_push", "online_banking_alert", "branch")
TRAIN_ROWS = 12_000
FAST_RETRAIN = {"n_estimators": 80, "early_stopping_rounds": 10}


def campaign_definition(today) -> dict:  # type: ignore[no-untyped-def]
    """campaigns/cross_sell.yaml (56 arms, thompson_blend), started a month ago, loose caps."""
    spec = yaml.safe_load((ROOT / "campaigns" / "cross_sell.yaml").read_text())
    spec.update(
        name="bench-http",
        start_date=(today - timedelta(days=30)).isoformat(),
        frequency_caps={"max_per_week": 100, "min_days_between": 0},  # repeated customers stay eligible
    )
    spec["audience"] = {"min_age": 18, "min_income": 0}
    return spec


def build_world(engine, n_customers: int, seed: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Campaign, customers in the mart, consents, statistics; (campaign id, arms)."""
    import sqlalchemy as sa

    from pipelines import migrate
    from pipelines.db import copy_frame
    from pipelines.domain import SEGMENTS
    from pipelines.transform import run_dbt
    from tests.pipelines.seed_rows import add_campaign, insert_consents, insert_customers, random_customers

    today = datetime.now(UTC).date()
    migrate.upgrade(engine)
    customers = random_customers(n_customers, seed=seed)
    for i, c in enumerate(customers):  # ids c00000 ... as the Lua script builds them
        c["customer_id"] = f"c{i:05d}"
    insert_customers(engine, customers, today - timedelta(days=1))
    rng = np.random.default_rng(seed)
    granted_at = datetime.combine(today - timedelta(days=40), datetime.min.time(), tzinfo=UTC)
    insert_consents(  # ~7 % lack each channel: several consent masks per segment
        engine,
        [(c["customer_id"], ch, granted_at, bool(rng.random() > 0.07)) for c in customers for ch in CHANNELS],
    )
    campaign = add_campaign(engine, campaign_definition(today))
    log("dbt build (the customer_features mart) ...")
    run_dbt(today)
    k = len(campaign.arm_ids)
    stats = pd.DataFrame(  # a campaign some weeks in: 50-5,000 matured sends per (segment, arm)
        [(s, a) for s in SEGMENTS for a in campaign.arm_ids], columns=["segment", "arm_id"]
    )
    stats["matured"] = stats["sends"] = rng.integers(50, 5000, size=len(stats))
    rates = np.tile(rng.beta(2.0, 60.0, size=k), len(SEGMENTS))  # the arms' rates, in every segment
    stats["conversions"] = stats["reward_sum"] = rng.binomial(stats["matured"], rates)
    stats["alpha"], stats["beta"] = 1 + stats["reward_sum"], 1 + stats["matured"] - stats["reward_sum"]
    stats = stats.assign(campaign_id=campaign.campaign_id, pending=0, opens=0, clicks=0, revenue=0.0)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from analytics.segment_arm_stats"))
        copy_frame(conn, "analytics.segment_arm_stats", stats)
    return campaign.campaign_id, k


def train_champion(seed: int) -> dict:
    """Train, register and promote a champion with the real retrain (MLflow on this database)."""
    from ml.synthetic import make_arms, make_training_examples
    from pipelines.retrain import retrain
    from pipelines.settings import get_settings

    get_settings.cache_clear()
    out = retrain(
        settings=get_settings(),
        examples=make_training_examples(TRAIN_ROWS, seed=seed),
        arms=make_arms(),
        config=FAST_RETRAIN,
    )
    if not out.get("promoted"):
        raise SystemExit(f"the champion was not promoted: {out.get('gate') or out}")
    return {"version": out["version"], "auc": round(float(out["metrics"]["auc"]), 4)}


# -- servers and wrk ---------------------------------------------------------------------------
def launch(home: Path, workers: int, **env: str):  # type: ignore[no-untyped-def]
    """`campaignopt serve` on a free loopback port with its own home (its own Prometheus folder;
    the champion's artifacts stay where MLflow recorded them)."""
    from pipelines.serve_process import CLI, ServerProcess, free_port
    from tests.api.conftest import service_env

    home.mkdir(parents=True, exist_ok=True)
    run_env = service_env(os.environ["DATABASE_URL"], home, **env)
    port = free_port()
    with (home / "server.log").open("wb") as out:
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=run_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    return ServerProcess(f"http://127.0.0.1:{port}", process, home / "server.log")


def wait_started(servers, workers: int, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
    """Until every worker of every server finished its start-up (snapshot and champion loaded):
    a minute or more on a loaded 2-core machine (scipy, mlflow and xgboost imports)."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while server.log().count("Application startup complete") < workers:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server {server.url} did not start:\n{server.log()[-3000:]}")
            time.sleep(0.2)


def probe(server, token: str, campaign_id: int) -> dict:  # type: ignore[no-untyped-def]
    """A few decisions by hand: the champion must be in use (scored, blended, no fallback)."""
    import httpx

    seen = []
    for i in range(20):
        body = {"campaign_id": campaign_id, "customer_id": f"c{i:05d}", "idempotency_key": f"probe-{i}"}
        r = httpx.post(
            server.url + "/optimize", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        if r.status_code != 200:
            raise SystemExit(f"probe /optimize answered {r.status_code}: {r.text[:300]}")
        seen.append(r.json())
    treated = [d for d in seen if d["group"] == "treatment"]
    if not treated or any(d["model_version"] is None or d["fallback_reason"] for d in treated):
        raise SystemExit(f"the champion is not in use: {treated[:1] or seen[:1]}")
    return {
        "model_version": treated[0]["model_version"],
        "selected_by": sorted({d["selected_by"] for d in treated}),
        "policy": treated[0]["policy"],
        "probe_decisions": len(seen),
    }


def wrk(url: str, env: dict[str, str], rate: int, seconds: float, connections: int, threads: int) -> dict:
    """One wrk run; the Lua script's JSON (status counts, latency, from-schedule latency)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    run_env = (
        os.environ
        | env
        | {
            "LOAD_RATE": str(rate),
            "LOAD_SECONDS": str(seconds),
            "LOAD_THREADS": str(threads),
            "LOAD_OUT": str(out),
        }
    )
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds + GRACE_SECONDS:.0f}s", "--timeout", "10s",
        "-s", str(LUA), url,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=run_env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.stat().st_size:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def profile(runner, server, py_spy: str, seconds: float, connections: int) -> dict:  # type: ignore[no-untyped-def]
    """One more max-throughput run, logging on, with py-spy sampling every worker."""
    spies = Spies(py_spy, sorted(descendants(server.process.pid) - {server.process.pid}), seconds)
    row = runner.run("max on, profiled", server, 0, seconds, connections, True)
    out = analyse(spies.collect(), row["cpu_ms_per_200"]["server"])
    log(f"py-spy stacks kept in {spies.folder}")
    return out


def logged(engine, campaign_id: int) -> int:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("select count(*) from ops.decisions where campaign_id = :c and source = 'realtime'"),
                {"c": campaign_id},
            ).scalar()
        )


class Runner:
    """Runs wrk against a server and checks decisions logged == 200 responses after each run."""

    def __init__(self, engine, campaign_id: int, token: str, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.campaign_id, self.args = engine, campaign_id, args
        self.env = {"LOAD_CAMPAIGN": str(campaign_id), "LOAD_CUSTOMERS": str(args.customers),
                    "LOAD_PREFIX": "c", "LOAD_TOKEN": token}  # fmt: skip
        self.offset = 0
        self.runs: list[dict] = []

    def run(self, label: str, server, rate: int, seconds: float, connections: int, logging: bool) -> dict:  # type: ignore[no-untyped-def]
        before = logged(self.engine, self.campaign_id)
        env = self.env | {"LOAD_OFFSET": str(self.offset), "LOAD_RUN": f"{label}-{uuid.uuid4().hex[:6]}"}
        load = os.getloadavg()[0]
        meter = CpuMeter(self.engine, server)
        res = wrk(server.url, env, rate, seconds, connections, self.args.wrk_threads)
        cpu = meter.stop()
        ok = int(res["status"].get("200", 0))
        n_logged = logged(self.engine, self.campaign_id) - before
        self.offset = (self.offset + res["requests"]) % self.args.customers
        lat, sched = res["latency_us"], res["from_schedule_us"]
        row = {
            "run": label,
            "logging": logging,
            "target_rps": rate or None,
            "seconds": seconds,
            "connections": connections,
            "requests": res["requests"],
            "status": res["status"],
            "socket_errors": res["errors"],
            "achieved_rps": round(ok / seconds, 1),
            "ok_200": ok,
            "decisions_logged": n_logged,
            "p50_ms": lat["p50"] / 1e3,
            "p90_ms": lat["p90"] / 1e3,
            "p99_ms": lat["p99"] / 1e3,
            "max_ms": lat["max"] / 1e3,
            "from_schedule_p50_ms": sched["p50"] / 1e3 if sched["n"] else None,
            "from_schedule_p99_ms": sched["p99"] / 1e3 if sched["n"] else None,
            "cpu_ms_per_200": {k: round(1e3 * v / max(ok, 1), 3) for k, v in cpu.items()},
            "load_average_1min_before": round(load, 2),
        }
        expected = ok if logging else 0
        row["logged_check"] = "ok" if n_logged == expected else "MISMATCH"
        log(
            f"{label}: {row['achieved_rps']} req/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
            f"200s {ok}, logged {n_logged}, status {res['status']}"
        )
        if res["error_bodies"]:
            log(f"  non-200 answers: {res['error_bodies'][:400]}")
        self.runs.append(row)
        if n_logged != expected:
            raise SystemExit(
                f"FAIL {label}: {n_logged} decisions logged for {ok} answers 200 "
                f"(expected {expected}; logging {'on' if logging else 'off'})"
            )
        return row


def run(args: argparse.Namespace, home: Path) -> dict:
    from pipelines.apikeys import create_key
    from pipelines.db import get_engine
    from tests.api.conftest import stop_server

    os.environ["MLFLOW_TRACKING_URI"] = os.environ["DATABASE_URL"]
    os.environ["CAMPAIGNOPT_ENV"] = "benchhttp"
    engine = get_engine()
    t = time.perf_counter()
    campaign_id, n_arms = build_world(engine, args.customers, args.seed)
    log(f"world ready in {time.perf_counter() - t:.0f} s; training the champion ...")
    champion = train_champion(args.seed)
    token = create_key(engine, "bench-http", "service")[1]
    on = launch(home / "on", args.workers)
    off = launch(home / "off", args.workers, REALTIME_LOG_DECISIONS="false")
    servers = [on, off]
    try:
        t = time.perf_counter()
        wait_started(servers, args.workers)
        log(f"servers up in {time.perf_counter() - t:.0f} s: logging on {on.url}, off {off.url}")
        model = probe(on, token, campaign_id)
        runner = Runner(engine, campaign_id, token, args)
        for server, logging in ((on, True), (off, False)):  # pools, caches, both workers' first calls
            runner.run(f"warm-up {'on' if logging else 'off'}", server, 100, args.warmup, 16, logging)
        for rate in args.rates:
            conns = max(16, rate // 10)
            runner.run(f"{rate} req/s", on, rate, args.seconds, conns, True)
        for r in range(args.max_rounds):  # alternate: the shared machine's load moves over time
            for server, logging in ((on, True), (off, False)):
                name = f"max {'on' if logging else 'off'} #{r + 1}"
                runner.run(name, server, 0, args.max_seconds, args.max_connections, logging)
        if args.py_spy:
            out_profile = profile(runner, on, args.py_spy, args.max_seconds, args.max_connections)
    finally:
        for server in servers:
            stop_server(server)
        engine.dispose()
    measured = [r for r in runner.runs if not r["run"].startswith(("warm-up", "max on, profiled"))]

    def max_rps(logging: bool) -> float:
        rows = [r for r in measured if r["target_rps"] is None and r["logging"] is logging]
        return sum(r["ok_200"] for r in rows) / sum(r["seconds"] for r in rows)

    at_goal = next((r for r in measured if r["target_rps"] == GOAL_RATE), None)
    summary = {
        "max_rps_logging_on": round(max_rps(True), 1),
        "max_rps_logging_off": round(max_rps(False), 1),
    }
    summary["ratio_on_off"] = round(summary["max_rps_logging_on"] / summary["max_rps_logging_off"], 3)
    summary["goal_ratio_met"] = summary["ratio_on_off"] >= GOAL_RATIO
    if at_goal is not None:
        summary["p99_ms_at_1000"] = at_goal["p99_ms"]
        kept_pace = at_goal["achieved_rps"] >= 0.98 * GOAL_RATE
        summary["goal_p99_met"] = at_goal["p99_ms"] <= GOAL_P99_MS and kept_pace
    return {
        "arms": n_arms,
        "customers": args.customers,
        "workers": args.workers,
        "champion": champion,
        "model_in_use": model,
        "runs": runner.runs,
        "summary": summary,
        "profile": out_profile if args.py_spy else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    ap.add_argument("--rates", type=int, nargs="+", default=[100, 500, 1000], help="paced runs, req/s")
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each paced run")
    ap.add_argument("--max-seconds", type=float, default=10.0, help="length of each max-throughput run")
    ap.add_argument("--max-rounds", type=int, default=2, help="max-throughput runs per server")
    ap.add_argument("--max-connections", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds at 100 req/s per server first")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--py-spy",
        nargs="?",
        const=shutil.which("py-spy") or "py-spy",
        help="one more max run, logging on, with py-spy (path) sampling the workers: where the time goes",
    )
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    ap.add_argument("--json", action="store_true", help="print the results JSON instead of the table")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's wrk 4: `apt-get update && apt-get install -y wrk`")
    if max(args.rates) * args.seconds > args.customers:
        raise SystemExit("--customers must cover one paced run (rate x seconds) with distinct customers")
    started = machine()
    load_before = os.getloadavg()
    t = time.perf_counter()
    with throwaway_database("bench_http", args.keep_db) as (_db, home):
        out = run(args, home)
    out["machine"] = started | {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - t, 1),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    m, s = out["machine"], out["summary"]
    print(
        f"{out['arms']}-arm thompson_blend campaign, champion v{out['champion']['version']} "
        f"(AUC {out['champion']['auc']}) in use, {out['workers']} workers, {out['customers']} customers"
    )
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['date']}, load {m['load_average_before']}")
    rows = [
        (
            r["run"],
            str(r["target_rps"] or "max"),
            f"{r['achieved_rps']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            "-" if r["from_schedule_p99_ms"] is None else f"{r['from_schedule_p99_ms']:.2f}",
            str(r["ok_200"]),
            str(r["decisions_logged"]),
            str(sum(v for k, v in r["status"].items() if k != "200") + sum(r["socket_errors"].values())),
            *(f"{r['cpu_ms_per_200'][k]:.2f}" for k in ("server", "postgres", "wrk")),
        )
        for r in out["runs"]
    ]
    header = ("run", "target", "req/s", "p50 ms", "p99 ms", "p99 sched", "200s", "logged", "errors",
              "CPU ms/200: server", "pg", "wrk")  # fmt: skip
    print(table(rows, header))
    print(
        f"max throughput: {s['max_rps_logging_on']} req/s logging on, {s['max_rps_logging_off']} off: "
        f"ratio {s['ratio_on_off']} (goal >= {GOAL_RATIO}: {'met' if s['goal_ratio_met'] else 'NOT met'})"
    )
    if "p99_ms_at_1000" in s:
        met = "met" if s["goal_p99_met"] else "NOT met"
        print(f"p99 at {GOAL_RATE} req/s: {s['p99_ms_at_1000']:.2f} ms (goal <= {GOAL_P99_MS} ms: {met})")
    if out["profile"]:
        p = out["profile"]
        ms = p["server_cpu_ms_per_200"]
        print(f"\nprofile of the workers ({p['cpu_samples']} CPU samples, server CPU {ms} ms per 200):")
        rows = [
            (k, f"{100 * v['share']:.1f}", f"{v['cpu_ms_per_200']:.3f}", next(iter(v["top_leaves"]), ""))
            for k, v in p["categories"].items()
        ]
        print(table(rows, ("where", "% samples", "CPU ms per 200", "top leaf function")))
        rows = [(k, f"{v:.3f}") for k, v in p["decide_one_statements"].items()]
        print(table(rows, ("decide_one, by statement", "CPU ms per 200")))
        rows = [(k, f"{100 * v:.1f}") for k, v in p["waits_share_of_all_samples"].items()]
        print(table(rows, (f"waiting ({p['wait_samples']} samples, not CPU)", "% of all samples")))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
