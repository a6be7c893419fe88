"""Daily pipeline speed on the local PostgreSQL: ingest -> dbt -> decide -> publish -> ingest events.

    .venv/bin/python benchmarks/bench_pipeline.py [--customers N] [--events N] [--json] [--keep-db]

Creates a throwaway database ``bench_pipeline_<pid>`` on postgresql://postgres@127.0.0.1:5432
(dropped at the end unless --keep-db) and a temporary CAMPAIGNOPT_HOME, applies a campaign
with 48 arms (4 offers x 4 channels x 3 times of day, Thompson sampling, 10% holdout, no
audience cap, caps that do not bind), then times the real pipeline functions:

- ingest of the customer snapshot and consents (``write_customer_files`` + ``ingest_day``),
- ``run_dbt`` (dbt build, models and tests),
- ``decide_campaign`` (audience, consent mask, policy, COPY of the decisions),
- ``publish_list(validate=True)`` (Great Expectations, list query, CSV + Parquet export),
- ``ingest_day`` of an interactions CSV with ``--events`` events of the decisions just written.

Each stage reports wall time, CPU time of this process, CPU time of the PostgreSQL backends
of the benchmark database (separate processes, sampled from /proc every 0.25 s), peak RSS of
this process during the stage (VmHWM, reset before each stage) and the peak RSS of the
largest backend. Inner steps are timed by wrapping the pipeline's own functions during the
timed run (no second run). Same-run baselines: a raw ``COPY ... FROM STDIN`` of the same data
into an unindexed, unconstrained text table (the floor of any loader), a raw ``COPY ... TO``
of the list, and the plain per-customer Python decision loop on a sample, extrapolated.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import gc
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_common import baseline_numpy, machine, table  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def throwaway_database(prefix: str, keep: bool):  # type: ignore[no-untyped-def]
    """A new database on the local server and a new home folder, with DATABASE_URL and
    CAMPAIGNOPT_HOME pointing at them; both are removed afterwards unless ``keep``."""
    import sqlalchemy as sa

    dbname = f"{prefix}_{os.getpid()}"
    home = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{dbname}"'))
    os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
    os.environ["CAMPAIGNOPT_HOME"] = str(home)
    from pipelines.settings import get_settings

    get_settings.cache_clear()
    log(f"database {dbname}, home {home}; {uptime()}")
    try:
        yield dbname, home
    finally:
        if keep:
            log(f"kept database {dbname} and home {home}")
        else:
            with admin.connect() as conn:
                conn.execute(
                    sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :n"),
                    {"n": dbname},
                )
                conn.execute(sa.text(f'drop database if exists "{dbname}"'))
            shutil.rmtree(home, ignore_errors=True)
        admin.dispose()


DAY = date(2026, 11, 2)
NEXT = DAY + timedelta(days=1)
CAMPAIGN = "bench-48"
CAMPAIGN_YAML = f"""\
# Benchmark campaign: 4 offers x 4 channels x 3 times of day = 48 arms, no audience cap.
name: {CAMPAIGN}
description: daily pipeline speed benchmark
start_date: 2026-11-01
audience: {{min_age: 18, min_income: 0}}
parameters:
  offer_type: [credit_card, loan, savings_account, investment_product]
  channel: [email, sms, app_push, online_banking_alert]
  time_of_day: [morning, afternoon, evening]
