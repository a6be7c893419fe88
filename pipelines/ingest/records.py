"""What ingestion writes about itself: quarantined rows, the file ledger and the day's alert.

- ``ops.quarantine``: one row per bad row, with the file, line, the row's text and a reason. Rows
  of an earlier version of the same path (another checksum) are kept but marked
  ``superseded_by`` the version that replaced them.
- ``ops.ingested_files``: one row per file version tried (checksum, path), loaded or rejected, with
  rows_read = rows_loaded + rows_skipped (duplicates) + rows_quarantined for a loaded file.
- ``ops.alerts``: one ``ingest_rejected`` alert per logical date naming the rejected files.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date

import pandas as pd
import sqlalchemy as sa

from pipelines.db import frame_csv

MAX_ROW_TEXT = 2000  # characters of a bad row kept in ops.quarantine
ALERT_KIND = "ingest_rejected"


def start_version(conn: sa.Connection, source_file: str, digest: str) -> None:
    """A new version of ``source_file`` supersedes the quarantine of the earlier ones; the same
    version tried again replaces its own rows (a re-run is idempotent)."""
    conn.execute(
        sa.text(
            """update ops.quarantine set superseded_by = :c
               where source_file = :f and checksum is distinct from :c and superseded_by is null"""
        ),
        {"f": source_file, "c": digest},
    )
    conn.execute(
        sa.text("delete from ops.quarantine where source_file = :f and checksum = :c"),
        {"f": source_file, "c": digest},
    )


class QuarantineSpool:
    """A file's bad rows, spooled to a temporary file while its good rows stream into the staging
    table (the connection is busy with that COPY), then copied into ops.quarantine in one go.
    Memory stays bounded however many rows are bad."""

    def __init__(self, logical_date: date, source_file: str, digest: str) -> None:
        self._meta = {
            "logical_date": logical_date.isoformat(),
            "source_file": source_file,
            "checksum": digest,
        }
        self._file = tempfile.TemporaryFile()
        self.count = 0

    def add(self, bad: pd.DataFrame) -> None:
        """Bad rows with columns line_no, row (the row's text) and reason."""
        if bad.empty:
            return
        frame = pd.DataFrame(
            {
                **self._meta,
                "line_no": bad["line_no"].astype("int64").to_numpy(),
                "row": _storable(bad["row"]).str.slice(0, MAX_ROW_TEXT).to_numpy(),
                "reason": _storable(bad["reason"]).to_numpy(),
            }
        )
        self._file.write(frame_csv(frame))
        self.count += len(frame)

    def flush(self, conn: sa.Connection) -> int:
        """COPY the spooled rows into ops.quarantine; returns how many."""
        with self._file:
            if self.count:
                self._file.seek(0)
                raw = conn.connection.driver_connection
                sql = f"COPY ops.quarantine ({', '.join(SPOOL_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
                with raw.cursor() as cur, cur.copy(sql) as copy:
                    while block := self._file.read(1 << 20):
                        copy.write(block)
        return self.count


SPOOL_COLUMNS = ("logical_date", "source_file", "checksum", "line_no", "row", "reason")


def _storable(values: pd.Series) -> pd.Series:
    """Text PostgreSQL can store: a NUL byte is shown as \\x00 (text columns cannot hold it)."""
    return values.astype("str").str.replace("\x00", "\\x00", regex=False)


def record_file(
    conn: sa.Connection,
    *,
    digest: str,
    source_file: str,
    kind: str,
    logical_date: date,
    status: str,
    rows: int = 0,
    loaded: int = 0,
    duplicates: int = 0,
    quarantined: int = 0,
    reason: str | None = None,
) -> None:
    conn.execute(
        sa.text(
            """insert into ops.ingested_files (checksum, path, kind, logical_date, rows_read, rows_loaded,
                   rows_skipped, rows_quarantined, status, reason)
               values (:c, :p, :k, :d, :r, :l, :s, :q, :st, :why)
               on conflict (checksum, path) do update set kind = excluded.kind,
                   logical_date = excluded.logical_date, rows_read = excluded.rows_read,
                   rows_loaded = excluded.rows_loaded, rows_skipped = excluded.rows_skipped,
                   rows_quarantined = excluded.rows_quarantined, status = excluded.status,
                   reason = excluded.reason, loaded_at = now()"""
        ),
        {
            "c": digest,
            "p": source_file,
            "k": kind,
            "d": logical_date,
            "r": rows,
            "l": loaded,
            "s": duplicates,
            "q": quarantined,
            "st": status,
            "why": reason,
        },
    )


def already_loaded(conn: sa.Connection, digest: str) -> bool:
    """The same content was loaded before (under any name): loading it again would add nothing."""
    return bool(
        conn.execute(
            sa.text("select 1 from ops.ingested_files where checksum = :c and status = 'loaded' limit 1"),
            {"c": digest},
        ).scalar()
    )


def replace_day_alert(conn: sa.Connection, logical_date: date, rejected: list[tuple[str, str]]) -> None:
    """One critical alert for D naming every rejected file and why; none when all files loaded."""
    conn.execute(
        sa.text("delete from ops.alerts where alert_date = :d and campaign_id is null and kind = :k"),
        {"d": logical_date, "k": ALERT_KIND},
    )
    if not rejected:
        return
    listed = "; ".join(f"{path}: {why}" for path, why in rejected)
    conn.execute(
        sa.text(
            """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
               values (:d, null, :k, 'critical', :m, cast(:details as jsonb))"""
        ),
        {
            "d": logical_date,
            "k": ALERT_KIND,
            "m": f"{len(rejected)} inbox file(s) of {logical_date} rejected, the others loaded: {listed}",
            "details": json.dumps({"files": [{"path": p, "reason": r} for p, r in rejected]}),
        },
    )
