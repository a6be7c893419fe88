"""Read an inbox file (CSV, JSONL, Parquet) into string columns, keeping line numbers.

Every value is read as text: parsing types is the schema's job, so that a bad
value quarantines one row instead of failing the whole file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SUFFIXES = (".csv", ".jsonl", ".parquet")


@dataclass
class RawFile:
    """A file's rows as strings: ``frame`` has the expected columns plus ``line_no``."""

    frame: pd.DataFrame
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)  # (line_no, text, reason)

    @property
    def n_rows(self) -> int:
        return len(self.frame) + len(self.unreadable)


def read_file(path: Path, columns: tuple[str, ...]) -> RawFile:
    """Read ``path`` by its suffix into string columns ``columns`` (missing ones are empty)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, columns)
    if suffix == ".jsonl":
        return _read_jsonl(path, columns)
    if suffix == ".parquet":
        return _read_parquet(path, columns)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(SUFFIXES)}")


def _read_csv(path: Path, columns: tuple[str, ...]) -> RawFile:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    unreadable: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        unreadable.append((int(row.number or 0), row.text, reason))
        return "skip"

    # The header as the CSV parser sees it (names may be quoted): a name missing from
    # column_types would have its type inferred (and, for timestamps, be re-formatted slowly).
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        header = next(csv.reader(fh), [])
    table = pacsv.read_csv(
        path,
        # One thread keeps line numbers known for rows the parser rejects.
        read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    frame = _select(table.to_pandas(), columns)
    bad_lines = np.array(sorted(n for n, _, _ in unreadable), dtype=np.int64)
    # Lines of the good rows: 2..N (line 1 is the header) minus the rejected ones.
    all_lines = np.arange(2, 2 + len(frame) + len(bad_lines), dtype=np.int64)
    frame["line_no"] = np.setdiff1d(all_lines, bad_lines, assume_unique=True)
    return RawFile(frame, unreadable)


def _read_jsonl(path: Path, columns: tuple[str, ...]) -> RawFile:
    records: list[dict] = []
    lines: list[int] = []
    unreadable: list[tuple[int, str, str]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line_no, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                unreadable.append((line_no, text.rstrip("\n"), f"malformed JSON: {exc.msg}"))
                continue
            if not isinstance(record, dict):
                unreadable.append((line_no, text.rstrip("\n"), "a line must be a JSON object"))
                continue
            records.append(record)
            lines.append(line_no)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = _select(frame, columns)
    frame["line_no"] = np.asarray(lines, dtype=np.int64)
    return RawFile(frame, unreadable)


def _read_parquet(path: Path, columns: tuple[str, ...]) -> RawFile:
    frame = _select(pd.read_parquet(path), columns)
    frame["line_no"] = np.arange(1, len(frame) + 1, dtype=np.int64)  # row number in the file
    return RawFile(frame, [])


def _select(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Keep the expected columns as strings; a missing column reads as empty."""
    out = pd.DataFrame(index=range(len(frame)))
    for col in columns:
        if col in frame.columns:
            values = frame[col].reset_index(drop=True)
            if pd.api.types.is_datetime64_any_dtype(values):
                values = values.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            out[col] = values.astype("string").fillna("").astype(object)
        else:
            out[col] = ""
    return out