policy: {{name: thompson}}
holdout_share: 0.1
frequency_caps: {{max_per_week: 7, min_days_between: 0}}
default_arm: {{offer_type: credit_card, channel: email, time_of_day: morning}}
"""
CAMPAIGN_CHANNELS = ("email", "sms", "app_push", "online_banking_alert")
EVENT_KINDS = ("impression", "open", "click", "view", "dwell")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average: {os.getloadavg()}"


# -- memory of this process ---------------------------------------------------------------
def _status_kb(pid: int | str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):  # Linux >= 4.0: "5" resets the peak RSS (VmHWM)
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# -- the PostgreSQL backends of the benchmark database ----------------------------------------
class BackendSampler(threading.Thread):
    """Samples CPU time and peak RSS of the server processes working for the benchmark database
    (backends, their parallel workers, autovacuum) from /proc. A process that exits loses at
    most one interval of CPU time. Their RSS includes the shared buffers they touched."""

    def __init__(self, dbname: str, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.dbname = dbname
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK")
        self.ours: set[int] = set()
        self.others: set[int] = set()
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.available = os.path.isdir("/proc")

    def run(self) -> None:
        while not self.stop.is_set():
            self.scan()
            self.stop.wait(self.interval)

    def scan(self) -> None:
        if not self.available:
            return
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid in self.ours or pid in self.others:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            mine = f" {self.dbname} " in cmd
            if not mine and "parallel worker for PID" in cmd:
                with contextlib.suppress(ValueError):
                    mine = int(cmd.rsplit("PID", 1)[1].split()[0]) in self.ours
            (self.ours if mine else self.others).add(pid)
        with self.lock:
            for pid in self.ours:
                try:
                    with open(f"/proc/{pid}/stat") as fh:
                        fields = fh.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # exited: keep the last sample
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self.tick
                self.hwm[pid] = max(self.hwm.get(pid, 0), _status_kb(pid, "VmHWM"))

    def begin(self) -> float:
        """Reset the peaks of the live backends; returns the CPU seconds so far."""
        self.scan()
        with self.lock:
            for pid in list(self.ours):
                _reset_hwm(pid)
                self.hwm[pid] = 0
            return sum(self.cpu.values())

    def end(self, cpu_before: float) -> tuple[float, float]:
        """(CPU seconds since ``begin``, largest backend peak RSS in MB since ``begin``)."""
        self.scan()
        with self.lock:
            return sum(self.cpu.values()) - cpu_before, max(self.hwm.values(), default=0) / 1024.0


# -- stage timing and inner-step instrumentation --------------------------------------------
@dataclasses.dataclass
class Stage:
    name: str
    wall: float = 0.0
    cpu: float = 0.0
    pg_cpu: float = float("nan")
    rss_start_mb: float = 0.0
    peak_rss_mb: float = 0.0
    pg_peak_rss_mb: float = float("nan")
    steps: dict[str, float] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    extra: dict[str, object] = dataclasses.field(default_factory=dict)


class Recorder:
    def __init__(self, sampler: BackendSampler | None) -> None:
        self.sampler = sampler
        self.stages: dict[str, Stage] = {}
        self.current: Stage | None = None

    @contextlib.contextmanager
    def stage(self, name: str):  # type: ignore[no-untyped-def]
        st = Stage(name)
        self.stages[name] = st
        _trim()
        _reset_hwm()
        st.rss_start_mb = _status_kb("self", "VmRSS") / 1024.0
        pg0 = self.sampler.begin() if self.sampler else 0.0
        prev, self.current = self.current, st
        log(f"{name} ...")
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield st
        finally:
            st.wall = time.perf_counter() - w0
            st.cpu = time.process_time() - c0
            st.peak_rss_mb = _status_kb("self", "VmHWM") / 1024.0
            if self.sampler:
                st.pg_cpu, st.pg_peak_rss_mb = self.sampler.end(pg0)
            self.current = prev
            log(f"{name}: {st.wall:.1f} s wall, {st.cpu:.1f} s CPU, peak RSS {st.peak_rss_mb:,.0f} MB")

    def add(self, label: str, seconds: float) -> None:
        if self.current is not None:
            self.current.steps[label] = self.current.steps.get(label, 0.0) + seconds
            self.current.counts[label] = self.current.counts.get(label, 0) + 1

    def timed(self, fn, label):  # type: ignore[no-untyped-def]
        """``fn`` with each call's wall time added under ``label`` (or ``label(args, kwargs)``)."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                name = label(args, kwargs) if callable(label) else label
                self.add(str(name), time.perf_counter() - t0)

        return timed

    @contextlib.contextmanager
    def wrap(self, owner: object, attr: str, label):  # type: ignore[no-untyped-def]
        """Time every call of ``owner.attr`` while inside (restored on exit)."""
        original = getattr(owner, attr)
        setattr(owner, attr, self.timed(original, label))
        try:
            yield
        finally:
            setattr(owner, attr, original)


