"""A worker's durable local spool: what it answered while PostgreSQL was unreachable (decisions,
feedback batches), written to disk before the answer and replayed into the database exactly once.

Storage: one SQLite file per worker process in WAL mode with ``synchronous=FULL`` -- each entry
is one transaction whose commit fsyncs the write-ahead log, so an entry acknowledged to a client
survives kill -9 and a power cut. SQLite rather than a hand-written fsync'd log: appends and the
removal of replayed entries are atomic transactions (a torn last record, a half-written delete
marker or a compaction step cannot occur), and it is in the standard library. Its cost (one fsync
per entry, about a millisecond) is paid only while the database is down.

Ownership: the worker holds an exclusive ``flock`` on ``<file>.lock`` for its life. The kernel
drops it when the process dies, however it dies: a replayer (every worker's background thread)
replays its own file and every file whose lock it can take -- a dead worker's -- and removes a
foreign file once empty. Entries are deleted only after the database transaction that stored
them committed; a crash in between replays them again, which stores nothing twice: decisions are
inserted with ``on conflict do nothing`` (decision_id, idempotency key) and feedback goes through
:func:`pipelines.realtime.feedback.record_events`, idempotent by event_id.

Order: decisions of every replayable file first, then feedback, so an event finds a decision
spooled beside it. An event whose decision is still unknown (spooled by a live worker that has not
replayed yet) is kept and retried for ``UNKNOWN_RETRY_SECONDS``, then dropped with a warning -- the
answer the database would have given it (unknown decision) had it been up.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.realtime.decision_log import INSERT_DECISION_SQL
from pipelines.realtime.feedback import UNKNOWN_DECISION, record_events

log = logging.getLogger(__name__)

DECISION, FEEDBACK = "decision", "feedback"
SUFFIX = ".spool.sqlite"
BATCH = 500  # entries per database transaction on replay
UNKNOWN_RETRY_SECONDS = 3600.0

_SCHEMA = """
create table if not exists entries (
    id integer primary key autoincrement,
    kind text not null check (kind in ('decision', 'feedback')),
    payload text not null,   -- JSON: decision parameters, or {"events": [...]}
    spooled_at text not null -- ISO time the worker answered (feedback's receive time on replay)
)
"""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot spool a {type(value).__name__}")


def _decision_from_json(payload: dict[str, Any]) -> dict[str, Any]:
    # A decision spooled before migration 0013 has no runner-up: null.
    return (
        {"runner_up_arm_id": None, "runner_up_propensity": None}
        | payload
        | {
            "day": date.fromisoformat(payload["day"]),
            "decided_at": datetime.fromisoformat(payload["decided_at"]),
        }
    )


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    mode = "rwc" if create else "rw"  # a foreign file is never created (it may have been replayed)
    db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    db.execute(_SCHEMA)
    return db


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # the new file names themselves survive a power cut
    finally:
        os.close(fd)


def _try_lock(lock_path: Path, create: bool = False) -> int | None:
    """An fd holding the exclusive flock of ``lock_path``, or None (held by a live worker, or gone)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked, but a replayer may have removed this name meanwhile: the lock must be the file's.
        if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:
            raise FileNotFoundError(lock_path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


class Spool:
    """This worker's spool file (created on first use of the folder, removed at close when empty)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        fd = _try_lock(self.lock_path, create=True)
        if fd is None:  # pragma: no cover - the name is new
            raise RuntimeError(f"cannot lock {self.lock_path}")
        self._lock_fd = fd
        self._db = _connect(self.path, create=True)
        _fsync_dir(folder)
        self._mutex = threading.Lock()  # one writer on the connection: requests and the replayer
        self.pending: Counter[str] = Counter()  # entries in this file, by kind (no I/O for /readyz)

    def add(self, kind: str, payload: dict[str, Any], at: datetime) -> None:
        """Store one entry durably (fsync'd) before returning."""
        text = json.dumps(payload, default=_encode, separators=(",", ":"))
        with self._mutex:
            self._db.execute(
                "insert into entries (kind, payload, spooled_at) values (?, ?, ?)",
                (kind, text, at.isoformat()),
            )
            self.pending[kind] += 1

    def replay(self, engine: sa.Engine, now: datetime) -> Counter[str]:
        """Replay this file and every dead worker's file; counts of what was replayed, by kind.

        A database failure raises (the entries not yet committed stay for the next attempt)."""
        done: Counter[str] = Counter()
        with self._foreign_files() as files:
            sources = [(self._db, self._mutex, self.pending), *((db, threading.Lock(), None) for db in files)]
            for kind in (DECISION, FEEDBACK):
                for db, mutex, pending in sources:
                    n = _replay(db, mutex, kind, engine, now)
                    done[kind] += n
                    if pending is not None:
                        with mutex:
                            pending[kind] = max(0, pending[kind] - n)
        return done

    def has_work(self) -> bool:
        """Whether anything is spooled here or a file of another worker exists (cheap: no locks)."""
        if sum(self.pending.values()):
            return True
        return any(p != self.path for p in self.folder.glob("*" + SUFFIX))

    def foreign_files(self) -> int:
        return sum(1 for p in self.folder.glob("*" + SUFFIX) if p != self.path)

    @contextmanager
    def _foreign_files(self) -> Iterator[list[sqlite3.Connection]]:
        """Open the spool files of dead workers (their lock is free) while holding their locks;
        afterwards remove those left empty."""
        held: list[tuple[Path, int, sqlite3.Connection | None]] = []
        try:
            for lock_path in sorted(self.folder.glob("*" + SUFFIX + ".lock")):
                if lock_path == self.lock_path:
                    continue
                fd = _try_lock(lock_path)
                if fd is None:
                    continue
                path = lock_path.with_name(lock_path.name.removesuffix(".lock"))
                try:
                    db = _connect(path, create=False)
                except sqlite3.OperationalError:  # died before creating it, or already removed
                    db = None
                held.append((path, fd, db))
            yield [db for _, _, db in held if db is not None]
        finally:
            for path, fd, db in held:
                empty = db is None or db.execute("select count(*) from entries").fetchone()[0] == 0
                if db is not None:
                    db.close()
                if empty:
                    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                        name.unlink(missing_ok=True)
                    path.with_name(path.name + ".lock").unlink(missing_ok=True)
                    log.info("replayed and removed the spool of a dead worker: %s", path.name)
                os.close(fd)

    def close(self) -> None:
        """Release the file: removed when empty, else left for the next replayer."""
        with self._mutex:
            empty = self._db.execute("select count(*) from entries").fetchone()[0] == 0
            self._db.close()
        if empty:
            for name in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"), self.lock_path):
                name.unlink(missing_ok=True)
        else:
            log.warning(
                "%s keeps %d spooled entries for the next replayer",
                self.path.name,
                sum(self.pending.values()),
            )
        os.close(self._lock_fd)


def _replay(
    db: sqlite3.Connection, mutex: threading.Lock, kind: str, engine: sa.Engine, now: datetime
) -> int:
    """Replay the entries of ``kind`` of one file in batches; how many were stored and removed."""
    done, last = 0, 0
    while True:
        with mutex:
            rows = db.execute(
                "select id, payload, spooled_at from entries where kind = ? and id > ? order by id limit ?",
                (kind, last, BATCH),
            ).fetchall()
        if not rows:
            return done
        last = rows[-1][0]
        if kind == DECISION:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(INSERT_DECISION_SQL), [_decision_from_json(json.loads(p)) for _, p, _ in rows]
                )
            with mutex:
                db.executemany("delete from entries where id = ?", [(i,) for i, _, _ in rows])
            done += len(rows)
            continue
        for entry_id, payload, spooled_at in rows:
            events = json.loads(payload)["events"]
            received = datetime.fromisoformat(spooled_at)
            results = record_events(engine, events, now=received)
            unknown = {r.event_id for r in results if r.status == UNKNOWN_DECISION}
            kept = [e for e in events if e["event_id"] in unknown]
            for r in results:
                if not r.ok and r.status != UNKNOWN_DECISION:
                    log.warning("spooled event %s not stored on replay: %s", r.event_id, r.status)
            with mutex:
                if kept and now - received < timedelta(seconds=UNKNOWN_RETRY_SECONDS):
                    db.execute(
                        "update entries set payload = ? where id = ?",
                        (json.dumps({"events": kept}), entry_id),
                    )
                else:
                    if kept:
                        log.warning(
                            "dropping %d spooled events of unknown decisions after retries", len(kept)
                        )
                    db.execute("delete from entries where id = ?", (entry_id,))
                    done += 1
