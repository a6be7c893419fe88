"""Read an inbox file (CSV, JSONL, Parquet) in chunks of string columns, keeping line numbers.

Every value is read as text: parsing types is the schema's job, so that a bad value
quarantines one row instead of failing the whole file. Files are read in chunks of about
``CHUNK_ROWS`` rows, so memory stays bounded whatever the file's size.

A problem with the whole file (empty, not Parquet, a required column missing, a column of
nested values) raises :class:`FileRejected` with one reason. Line numbers: CSV and JSONL
count physical lines (the CSV header is line 1); Parquet counts rows from 1.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

SUFFIXES = (".csv", ".jsonl", ".parquet")
CHUNK_ROWS = 250_000
CSV_BLOCK_BYTES = 4 << 20  # ~50,000 event rows per block; Arrow reads ~8 blocks ahead


class FileRejected(Exception):
    """The whole file cannot be read; the message is the one reason, for people."""


@dataclass
class Chunk:
    """Rows of one chunk as strings: ``frame`` has the expected columns (a missing value is "")
    plus ``line_no``; ``unreadable`` holds (line_no, text, reason) of rows that could not be split."""

    frame: pd.DataFrame
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.frame) + len(self.unreadable)


@dataclass
class InboxFile:
    """An opened file: ``present`` are the expected columns it has (JSONL: grows while reading)."""

    path: Path
    columns: tuple[str, ...]
    present: set[str]
    chunks: Iterator[Chunk]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.present)


def open_file(path: Path, columns: tuple[str, ...], required: tuple[str, ...]) -> InboxFile:
    """Open ``path`` by its suffix; raises :class:`FileRejected` for a file that cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FileRejected(f"unsupported file type {suffix!r}; expected one of {', '.join(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty (0 bytes)")
    if suffix == ".csv":
        opened = _open_csv(path, columns)
    elif suffix == ".parquet":
        opened = _open_parquet(path, columns)
    else:
        present: set[str] = set()  # filled while reading: a JSON line may leave any key out
        return InboxFile(path, columns, present, _jsonl_chunks(path, columns, present))
    missing = [c for c in required if c not in opened.present]
    if missing:
        raise FileRejected(
            f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing "
            f"(expected {', '.join(columns)})"
        )
    return opened


# -- CSV ------------------------------------------------------------------------------------
def _open_csv(path: Path, columns: tuple[str, ...]) -> InboxFile:
    import pyarrow.csv as pacsv

    with path.open("rb") as fh:
        first = fh.readline()
    try:
        header_text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected("the header line is not valid UTF-8") from None
    header = next(csv.reader(io.StringIO(header_text)), [])
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise FileRejected(f"column {', '.join(repeated)} appears more than once in the header")
    present = [c for c in columns if c in header]
    unreadable: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        unreadable.append((int(row.number or 0), row.text, reason))
        return "skip"

    try:
        reader = pacsv.open_csv(
            # A plain file stream: given a path, Arrow may map the file, and its pages then
            # count in the process' memory (RSS grew with the file's size).
            pa.OSFile(str(path)),
            # One thread keeps the numbers of rejected rows known (the handler sees them in order).
            read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            # Bytes, not strings: a value that is not UTF-8 quarantines its row, not the file.
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.binary() for c in header},
                include_columns=present,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise FileRejected(f"not a readable CSV file: {_first_line(exc)}") from None
    return InboxFile(path, columns, set(present), _csv_chunks(reader, columns, unreadable))


def _csv_chunks(reader, columns: tuple[str, ...], unreadable: list) -> Iterator[Chunk]:  # type: ignore[no-untyped-def]
    next_line = 2  # line 1 is the header
    taken = 0  # entries of ``unreadable`` already handed out
    pending = np.array([], dtype=np.int64)  # lines of rejected rows not passed yet
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise FileRejected(f"not a readable CSV file: {_first_line(exc)}") from None
        new_bad = unreadable[taken:]
        taken = len(unreadable)
        # The parser reads a block ahead: a row it rejects may lie after this batch's rows.
        pending = np.union1d(pending, np.array([n for n, _, _ in new_bad], dtype=np.int64))
        candidates = np.arange(next_line, next_line + batch.num_rows + len(pending), dtype=np.int64)
        lines = candidates[~np.isin(candidates, pending)][: batch.num_rows]
        if len(lines):
            next_line = int(lines[-1]) + 1
            pending = pending[pending > lines[-1]]
        yield _as_chunk(batch, columns, lines, list(new_bad))
    rest = unreadable[taken:]
    if rest:
        yield Chunk(_empty_frame(columns), list(rest))


# -- Parquet --------------------------------------------------------------------------------
def _open_parquet(path: Path, columns: tuple[str, ...]) -> InboxFile:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise FileRejected(f"not a readable Parquet file: {_first_line(exc)}") from None
    present = [c for c in columns if c in schema.names]
    for name in present:
        kind = schema.field(name).type
        if pa.types.is_nested(kind):
            raise FileRejected(f"column {name} holds {kind} values; expected one value per row")
    return InboxFile(path, columns, set(present), _parquet_chunks(parquet, columns, present))


