"""Land one inbox file in `raw`: read it in chunks, COPY the good rows into a staging table,
check them against the database, insert the new ones, quarantine the rest.

A file is one transaction: a crash (or a file found unreadable halfway) leaves nothing of it
loaded. A file already loaded (same checksum) is skipped. For the others, every row read ends
in exactly one of: loaded, duplicate (same key and same content as a row already landed, or
as another line of the same file), quarantined (a bad value, an unknown decision, or the
same key with other content: a conflict, naming the file that landed the first one).
When the share of bad rows (bad values and unknown decisions, found before inserting) passes
the threshold, none of the file's rows are loaded: the file is recorded as rejected with its
bad rows, and is tried again on the next run. Conflicts, found while inserting, are quarantined
and counted but do not reject the file: none of them landed, and the other rows stand alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import sqlalchemy as sa

from pipelines.db import CopyStream, frame_csv
from pipelines.ingest import records
from pipelines.ingest.readers import FileRejected, open_file
from pipelines.ingest.schemas import FileKind, Parsed


@dataclass(frozen=True)
class FileResult:
    source_file: str
    kind: str
    status: str  # loaded | rejected | skipped (already loaded)
    rows: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reason: str | None = None  # why a file was rejected
    note: str | None = None  # something a person should know about a loaded file

    @property
    def bad_share(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_file(
    engine: sa.Engine, path: Path, source_file: str, kind: FileKind, logical_date: date, max_bad_share: float
) -> FileResult:
    digest = checksum(path)
    with engine.connect() as conn:
        if records.already_loaded(conn, digest):
            return FileResult(source_file, kind.name, "skipped")
    try:
        with engine.begin() as conn:
            return _load(conn, path, source_file, kind, logical_date, max_bad_share, digest)
    except FileRejected as exc:
        reason = str(exc)
    except (sa.exc.DataError, sa.exc.IntegrityError, psycopg.DataError, psycopg.IntegrityError) as exc:
        # A value the checks let through and PostgreSQL refused: that file alone is rejected.
        orig = getattr(exc, "orig", None) or exc
        reason = "PostgreSQL refused a value of the file: " + str(orig).strip().splitlines()[0]
    return reject_file(engine, digest, source_file, kind.name, logical_date, reason)


def reject_file(
    engine: sa.Engine, digest: str, source_file: str, kind: str, logical_date: date, reason: str
) -> FileResult:
    """Record a file that cannot be loaded at all (empty, corrupt, wrong schema, unknown kind)."""
    with engine.begin() as conn:
        records.start_version(conn, source_file, digest)
        records.record_file(
            conn,
            digest=digest,
            source_file=source_file,
            kind=kind,
            logical_date=logical_date,
            status="rejected",
            reason=reason,
        )
    return FileResult(source_file, kind, "rejected", reason=reason)


def _load(
    conn: sa.Connection,
    path: Path,
    source_file: str,
    kind: FileKind,
    logical_date: date,
    max_bad_share: float,
    digest: str,
) -> FileResult:
    # Two runs of the same day: the second waits for the first's file, then skips it.
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtextextended(:c, 0))"), {"c": digest})
    if records.already_loaded(conn, digest):
        return FileResult(source_file, kind.name, "skipped")
    conn.execute(sa.text("set local timezone = 'UTC'"))  # timestamps in quarantine texts, as in files
    conn.execute(sa.text("set local work_mem = '64MB'"))
    records.start_version(conn, source_file, digest)
    opened = open_file(path, kind.columns, kind.required)
    _create_stage(conn, kind)
    columns = _stage_columns(conn)
    spool = records.QuarantineSpool(logical_date, source_file, digest)
    rows = staged = 0
    # Chunk k + 1 is read and checked here while PostgreSQL ingests chunk k in the stream.
    with CopyStream(conn, "_stage", columns) as stream:
        for chunk in opened.chunks:
            parsed: Parsed = kind.parse(chunk.frame, logical_date)  # type: ignore[operator]
            rows += chunk.n_rows
            spool.add(parsed.bad)
            spool.add(pd.DataFrame(chunk.unreadable, columns=["line_no", "row", "reason"]))
            if len(parsed.good):
                stream.write(frame_csv(parsed.good[columns]))
                staged += len(parsed.good)
    bad = spool.flush(conn)
    if kind.name == "interactions":
        unmatched = _quarantine_unmatched_events(conn, logical_date, source_file, digest)
        bad, staged = bad + unmatched, staged - unmatched
    share = bad / rows if rows else 0.0
    note = _note(kind, opened.missing)
    if share > max_bad_share:
        reason = (
            f"{bad} of {rows} rows bad ({share:.1%} > {max_bad_share:.1%}): none of its rows were loaded, "
            "see ops.quarantine"
        )
        records.record_file(
            conn,
            digest=digest,
            source_file=source_file,
            kind=kind.name,
            logical_date=logical_date,
            status="rejected",
            rows=rows,
            quarantined=bad,
            reason=reason,
        )
        return FileResult(source_file, kind.name, "rejected", rows, 0, 0, bad, reason=reason, note=note)
    loaded = _insert_new(conn, kind, logical_date, source_file) if staged else 0
    duplicates = conflicts = 0
    if loaded < staged:
        duplicates, conflicts = _classify_not_inserted(conn, kind, logical_date, source_file, digest)
        bad += conflicts
    assert loaded + duplicates + conflicts == staged, (loaded, duplicates, conflicts, staged)
    records.record_file(
        conn,
        digest=digest,
        source_file=source_file,
        kind=kind.name,
        logical_date=logical_date,
        status="loaded",
        rows=rows,
        loaded=loaded,
        duplicates=duplicates,
        quarantined=bad,
    )
    return FileResult(source_file, kind.name, "loaded", rows, loaded, duplicates, bad, note=note)


def _note(kind: FileKind, missing: tuple[str, ...]) -> str | None:
    if not missing:
        return None
    return f"no {', '.join(missing)} column: stored as NULL for every row"


def _create_stage(conn: sa.Connection, kind: FileKind) -> None:
    conn.execute(
        sa.text(
            f"create temp table _stage (like {kind.table} including defaults, line_no integer) on commit drop"
        )
    )
    # Landing columns no file carries (the file and day; for events the real-time source and window
    # mark, migration 0005, whose defaults say 'from a file'): not staged.
    for column in ("source_file", "logical_date", "source", "outside_window"):
        conn.execute(sa.text(f"alter table _stage drop column if exists {column}"))


def _stage_columns(conn: sa.Connection) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "select attname from pg_attribute where attrelid = '_stage'::regclass "
                "and attnum > 0 and not attisdropped order by attnum"
            )
        ).scalars()
    )


def _row_text(columns: list[str], alias: str = "s") -> str:
    """SQL for a staged row as the comma-separated text a person reads in ops.quarantine."""
    parts = ", ".join(f"coalesce({alias}.{c}::text, '')" for c in columns)
    return f"left(concat_ws(',', {parts}), {records.MAX_ROW_TEXT})"


def _quarantine_unmatched_events(
    conn: sa.Connection, logical_date: date, source_file: str, digest: str
) -> int:
    """Events must belong to a logged decision, with the same customer, campaign and arm."""
    cols = [c for c in _stage_columns(conn) if c != "line_no"]
    result = conn.execute(
        sa.text(
            f"""with gone as (
                    delete from _stage s
                    where not exists (
                        select 1 from ops.decisions d
                        where d.decision_id = s.decision_id and d.customer_id = s.customer_id
                          and d.campaign_id = s.campaign_id and d.arm_id = s.arm_id)
                    returning s.*)
                insert into ops.quarantine (logical_date, source_file, checksum, line_no, row, reason)
                select :d, :f, :c, s.line_no, {_row_text(cols)},
                    case when not exists (select 1 from ops.decisions d where d.decision_id = s.decision_id)
                         then 'unknown decision_id ' || s.decision_id
                         else 'customer, campaign or arm does not match decision ' || s.decision_id
                    end
                from gone s"""
        ),
        {"d": logical_date, "f": source_file, "c": digest},
    )
    return int(result.rowcount)


def _insert_new(conn: sa.Connection, kind: FileKind, logical_date: date, source_file: str) -> int:
    """Insert staged rows whose key is new; returns how many were inserted.

    A new file usually holds new keys only: a plain INSERT (in a savepoint) is then enough, and
    ~1.7x faster than INSERT ... ON CONFLICT, whose speculative insertion costs an extra probe and
    WAL record per row (BENCHMARKS.md, ingest). When a key is already there (a re-sent file, a
    line repeated in the file), the savepoint is rolled back and ON CONFLICT DO NOTHING inserts
    the new ones; a sample of the keys is checked first so that a re-sent file goes there at once.
    Of two lines with the same key, one lands (in practice the first; which one is found after,
    by content, in :func:`_classify_not_inserted`). No sort: it costs more than it saves.
    """
    cols = ", ".join(c for c in _stage_columns(conn) if c != "line_no")
    # The landing columns the file does not carry: where it came from, and for events the day.
    extra_cols, extra_values = ", source_file", ", :f"
    if kind.table == "raw.interactions":
        extra_cols, extra_values = ", logical_date, source_file", ", :d, :f"
    key = ", ".join(kind.key)
    on = " and ".join(f"r.{k} = s.{k}" for k in kind.key)
    insert = f"insert into {kind.table} ({cols}{extra_cols}) select {cols}{extra_values} from _stage"
    params = {"d": logical_date, "f": source_file}
    seen_before = conn.execute(
        sa.text(
            f"""select exists (select 1 from (select {key} from _stage limit {_SAMPLE}) s
                               join {kind.table} r on {on})"""
        )
    ).scalar()
    if not seen_before:
        conn.execute(sa.text("savepoint plain_insert"))
        try:
            inserted = int(conn.execute(sa.text(insert), params).rowcount)
        except sa.exc.IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            # Released too: the rows inserted next belong to the transaction itself (its xmin).
            conn.execute(sa.text("rollback to savepoint plain_insert"))
            conn.execute(sa.text("release savepoint plain_insert"))
        else:
            conn.execute(sa.text("release savepoint plain_insert"))
            return inserted
    return int(conn.execute(sa.text(f"{insert} on conflict ({key}) do nothing"), params).rowcount)


_SAMPLE = 1000  # staged keys looked up before choosing the plain INSERT
_UNIQUE_VIOLATION = "23505"


def _classify_not_inserted(
    conn: sa.Connection, kind: FileKind, logical_date: date, source_file: str, digest: str
) -> tuple[int, int]:
    """Staged rows that were not inserted: (duplicates, conflicts quarantined).

    Each staged row is compared with the landed row of its key. Landed by this transaction
    (xmin): one of the staged rows equal to it is the one that landed, the other equal ones
    are duplicates within the file. Landed before: equal rows are duplicates. Rows with other
    content are conflicts, quarantined with the differing fields and where the landed row is.
    """
    cols = [c for c in _stage_columns(conn) if c != "line_no"]
    content = [c for c in cols if c not in kind.key]
    on = " and ".join(f"r.{k} = s.{k}" for k in kind.key)
    key = ", ".join(kind.key)
    diff = ", ".join(
        f"case when s.{c} is distinct from r.{c} then '{c} ' || coalesce(r.{c}::text, 'null') || ' there, '"
        f" || coalesce(s.{c}::text, 'null') || ' here' end"
        for c in content
    )
    key_text = " || ', ' || ".join(f"'{k} ' || s.{k}::text" for k in kind.key if k != "snapshot_date")
    conn.execute(
        sa.text(
            f"""create temp table _not_inserted on commit drop as
                with compared as (
                    select s.line_no, {", ".join(f"s.{k}" for k in kind.key)}, {_row_text(cols)} as row,
                           {key_text} as key_text, r.source_file as landed_file,
                           r.xmin = pg_current_xact_id()::xid as ours, concat_ws(', ', {diff}) as diff
                    from _stage s join {kind.table} r on {on}),
                ranked as (
                    select *, row_number() over (partition by {key}, diff = '' order by line_no) as nth,
                           min(line_no) filter (where diff = '') over (partition by {key}) as landed_line
                    from compared)
                select * from ranked where not (ours and diff = '' and nth = 1)"""
        )
    )
    conn.execute(
        sa.text(
            """insert into ops.quarantine (logical_date, source_file, checksum, line_no, row, reason)
               select :d, :f, :c, line_no, row,
                   case when ours
                        then key_text || ' appears at line ' || landed_line
                             || ' of this file with other content: ' || diff
                        else key_text || ' was already loaded from ' || landed_file
                             || ' with other content: ' || diff
                   end
               from _not_inserted where diff <> ''"""
        ),
        {"d": logical_date, "f": source_file, "c": digest},
    )
    duplicates, conflicts = conn.execute(
        sa.text(
            "select count(*) filter (where diff = ''), count(*) filter (where diff <> '') from _not_inserted"
        )
    ).one()
    return int(duplicates), int(conflicts)
