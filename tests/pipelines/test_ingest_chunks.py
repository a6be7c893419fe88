"""Files are read in chunks: line numbers stay exact across chunk boundaries, a file broken
halfway leaves nothing of it loaded, and each chunk is bounded."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_ingest_bad_values import DAY, HEADER, csv_line, event, query, world, write  # noqa: F401

from pipelines.ingest import ingest_day, readers
from pipelines.ingest.schemas import KINDS


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few rows, so that a small test file spans many of them."""
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 300)  # ~4 rows per block
    monkeypatch.setattr(readers, "CHUNK_ROWS", 7)


def test_csv_lines_are_exact_across_blocks(clean_engine, world, tmp_path, small_chunks) -> None:  # noqa: F811
    lines: dict[int, bytes] = {n: csv_line(event(world, n)).encode() for n in range(2, 42)}
    lines[5] = b"E5,D5,only,four\n"  # wrong number of fields (reported by the CSV parser)
    lines[17] = b"E17,D7,C7\n"
    lines[30] = csv_line(event(world, 30, value="lots")).encode()
    lines[36] = csv_line(event(world, 36)).replace("C6", "C6\xe9").encode("latin-1")  # not UTF-8
    lines[39] = csv_line(event(world, 38, event_type="open")).encode()  # line 38's key, other content
    path = write(tmp_path, "interactions_1.csv", HEADER.encode() + b"".join(lines[n] for n in sorted(lines)))
    chunks = list(
        readers.open_file(path, KINDS["interactions"].columns, KINDS["interactions"].required).chunks
    )
    assert len(chunks) >= 6 and sum(c.n_rows for c in chunks) == 40
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    assert [(f.rows, f.loaded, f.duplicates, f.quarantined) for f in report.files] == [(40, 35, 0, 5)]
    assert query(clean_engine, "select line_no, reason from ops.quarantine order by line_no") == [
        (5, "expected 8 fields, got 4"),
        (17, "expected 8 fields, got 3"),
        (30, "value is not a number: lots"),
        (36, "the row is not valid UTF-8 text"),
        (
            39,
            "event_id E38 appears at line 38 of this file with other content: "
            "event_type click there, open here",
        ),
    ]


def test_jsonl_and_parquet_lines_are_exact_across_chunks(clean_engine, world, tmp_path, small_chunks) -> None:  # noqa: F811
    text = [json.dumps(event(world, n)) for n in range(20)]
    text[8] = "{not json"  # line 9
    text[11] = ""  # line 12: blank, skipped
    text[15] = json.dumps(event(world, 15, arm_id=[1]))  # line 16: not a single value
    write(tmp_path, "interactions_1.jsonl", "\n".join(text) + "\n")
    rows = [event(world, n) for n in range(100, 120)]
    rows[12] = dict(rows[12], campaign_id="x")  # row 13
    frame = pd.DataFrame(rows).astype(str)
    pq.write_table(
        pa.Table.from_pandas(frame), tmp_path / DAY.isoformat() / "interactions_2.parquet", row_group_size=6
    )
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    assert [(f.rows, f.loaded, f.quarantined) for f in report.files] == [(19, 17, 2), (20, 19, 1)]
    assert query(clean_engine, "select source_file, line_no, reason from ops.quarantine order by 1, 2") == [
        (
            "2026-11-02/interactions_1.jsonl",
            9,
            "malformed JSON: Expecting property name enclosed in double quotes",
        ),
        ("2026-11-02/interactions_1.jsonl", 16, "arm_id must be a single value, not a JSON array or object"),
        ("2026-11-02/interactions_2.parquet", 13, "campaign_id is not an integer: x"),
    ]
    parquet = readers.open_file(
        tmp_path / DAY.isoformat() / "interactions_2.parquet", KINDS["interactions"].columns, ()
    )
    sizes = [c.n_rows for c in parquet.chunks]
    assert sum(sizes) == 20 and len(sizes) >= 3 and max(sizes) <= 7


def test_a_file_broken_halfway_leaves_nothing_of_it_loaded(clean_engine, world, tmp_path) -> None:  # noqa: F811
    frame = pd.DataFrame([event(world, n) for n in range(20)]).astype(str)
    path = tmp_path / DAY.isoformat() / "interactions_1.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=5)
    third = pq.ParquetFile(path).metadata.row_group(2).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[third : third + 12] = b"\xff" * 12  # the page header of the third row group
    path.write_bytes(bytes(data))
    write(tmp_path, "interactions_2.csv", HEADER + csv_line(event(world, 50)))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert [(f.status, f.loaded) for f in report.files] == [("rejected", 0), ("loaded", 1)]
    assert report.files[0].reason.startswith("not a readable Parquet file: Couldn't deserialize thrift")
    # The first two row groups were read and staged before the break: none of them landed.
    assert query(clean_engine, "select event_id from raw.interactions") == [("E50",)]
    assert query(clean_engine, "select count(*) from ops.quarantine") == [(0,)]
