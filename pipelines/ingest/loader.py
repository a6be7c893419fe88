"""Land one inbox file in `raw`: COPY into a staging table, check, insert, quarantine.

A file is one transaction. A file already loaded (same checksum) is skipped; a row
already loaded (same key) is skipped; a bad row goes to `ops.quarantine` with its
line and reason. When a file's bad share passes the threshold, none of its rows
are loaded, the file is recorded as rejected, and it is tried again on the next run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.db import copy_frame
from pipelines.ingest.readers import read_file
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
        status = conn.execute(
            sa.text("select status from ops.ingested_files where checksum = :c"), {"c": digest}
        ).scalar()
    if status == "loaded":
        return FileResult(source_file, kind.name, "skipped")

    raw = read_file(path, kind.columns)
    parsed: Parsed = kind.parse(raw.frame, logical_date)  # type: ignore[operator]
    bad = pd.concat(
        [parsed.bad, pd.DataFrame(raw.unreadable, columns=["line_no", "row", "reason"])], ignore_index=True
    )
    with engine.begin() as conn:
        staged = _stage(conn, kind, parsed.good)
        if kind.name == "interactions":
            bad = pd.concat([bad, _reject_unmatched_events(conn)], ignore_index=True)
        share = len(bad) / raw.n_rows if raw.n_rows else 0.0
        if share > max_bad_share:
            # Nothing of this file lands; its bad rows are kept so a person can see why.
            conn.execute(sa.text("truncate _stage"))
            loaded = 0
        else:
            loaded = _insert_new(conn, kind, logical_date, source_file)
        _quarantine(conn, bad, source_file, logical_date)
        result_status = "rejected" if share > max_bad_share else "loaded"
        conn.execute(
            sa.text(
                """insert into ops.ingested_files (checksum, path, kind, logical_date, rows_loaded,
                       rows_skipped, rows_quarantined, status)
                   values (:c, :p, :k, :d, :l, :s, :q, :st)
                   on conflict (checksum) do update set rows_loaded = excluded.rows_loaded,
                       rows_skipped = excluded.rows_skipped, rows_quarantined = excluded.rows_quarantined,
                       status = excluded.status, loaded_at = now()"""
            ),
            {
                "c": digest,
                "p": source_file,
                "k": kind.name,
                "d": logical_date,
                "l": loaded,
                "s": staged - loaded if result_status == "loaded" else 0,
                "q": len(bad),
                "st": result_status,
            },
        )
    duplicates = staged - loaded - _count_unmatched(bad) if result_status == "loaded" else 0
    return FileResult(source_file, kind.name, result_status, raw.n_rows, loaded, max(duplicates, 0), len(bad))


def _stage(conn: sa.Connection, kind: FileKind, good: pd.DataFrame) -> int:
    conn.execute(
        sa.text(
            f"create temp table _stage (like {kind.table} including defaults, line_no integer) on commit drop"
        )
    )
    conn.execute(sa.text("alter table _stage drop column if exists source_file"))
    conn.execute(sa.text("alter table _stage drop column if exists logical_date"))
    if len(good):
        copy_frame(conn, "_stage", _timestamps_as_text(good))
    return len(good)


def _timestamps_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Timezone-aware columns as ISO 8601 UTC text ('...Z'), NaT as null: the same instants for
    COPY, but formatted by numpy in bulk, where pandas' CSV writer takes ~10 s per million."""
    columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if not columns:
        return frame
    frame = frame.copy(deep=False)
    for col in columns:
        naive = frame[col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        text = np.datetime_as_string(naive, timezone="UTC").astype(object)
        text[np.isnat(naive)] = None
        frame[col] = text
    return frame


def _reject_unmatched_events(conn: sa.Connection) -> pd.DataFrame:
    """Events must belong to a logged decision, with the same customer, campaign and arm."""
    rows = conn.execute(
        sa.text(
            """delete from _stage s
               where not exists (
                   select 1 from ops.decisions d
                   where d.decision_id = s.decision_id and d.customer_id = s.customer_id
                     and d.campaign_id = s.campaign_id and d.arm_id = s.arm_id)
               returning s.line_no, concat_ws(',', s.event_id, s.decision_id, s.customer_id,
                   s.campaign_id, s.arm_id, s.event_type, s.value, s.occurred_at) as row,
                   case when not exists (select 1 from ops.decisions d where d.decision_id = s.decision_id)
                        then 'unknown decision_id ' || s.decision_id
                        else 'customer, campaign or arm does not match decision ' || s.decision_id
                   end as reason"""
        )
    ).all()
    return pd.DataFrame(rows, columns=["line_no", "row", "reason"]).assign(_unmatched=True)


def _count_unmatched(bad: pd.DataFrame) -> int:
    return int(bad["_unmatched"].fillna(False).sum()) if "_unmatched" in bad else 0


def _insert_new(conn: sa.Connection, kind: FileKind, logical_date: date, source_file: str) -> int:
    """Insert staged rows whose key is new; returns how many were inserted."""
    cols = ", ".join(c for c in _stage_columns(conn) if c != "line_no")
    # The landing columns the file does not carry: where it came from, and for events the day.
    extra_cols, extra_values = ", source_file", ", :f"
    if kind.table == "raw.interactions":
        extra_cols, extra_values = ", logical_date, source_file", ", :d, :f"
    result = conn.execute(
        sa.text(
            f"""insert into {kind.table} ({cols}{extra_cols})
                select {cols}{extra_values} from _stage order by line_no
                on conflict ({", ".join(kind.key)}) do nothing"""
        ),
        {"d": logical_date, "f": source_file},
    )
    return int(result.rowcount)


def _stage_columns(conn: sa.Connection) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "select attname from pg_attribute where attrelid = '_stage'::regclass "
                "and attnum > 0 and not attisdropped order by attnum"
            )
        ).scalars()
    )


def _quarantine(conn: sa.Connection, bad: pd.DataFrame, source_file: str, logical_date: date) -> None:
    if bad.empty:
        return
    conn.execute(
        sa.text(
            """insert into ops.quarantine (logical_date, source_file, line_no, row, reason)
               values (:d, :f, :l, :r, :why)
               on conflict (source_file, line_no) do update set row = excluded.row,
                   reason = excluded.reason, logical_date = excluded.logical_date"""
        ),
        [
            {
                "d": logical_date,
                "f": source_file,
                "l": int(r.line_no),
                "r": str(r.row)[:2000],
                "why": r.reason,
            }
            for r in bad.itertuples()
        ],
    )
