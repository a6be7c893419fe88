"""Where the service's time goes under load, for benchmarks/bench_http_load.py: CPU seconds of the
server's processes, the database's backends and wrk during a run (from /proc), and a py-spy
profile of the workers sorted into the parts of a request."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import tempfile
from collections import Counter
from pathlib import Path


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still alive, from /proc/<pid>/stat."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def descendants(pid: int) -> set[int]:
    """The uvicorn parent's processes (workers, resource tracker) and itself."""
    found, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids if int(k) not in found]
        found |= {int(k) for k in kids}
    return found


def backends(engine) -> set[int]:  # type: ignore[no-untyped-def]
    """PostgreSQL backends of this database (both servers' pools), this script's own excluded."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select pid from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
        )
        return {int(r[0]) for r in rows}


class CpuMeter:
    """CPU seconds spent during a run by the server's processes, the database's backends and wrk."""

    def __init__(self, engine, server) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.server = engine, server
        self.server_before = cpu_seconds(descendants(server.process.pid))
        self.pg_before = cpu_seconds(backends(engine))
        self.wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    def stop(self) -> dict[str, float]:
        def spent(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(v - before.get(pid, 0.0) for pid, v in after.items())

        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": spent(self.server_before, cpu_seconds(descendants(self.server.process.pid))),
            "postgres": spent(self.pg_before, cpu_seconds(backends(self.engine))),
            "wrk": (wrk_after.ru_utime + wrk_after.ru_stime)
            - (self.wrk_before.ru_utime + self.wrk_before.ru_stime),
        }


# Where a worker's CPU goes: each py-spy sample is put in the first category whose pattern is a
# frame of its stack (so the middleware's own work is what remains after the route's parts).
PROFILE_CATEGORIES = (
    ("model scoring (XGBoost, features)", ("model_scores ", "score_matrix ")),
    ("bandit policy (thompson_blend draws)", ("choose_arms ",)),
    ("eligibility query (SQL + frame)", ("eligible_customer ",)),
    ("decision insert", ("log_decision ",)),
    ("idempotency lookups", ("_existing ",)),
    ("rest of decide_one (begin, lock, commit)", ("decide_one ",)),
    ("auth dependency (key cache)", ("current_key ", "require_role")),
    ("response model + JSON", ("serialize_response ", "jsonable_encoder ", "to_response ", "render ")),
    ("body parsing + validation", ("request_body_to_args ", "solve_dependencies ", "_get_body ")),
    ("snapshot refresh thread", ("_refresh_loop ",)),
    ("Prometheus middleware", ("prometheus_fastapi_instrumentator",)),
    ("routing, Starlette, FastAPI", ("starlette", "fastapi")),
    ("uvicorn, HTTP parsing, event loop", ("uvicorn", "httptools", "asyncio")),
    ("threadpool hand-off (anyio)", ("anyio",)),
)


def _frames(raw: str):  # type: ignore[no-untyped-def]
    """(frames root first, samples) of py-spy's collapsed stacks ("frame;frame;... count")."""
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            yield stack.split(";"), int(n)


def _short(frame: str, keep_line: bool = False) -> str:
    """'fn (/path/to/mod.py:12)' -> 'fn (mod.py)' (or 'fn (mod.py:12)')."""
    m = re.match(r"(.*) \((?:.*/)?([^/]+?)(:\d+)?\)$", frame)
    if not m:
        return frame
    line = (m.group(3) or "") if keep_line else ""
    return f"{m.group(1)} ({m.group(2)}{line})"


# Samples whose innermost frame waits (py-spy counts some blocked threads as active): not CPU.
WAIT_LEAVES = (
    ("PostgreSQL round trip", ("Connection.wait (", "wait_c (", "wait_epoll (")),
    ("the campaign's policy lock", ("_choose_with (",)),  # `with state.lock:` (acquire is C)
    ("idle event loop or threadpool", ("Runner.run (", "Condition.wait (", "Event.wait (", "select (")),
)


def analyse(raws: list[str], server_ms: float) -> dict:
    """CPU samples per category (the first category with a frame in the stack, so that a
    wrapper's own work is what remains after its parts) with their top leaf functions and CPU ms
    per 200 (the server's CPU by share); the statements of decide_one where its CPU samples
    fall; and apart, the samples that wait (what on, in which category)."""
    cats: Counter = Counter()
    leaves: dict[str, Counter] = {}
    lines: Counter = Counter()
    waits: Counter = Counter()
    for raw in raws:
        for frames, n in _frames(raw):
            name = next(
                (c for c, pats in PROFILE_CATEGORIES if any(p in f for f in frames for p in pats)), "other"
            )
            leaf = frames[-1]
            wait = next((w for w, pats in WAIT_LEAVES if any(leaf.startswith(p) for p in pats)), None)
            if wait is not None:
                waits[f"{wait} (in {name})"] += n
                continue
            cats[name] += n
            leaves.setdefault(name, Counter())[_short(leaf)] += n
            inside = [f for f in frames if f.startswith("decide_one ")]
            if inside:
                lines[_short(inside[-1], keep_line=True)] += n
    cpu = sum(cats.values()) or 1
    everything = cpu + sum(waits.values())

    def ms(v: int) -> float:
        return round(server_ms * v / cpu, 3)

    return {
        "cpu_samples": cpu,
        "wait_samples": everything - cpu,
        "server_cpu_ms_per_200": server_ms,
        "categories": {
            k: {
                "share": round(v / cpu, 4),
                "cpu_ms_per_200": ms(v),
                "top_leaves": {f: ms(c) for f, c in leaves[k].most_common(5)},
            }
            for k, v in cats.most_common()
        },
        "decide_one_statements": {f: ms(c) for f, c in lines.most_common(12)},
        "waits_share_of_all_samples": {k: round(v / everything, 4) for k, v in waits.most_common(10)},
    }


class Spies:
    """py-spy recording each worker (non-blocking, 250 Hz, active threads only) for ``seconds``."""

    def __init__(self, py_spy: str, pids: list[int], seconds: float) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench_http_profile_"))
        self.procs = []
        for pid in pids:
            out = self.folder / f"{pid}.txt"
            cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                   "--nonblocking", "--format", "raw", "--output", str(out)]  # fmt: skip
            self.procs.append(
                (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
            )

    def collect(self) -> list[str]:
        """The collapsed stacks of each worker (the uvicorn parent's resource tracker has none)."""
        for proc, _ in self.procs:
            proc.wait(timeout=120)
        return [out.read_text() for _, out in self.procs if out.exists()]