# -- helpers ---------------------------------------------------------------------------------
def copy_in(raw_conn, table_name: str, source, header: bool) -> float:  # type: ignore[no-untyped-def]
    """Raw COPY FROM STDIN of CSV text (a file path or bytes) with psycopg; returns seconds."""
    t0 = time.perf_counter()
    opts = "FORMAT csv, HEADER true" if header else "FORMAT csv"
    with raw_conn.cursor() as cur, cur.copy(f"COPY {table_name} FROM STDIN WITH ({opts})") as copy:
        if isinstance(source, (bytes, bytearray, memoryview)):
            view = memoryview(source)
            for i in range(0, len(view), 1 << 20):
                copy.write(view[i : i + (1 << 20)])
        else:
            with open(source, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
    raw_conn.commit()
    return time.perf_counter() - t0


def text_table(raw_conn, name: str, n_columns: int, unlogged: bool = False) -> None:  # type: ignore[no-untyped-def]
    cols = ", ".join(f"c{i} text" for i in range(n_columns))
    raw_conn.execute(f"drop table if exists {name}")
    raw_conn.execute(f"create {'unlogged ' if unlogged else ''}table {name} ({cols})")
    raw_conn.commit()


def csv_columns(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return len(fh.readline().rstrip("\n").split(","))


def ensure_one_campaign_channel(consents_csv: Path) -> int:
    """Grant email to customers who consented to none of the campaign's channels, so that the
    whole generated base is eligible (about 0.1% of it otherwise). Returns how many changed."""
    import pandas as pd

    frame = pd.read_csv(consents_csv, dtype=str, keep_default_na=False, engine="pyarrow")
    granted = frame["granted"].str.lower().isin(["true", "1"])
    in_campaign = frame["channel"].isin(CAMPAIGN_CHANNELS)
    has_any = (granted & in_campaign).groupby(frame["customer_id"]).any()
    lacking = has_any.index[~has_any.to_numpy()]
    if len(lacking):
        fix = frame["customer_id"].isin(lacking) & (frame["channel"] == "email")
        frame.loc[fix, "granted"] = "True"
        frame.to_csv(consents_csv, index=False)
    return len(lacking)


def write_events(engine, path: Path, n_events: int, day: date, seed: int, decided_on: date = DAY) -> int:  # type: ignore[no-untyped-def]
    """``n_events`` interactions of the batch decisions of ``decided_on`` (impression, open, click,
    view, dwell per decision in turn), all valid, occurring on ``day``, as one CSV file."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from pipelines.db import read_frame

    with engine.connect() as conn:
        dec = read_frame(
            conn,
            "select decision_id, customer_id, campaign_id, arm_id from ops.decisions "
            "where decision_date = %(d)s and source = 'batch' order by decision_id",
            {"d": decided_on},
        )
    n_dec = len(dec)
    rng = np.random.default_rng(seed)
    i = np.arange(n_events)
    idx = i % n_dec
    kind = (i // n_dec) % len(EVENT_KINDS)
    dec_ids = pa.array(dec["decision_id"].astype(str).to_numpy()).take(pa.array(idx))
    suffix = pa.array(np.asarray([f"e{k}" for k in range(len(EVENT_KINDS))], dtype=object)).take(
        pa.array(kind)
    )
    rounds = i // (n_dec * len(EVENT_KINDS))  # beyond 5 events per decision: more rounds
    if rounds.max(initial=0) > 0:
        suffix = pc.binary_join_element_wise(suffix, pa.array(rounds.astype(str)), "r")
    event_id = pc.binary_join_element_wise(dec_ids, suffix, "-")
    seconds = rng.integers(0, 86_400, size=n_events)
    stamps = np.asarray(
        [f"{day.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86_400)],
        dtype=object,
    )
    values = np.where(kind == EVENT_KINDS.index("dwell"), np.round(rng.exponential(30.0, n_events), 1), 0.0)
    tbl = pa.table(
        {
            "event_id": event_id,
            "decision_id": dec_ids,
            "customer_id": pa.array(dec["customer_id"].astype(str).to_numpy()).take(pa.array(idx)),
            "campaign_id": pa.array(dec["campaign_id"].to_numpy()).take(pa.array(idx)),
            "arm_id": pa.array(dec["arm_id"].to_numpy()).take(pa.array(idx)),
            "event_type": pa.array(np.asarray(EVENT_KINDS, dtype=object)).take(pa.array(kind)),
            "value": pa.array(values),
            "occurred_at": pa.array(stamps).take(pa.array(seconds)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # a plain header line, as pandas and most exporters write it
        fh.write((",".join(tbl.column_names) + "\n").encode())
        pacsv.write_csv(tbl, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return n_dec


# -- the benchmark ---------------------------------------------------------------------------
def run(args: argparse.Namespace, dbname: str, home: Path, result: dict) -> None:
    import pandas as pd

    from pipelines import audience as audience_mod
    from pipelines import decide as decide_mod
    from pipelines import decide_buckets as buckets_mod
    from pipelines import ingest as ingest_mod
    from pipelines import migrate
    from pipelines import publish as publish_mod
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaign, load_campaign_by_name
    from pipelines.db import get_engine
    from pipelines.demo import write_customer_files
    from pipelines.ingest import ingest_day
    from pipelines.ingest import loader as loader_mod
    from pipelines.ingest import schemas as schemas_mod
    from pipelines.settings import get_settings
    from pipelines.transform import run_dbt

    settings = get_settings()
    assert settings.database_url and dbname in settings.database_url, "settings read before the env was set"
    engine = get_engine()
    migrate.upgrade(engine)
    spec_path = home / f"{CAMPAIGN}.yaml"
    spec_path.write_text(CAMPAIGN_YAML)
    applied = apply_campaign(engine, load_campaign(spec_path), source_file=spec_path)
    assert applied.arms_active == 48, applied
    campaign = load_campaign_by_name(engine, CAMPAIGN)

    sampler = BackendSampler(dbname)
    sampler.start()
    rec = Recorder(sampler)
    setup: dict[str, float] = {}
    raw = engine.raw_connection()  # for the raw COPY baselines
    pg = raw.driver_connection

    def ingest_instruments(stack: contextlib.ExitStack) -> None:
        kinds = dict(schemas_mod.KINDS)
        for name, kind in kinds.items():
            schemas_mod.KINDS[name] = dataclasses.replace(
                kind, parse=rec.timed(kind.parse, "parse + checks (pandas)")
            )
        stack.callback(schemas_mod.KINDS.update, kinds)
        # ingest_day calls the name it imported into the package
        stack.enter_context(rec.wrap(ingest_mod, "load_file", lambda a, k: f"file {a[3].name}"))
        from bench_ingest import instruments  # the same inner steps as the ingest benchmark

        from pipelines.ingest import readers as readers_mod
        from pipelines.ingest import records as records_mod

        for owner, attr, label in instruments(loader_mod, readers_mod, records_mod):
            stack.enter_context(rec.wrap(owner, attr, label))

    # 1. customers + consents ---------------------------------------------------------------
    t0 = time.perf_counter()
    customers_csv, consents_csv = write_customer_files(settings.inbox_dir, DAY, args.customers, seed=11)
    fixed = ensure_one_campaign_channel(consents_csv)
    setup["write customer + consent files"] = time.perf_counter() - t0
    sizes = {p.name: p.stat().st_size for p in (customers_csv, consents_csv)}
    with contextlib.ExitStack() as stack:
        ingest_instruments(stack)
        with rec.stage("ingest customers+consents") as st:
            report = ingest_day(engine, DAY)
    st.extra = {
        "files": [dataclasses.asdict(f) for f in report.files],
        "bytes": sizes,
        "customers_given_email_consent": fixed,
    }
    assert report.quarantined == 0, report.as_dict()
    # its floor: the same two files, raw COPY into text tables
    text_table(pg, "raw_copy_baseline", csv_columns(customers_csv))
    floor_c = copy_in(pg, "raw_copy_baseline", customers_csv, header=True)
    text_table(pg, "raw_copy_baseline_2", csv_columns(consents_csv))
    floor_c += copy_in(pg, "raw_copy_baseline_2", consents_csv, header=True)
    pg.execute("drop table raw_copy_baseline; drop table raw_copy_baseline_2")
    pg.commit()
    st.extra["floor_s"] = floor_c

    # 2. dbt ----------------------------------------------------------------------------------
    with rec.stage("dbt build") as st:
        dbt = run_dbt(DAY)
    st.extra = {k: v for k, v in dbt.as_dict().items() if k not in ("target_path", "failures")}

    # 3. decide -------------------------------------------------------------------------------
    def read_label(a, k):  # type: ignore[no-untyped-def]
        query = a[1] if len(a) > 1 else k.get("query")
        return (
            "audience query (read_frame)"
            if query is audience_mod._AUDIENCE_SQL
            else "consent query (read_frame)"
        )

    original_make_policy = decide_mod.make_policy

    def make_policy_timed(*a, **k):  # type: ignore[no-untyped-def]
        policy = original_make_policy(*a, **k)
        policy.decide = rec.timed(policy.decide, "policy decide (bandits)")  # shadows the method
        return policy

    with contextlib.ExitStack() as stack:
        stack.enter_context(rec.wrap(buckets_mod, "eligible_audience", "audience total"))
        stack.enter_context(rec.wrap(audience_mod, "read_frame", read_label))
        stack.enter_context(rec.wrap(audience_mod, "consent_mask", "consent mask total"))
        stack.enter_context(rec.wrap(buckets_mod, "segment_stats", "segment stats (mart)"))
        stack.enter_context(rec.wrap(buckets_mod, "decide_customers", "decisions frame total"))
        stack.enter_context(rec.wrap(buckets_mod, "copy_frame", "COPY decisions total"))
        stack.enter_context(rec.wrap(pd.DataFrame, "to_csv", "to_csv"))
        decide_mod.make_policy = make_policy_timed
        stack.callback(setattr, decide_mod, "make_policy", original_make_policy)
        with rec.stage("decide") as st:
            decided = decide_mod.decide_campaign(engine, campaign, DAY)
    st.extra = {"n_rows": decided.n_rows, "n_control": decided.n_control}
    n_rows = decided.n_rows

    # 4. publish (GX imported first, timed on its own: once per process) -------------------------
    with rec.stage("import great_expectations + suites"):
        from pipelines import validation as validation_mod

        validation_mod.suites()
    with contextlib.ExitStack() as stack:
        stack.enter_context(rec.wrap(validation_mod, "validate_send_list", "GX validate_send_list total"))
        stack.enter_context(rec.wrap(validation_mod, "_count", "GX: row count query"))
        stack.enter_context(rec.wrap(publish_mod, "read_frame", "list query (read_frame)"))
        stack.enter_context(rec.wrap(pd.DataFrame, "to_csv", "CSV export"))
        stack.enter_context(rec.wrap(pd.DataFrame, "to_parquet", "Parquet export"))
        with rec.stage("publish") as st:
            published = publish_mod.publish_list(engine, campaign, DAY, validate=True)
    st.extra = {"n_rows": published.n_rows, "csv_mb": Path(published.csv_path).stat().st_size / 2**20}
    assert published.n_rows == n_rows

    # 5. decide/publish baselines (same run) ------------------------------------------------------
    log("baselines for decide + write + export ...")
    base: dict[str, object] = {}
    buf = io.BytesIO()
    cols = (
        "decision_id, campaign_id, customer_id, arm_id, decision_date, decided_at, segment, policy, "
        "policy_version, strategy, phase, propensity, bandit_score, model_score, blend_score, selected_by, "
        "confidence, explored, model_version, treatment_group, source, seed, note"
    )
    where = (
        f"campaign_id = {campaign.campaign_id} and decision_date = date '{DAY.isoformat()}' "
        "and source = 'batch'"
    )
    t0 = time.perf_counter()
    with (
        pg.cursor() as cur,
        cur.copy(
            f"COPY (select {cols} from ops.decisions where {where}) TO STDOUT WITH (FORMAT csv)"
        ) as copy,
    ):
        for chunk in copy:
            buf.write(chunk)
    base["copy_out_decisions_s"] = time.perf_counter() - t0
    pg.commit()
    data = buf.getvalue()
    del buf
    base["decisions_csv_mb"] = len(data) / 2**20
    text_table(pg, "raw_copy_baseline", len(cols.split(",")))
    base["copy_in_text_s"] = copy_in(pg, "raw_copy_baseline", data, header=False)
    pg.execute("drop table raw_copy_baseline")
    pg.execute("drop table if exists bench_decisions_typed")
    pg.execute("create table bench_decisions_typed (like ops.decisions including defaults)")
    pg.commit()
    base["copy_in_typed_no_index_s"] = copy_in(pg, f"bench_decisions_typed ({cols})", data, header=False)
    pg.execute("drop table bench_decisions_typed")
    pg.execute("create table bench_decisions_typed (like ops.decisions including defaults including indexes)")
    pg.commit()
    base["copy_in_typed_indexes_s"] = copy_in(pg, f"bench_decisions_typed ({cols})", data, header=False)
    pg.execute("drop table bench_decisions_typed")
    pg.commit()
    del data
    # the same serialisation as copy_frame, alone (pandas to_csv of the decisions frame)
    with engine.connect() as conn:
        customers_df, allowed = audience_mod.eligible_audience(conn, campaign, DAY)
        pulls, rewards = decide_mod.segment_stats(conn, campaign)
    t0 = time.perf_counter()
    frame = decide_mod.decide_customers(
        campaign, customers_df, allowed, pulls, rewards, decided.seed, DAY, None, None
    )
    base["decisions_frame_2nd_pass_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = io.StringIO()
    frame.to_csv(s, index=False, header=False, na_rep="\\N")
    base["to_csv_decisions_s"] = time.perf_counter() - t0
    del s, frame
    _trim()
    # the plain per-customer loop on a sample, extrapolated
    from bandits import make_policy

    policy = make_policy("thompson", n_arms=len(campaign.arm_ids), n_segments=9).set_stats(pulls, rewards)
    treat = np.flatnonzero(~customers_df["is_control"].to_numpy(dtype=bool))
    sample = treat[: min(args.baseline_sample, len(treat))]
    segs = customers_df["segment_idx"].to_numpy(dtype=np.int64)
    t0 = time.perf_counter()
    baseline_numpy(
        policy.alpha_,
        policy.beta_,
        segs[sample],
        allowed[sample],
        policy.params.draws,
        np.random.default_rng(1),
    )
    loop_s = time.perf_counter() - t0
    base["loop_sample"] = int(len(sample))
    base["loop_sample_s"] = loop_s
    base["loop_extrapolated_s"] = loop_s * len(treat) / max(len(sample), 1)
    base["treated"] = int(len(treat))
    # the floor of the export: COPY the list out to a file
    out = home / "copy_floor_list.csv"
    t0 = time.perf_counter()
    with (
        open(out, "wb") as fh,
        pg.cursor() as cur,
        cur.copy(
            f"COPY ({publish_mod._LIST_SQL}) TO STDOUT WITH (FORMAT csv, HEADER true)",
            {"c": campaign.campaign_id, "d": DAY},
        ) as copy,
    ):
        for chunk in copy:
            fh.write(chunk)
    base["copy_out_list_to_file_s"] = time.perf_counter() - t0
    pg.commit()
    out.unlink()
    del customers_df, allowed
    result["decide_baselines"] = base

    # 6. 5M events ----------------------------------------------------------------------------------
    events_csv = settings.inbox_dir / NEXT.isoformat() / "interactions_bench.csv"
    t0 = time.perf_counter()
    write_events(engine, events_csv, args.events, NEXT, seed=5)
    setup["write events file"] = time.perf_counter() - t0
    ev_base: dict[str, object] = {"csv_mb": events_csv.stat().st_size / 2**20}
    text_table(pg, "raw_copy_baseline", csv_columns(events_csv))
    ev_base["copy_floor_before_s"] = copy_in(pg, "raw_copy_baseline", events_csv, header=True)
    pg.execute("drop table raw_copy_baseline")
    pg.commit()
    pg.execute("checkpoint")  # start ours with the floor's dirty pages written
    pg.commit()
    with contextlib.ExitStack() as stack:
        ingest_instruments(stack)
        with rec.stage("ingest events") as st:
            report = ingest_day(engine, NEXT)
    st.extra = {"files": [dataclasses.asdict(f) for f in report.files]}
    assert report.loaded == args.events and report.quarantined == 0, report.as_dict()
    pg.execute("checkpoint")
    pg.commit()
    text_table(pg, "raw_copy_baseline", csv_columns(events_csv))
    ev_base["copy_floor_after_s"] = copy_in(pg, "raw_copy_baseline", events_csv, header=True)
    pg.execute("drop table raw_copy_baseline")
    pg.commit()
    result["events_baselines"] = ev_base
    raw.close()

    sampler.stop.set()
    result["setup_s"] = setup
    result["stages"] = {name: dataclasses.asdict(s) for name, s in rec.stages.items()}
    result["process_peak_rss_mb_lifetime"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    engine.dispose()


def summarise(result: dict, args: argparse.Namespace) -> dict:
    st = result["stages"]
    dec, pub, gx_imp = st["decide"], st["publish"], st["import great_expectations + suites"]
    ing_c, ev = st["ingest customers+consents"], st["ingest events"]
    b, eb = result["decide_baselines"], result["events_baselines"]
    ds, ps, es = dec["steps"], pub["steps"], ev["steps"]

    dwe = dec["wall"] + pub["wall"]
    dwe_cold = dwe + gx_imp["wall"]
    floor_dwe = b["copy_in_text_s"] + b["copy_out_list_to_file_s"]
    ev_floor = (eb["copy_floor_before_s"] + eb["copy_floor_after_s"]) / 2
    policy_s = ds.get("policy decide (bandits)", 0.0)
    frame_s = ds.get("decisions frame total", 0.0)
    copy_s = ds.get("COPY decisions total", 0.0)
    to_csv_s = ds.get("to_csv", 0.0)
    aud = ds.get("audience total", 0.0)
    cons = ds.get("consent mask total", 0.0)
    cons_q = ds.get("consent query (read_frame)", 0.0)
    aud_q = ds.get("audience query (read_frame)", 0.0)
    decide_breakdown = {
        "audience query (SQL + COPY TO + pandas parse)": aud_q,
        "consent query (SQL + COPY TO + pandas parse)": cons_q,
        "consent mask build (numpy/pandas)": cons - cons_q,
        "audience rest (filter, segment, holdout)": aud - aud_q - cons,
        "segment stats (mart)": ds.get("segment stats (mart)", 0.0),
        "policy decide (bandits, vectorized)": policy_s,
        "decisions frame (ids, columns)": frame_s - policy_s,
        "to_csv of the decisions (copy_frame)": to_csv_s,
        "COPY into ops.decisions (server: parse, PK + 3 indexes, 2 FKs)": copy_s - to_csv_s,
        "rest (status check, delete, send_lists, commit)": dec["wall"]
        - aud
        - ds.get("segment stats (mart)", 0.0)
        - frame_s
        - copy_s,
    }
    gx = ps.get("GX validate_send_list total", 0.0)
    publish_breakdown = {
        "GX validate_send_list (count + checkpoint + data docs)": gx,
        "  of which the row count query": ps.get("GX: row count query", 0.0),
        "list query (join arms, COPY TO, pandas parse)": ps.get("list query (read_frame)", 0.0),
        "CSV export (pandas to_csv)": ps.get("CSV export", 0.0),
        "Parquet export": ps.get("Parquet export", 0.0),
        "rest (status, update, rename)": pub["wall"]
        - gx
        - ps.get("list query (read_frame)", 0.0)
        - ps.get("CSV export", 0.0)
        - ps.get("Parquet export", 0.0),
    }
    ev_files = sum(v for k, v in es.items() if k.startswith("file "))
    inner = {k: v for k, v in es.items() if not k.startswith("file ")}
    ingest_breakdown = {
        **inner,
        "rest of load_file (CSV parsing in pyarrow, ledger, commit)": ev_files - sum(inner.values()),
        "outside load_file (listing the inbox)": ev["wall"] - ev_files,
    }
    c_steps = ing_c["steps"]
    summary = {
        "targets": {
            "decide_write_export_s": round(dwe, 1),
            "decide_write_export_incl_gx_import_s": round(dwe_cold, 1),
            "decide_write_export_target_s": 90,
            "decide_write_export_met": dwe_cold < 90,
            "decide_publish_peak_rss_mb": round(
                max(dec["peak_rss_mb"], pub["peak_rss_mb"], gx_imp["peak_rss_mb"]), 0
            ),
            "peak_rss_target_mb": 4096,
            "peak_rss_met": max(dec["peak_rss_mb"], pub["peak_rss_mb"], gx_imp["peak_rss_mb"]) < 4096,
            "ingest_events_s": round(ev["wall"], 1),
            "ingest_events_target_s": 60,
            "ingest_events_met": ev["wall"] < 60,
        },
        "ratios": {
            "decide_write_export_vs_copy_floor": round(dwe / floor_dwe, 1),
            "decide_write_export_copy_floor_s": round(floor_dwe, 2),
            "decide_write_export_vs_python_loop": round(dwe / b["loop_extrapolated_s"], 4),
            "policy_decide_vs_python_loop": round(policy_s / b["loop_extrapolated_s"], 5),
            "copy_decisions_vs_text_floor": round(copy_s / b["copy_in_text_s"], 2),
            "ingest_events_vs_copy_floor": round(ev["wall"] / ev_floor, 1),
            "ingest_events_copy_floor_s": round(ev_floor, 2),
            "ingest_customers_vs_copy_floor": round(ing_c["wall"] / ing_c["extra"]["floor_s"], 1),
        },
        "decide_breakdown_s": {k: round(v, 2) for k, v in decide_breakdown.items()},
        "publish_breakdown_s": {k: round(v, 2) for k, v in publish_breakdown.items()},
        "ingest_events_breakdown_s": {k: round(v, 2) for k, v in ingest_breakdown.items()},
        "ingest_customers_breakdown_s": {k: round(v, 2) for k, v in c_steps.items()},
    }
    return summary


def print_report(result: dict, args: argparse.Namespace) -> None:
    m, st, sm = result["machine"], result["stages"], result["summary"]
    b, eb = result["decide_baselines"], result["events_baselines"]
    print(
        f"Daily pipeline: {args.customers:,} customers, 48 arms (thompson, no model), {args.events:,} events"
    )
    print(f"machine: {m['nproc']} cores, {m['cpu']}; {m['date']}")
    print(f"uptime at start: {result['uptime_start']}")
    print(f"uptime at end:   {result['uptime_end']}")
    print("(the machine is shared: other engineers' tests run on the same 2 cores; CPU columns are fairer)")
    print()
    rows = []
    floors = {
        "ingest customers+consents": st["ingest customers+consents"]["extra"]["floor_s"],
        "ingest events": (eb["copy_floor_before_s"] + eb["copy_floor_after_s"]) / 2,
    }
    for name, s in st.items():
        floor = floors.get(name)
        rows.append(
            (
                name,
                f"{s['wall']:.1f}",
                f"{s['cpu']:.1f}",
                f"{s['pg_cpu']:.1f}",
                f"{s['peak_rss_mb']:,.0f}",
                f"{s['pg_peak_rss_mb']:,.0f}",
                f"{floor:.1f}" if floor else "",
                f"{s['wall'] / floor:.1f}x" if floor else "",
            )
        )
    dwe_floor = sm["ratios"]["decide_write_export_copy_floor_s"]
    dwe = sm["targets"]["decide_write_export_s"]
    rows.append(
        ("= decide + publish", f"{dwe:.1f}", "", "", "", "", f"{dwe_floor:.1f}", f"{dwe / dwe_floor:.1f}x")
    )
    print(
        table(
            rows,
            ("stage", "wall s", "CPU s", "PG CPU s", "peak RSS MB", "PG peak MB", "COPY floor s", "vs floor"),
        )
    )
    print(
        "peak RSS: this process during the stage (VmHWM reset at its start); PG: the largest server "
        "process of the benchmark database (a separate process; includes shared buffers it touched)"
    )
    print()
    print("decide + write + export baselines (same run):")
    print(
        f"  COPY the {b['decisions_csv_mb']:.0f} MB of decision rows into a text table: "
        f"{b['copy_in_text_s']:.1f} s; typed, no index: {b['copy_in_typed_no_index_s']:.1f} s; "
        f"typed + indexes: {b['copy_in_typed_indexes_s']:.1f} s; "
        f"COPY the list out to a file: {b['copy_out_list_to_file_s']:.1f} s"
    )
    print(
        f"  plain per-customer loop (numpy, {b['loop_sample']:,} treated customers in "
        f"{b['loop_sample_s']:.1f} s), "
        f"extrapolated to {b['treated']:,}: {b['loop_extrapolated_s']:,.0f} s "
        f"-> policy decide is {1 / max(sm['ratios']['policy_decide_vs_python_loop'], 1e-12):,.0f}x faster; "
        f"the whole decide+publish {1 / max(sm['ratios']['decide_write_export_vs_python_loop'], 1e-12):,.0f}x"
    )
    for title, key in (
        ("decide breakdown (s)", "decide_breakdown_s"),
        ("publish breakdown (s)", "publish_breakdown_s"),
        ("ingest events breakdown (s)", "ingest_events_breakdown_s"),
        ("ingest customers+consents steps (s, nested labels overlap)", "ingest_customers_breakdown_s"),
    ):
        print()
        print(table([(k, f"{v:.2f}") for k, v in sm[key].items()], (title, "s")))
    t = sm["targets"]
    print()
    print(
        f"target decide+write+export < 90 s: {t['decide_write_export_s']} s "
        f"({t['decide_write_export_incl_gx_import_s']} s with the GX import of a fresh process) -> "
        f"{'met' if t['decide_write_export_met'] else 'MISSED'}"
    )
    print(
        f"target peak memory < 4 GB: {t['decide_publish_peak_rss_mb']:,.0f} MB -> "
        f"{'met' if t['peak_rss_met'] else 'MISSED'}"
    )
    print(
        f"target ingest of {args.events:,} events < 60 s: {t['ingest_events_s']} s -> "
        f"{'met' if t['ingest_events_met'] else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--baseline-sample", type=int, default=2000, help="customers in the plain-loop sample")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--keep-db", action="store_true", help="keep the database and the home folder")
    args = ap.parse_args(argv)

    result: dict = {"machine": machine(), "uptime_start": uptime(), "args": vars(args)}
    with throwaway_database("bench_pipeline", args.keep_db) as (dbname, home):
        run(args, dbname, home, result)
    result["uptime_end"] = uptime()
    result["summary"] = summarise(result, args)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