def _parquet_chunks(parquet, columns: tuple[str, ...], present: list[str]) -> Iterator[Chunk]:  # type: ignore[no-untyped-def]
    first = 1
    batches = parquet.iter_batches(batch_size=CHUNK_ROWS, columns=present) if present else iter(())
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowException, OSError) as exc:
            raise FileRejected(f"not a readable Parquet file: {_first_line(exc)}") from None
        lines = np.arange(first, first + batch.num_rows, dtype=np.int64)
        first += batch.num_rows
        yield _as_chunk(batch, columns, lines, [])


# -- JSONL ----------------------------------------------------------------------------------
def _jsonl_chunks(path: Path, columns: tuple[str, ...], present: set[str]) -> Iterator[Chunk]:
    records: list[dict] = []
    lines: list[int] = []
    unreadable: list[tuple[int, str, str]] = []
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            problem = None
            try:
                text = raw.decode("utf-8")
                record = json.loads(text)
            except UnicodeDecodeError:
                problem = "the line is not valid UTF-8"
            except json.JSONDecodeError as exc:
                problem = f"malformed JSON: {exc.msg}"
            else:
                if not isinstance(record, dict):
                    problem = "a line must be a JSON object"
                else:
                    nested = [c for c in columns if isinstance(record.get(c), (dict, list))]
                    if nested:
                        problem = f"{nested[0]} must be a single value, not a JSON array or object"
            if problem:
                unreadable.append((line_no, raw.decode("utf-8", "backslashreplace").rstrip("\r\n"), problem))
            else:
                records.append(record)
                lines.append(line_no)
            if len(records) + len(unreadable) >= CHUNK_ROWS:
                present.update(c for c in columns if any(c in r for r in records))
                yield _jsonl_chunk(records, lines, unreadable, columns)
                records, lines, unreadable = [], [], []
    present.update(c for c in columns if any(c in r for r in records))
    if records or unreadable:
        yield _jsonl_chunk(records, lines, unreadable, columns)


def _jsonl_chunk(records: list[dict], lines: list[int], unreadable: list, columns: tuple[str, ...]) -> Chunk:
    frame = pd.DataFrame(index=range(len(records)))
    for col in columns:
        values = [r.get(col) for r in records]
        frame[col] = [_json_text(v) for v in values]
    frame = frame.astype({c: "str" for c in columns}) if len(frame) else _empty_frame(columns)
    frame["line_no"] = np.asarray(lines, dtype=np.int64)
    return Chunk(frame, unreadable)


def _json_text(value: object) -> str:
    """A JSON scalar as the text a CSV would hold: null and NaN are empty, booleans true/false."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- shared ---------------------------------------------------------------------------------
def _as_chunk(batch: pa.RecordBatch, columns: tuple[str, ...], lines: np.ndarray, unreadable: list) -> Chunk:
    """String columns from an Arrow batch; rows with a value that is not UTF-8 become unreadable."""
    n = batch.num_rows
    arrays: dict[str, pa.Array] = {}
    not_utf8 = np.zeros(n, dtype=bool)
    for col in columns:
        if col not in batch.schema.names:
            arrays[col] = pa.array([""] * n, type=pa.string())
            continue
        arrays[col], bad = _as_text(batch.column(col))
        if bad is not None:
            not_utf8 |= bad
    frame = pa.table(arrays).to_pandas()
    frame["line_no"] = lines
    if not_utf8.any():
        for i in np.flatnonzero(not_utf8):
            raw = [batch.column(c)[i].as_py() for c in columns if c in batch.schema.names]
            text = ",".join(
                v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v) for v in raw
            )
            unreadable.append((int(lines[i]), text, "the row is not valid UTF-8 text"))
        frame = frame.loc[~not_utf8].reset_index(drop=True)
    return Chunk(frame, unreadable)


def _as_text(column: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """``column`` as non-null strings, and (only when some are not UTF-8) the mask of those."""
    # Timestamps cast to ISO 8601 text at the column's full precision; booleans to true/false.
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        try:
            text = column.cast(pa.string())
        except pa.ArrowInvalid:  # rare: decode one by one to find the rows that are not UTF-8
            decoded, bad = [], np.zeros(len(column), dtype=bool)
            for i, value in enumerate(column.to_pylist()):
                try:
                    decoded.append(None if value is None else value.decode("utf-8"))
                except UnicodeDecodeError:
                    decoded.append("")
                    bad[i] = True
            return pa.array(decoded, type=pa.string()).fill_null(""), bad
    else:
        text = column.cast(pa.string())
    return text.fill_null(""), None


def _empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    frame["line_no"] = np.array([], dtype=np.int64)
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
