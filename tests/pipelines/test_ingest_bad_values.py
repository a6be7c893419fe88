"""Ingestion quarantines, never blocks: every bad value of issue 8 costs its row only, every bad
file costs itself only, and the counts add up (rows read = loaded + duplicates + quarantined).

Expected counts are derived by hand from the files written in each test.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.ingest import ingest_day

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
COLUMNS = (
    "event_id",
    "decision_id",
    "customer_id",
    "campaign_id",
    "arm_id",
    "event_type",
    "value",
    "occurred_at",
)
HEADER = ",".join(COLUMNS) + "\n"
N_DECISIONS = 10


@pytest.fixture
def world(clean_engine: sa.Engine) -> dict:
    """A campaign and decisions D0..D9 (customer Ci, arm i % 2) made on 2026-11-01."""
    result = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    with clean_engine.begin() as conn:
        arms = list(conn.execute(sa.text("select arm_id from ops.arms order by arm_id")).scalars())
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:d, :c, :cust, :a, '2026-11-01', '2026-11-01', 'thompson', '1', 0.5, 'bandit',
                           false, 'treatment', 'batch')"""
            ),
            [
                {"d": f"D{i}", "c": result.campaign_id, "cust": f"C{i}", "a": arms[i % 2]}
                for i in range(N_DECISIONS)
            ],
        )
    return {"cid": result.campaign_id, "arms": arms}


def event(world: dict, n: int, **overrides: object) -> dict:
    """Event E<n> of decision D<n % 10>: a click on DAY at 10:00 unless overridden."""
    i = n % N_DECISIONS
    row = {
        "event_id": f"E{n}",
        "decision_id": f"D{i}",
        "customer_id": f"C{i}",
        "campaign_id": world["cid"],
        "arm_id": world["arms"][i % 2],
        "event_type": "click",
        "value": 0,
        "occurred_at": "2026-11-02T10:00:00Z",
    }
    row.update(overrides)
    return row


def csv_line(row: dict) -> str:
    return ",".join(str(row[c]) for c in COLUMNS) + "\n"


def write(inbox: Path, name: str, content: str | bytes) -> Path:
    folder = inbox / DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def query(engine: sa.Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]


def file_ledger(engine: sa.Engine) -> dict[str, tuple]:
    rows = query(
        engine,
        "select path, status, rows_read, rows_loaded, rows_skipped, rows_quarantined, reason "
        "from ops.ingested_files",
    )
    return {r[0].split("/", 1)[1]: r[1:] for r in rows}


BAD_VALUES = {
    "value inf": ({"value": "inf"}, "value inf is not a finite number"),
    "value 1e15 overflows numeric(14, 2)": ({"value": "1e15"}, "value 1e15 is above 999,999,999,999.99"),
    "negative value": ({"value": "-5"}, "value -5 is below 0"),
    "campaign id overflows int4": (
        {"campaign_id": "99999999999"},
        "campaign_id 99999999999 is out of range (1 to 2,147,483,647)",
    ),
    "arm id not whole": ({"arm_id": "1.5"}, "arm_id is not an integer: 1.5"),
    "NUL byte": (
        {"event_id": "E\x007"},
        "event_id contains a control character (a NUL byte, tab or line break)",
    ),
    "9,000-character event_id": ({"event_id": "e" * 9000}, "event_id is 9000 characters long (at most 200)"),
    "unparsable timestamp": (
        {"occurred_at": "2026-11-02 25:61"},
        "occurred_at is not an ISO 8601 timestamp: 2026-11-02 25:61",
    ),
    "event from the future": (
        {"occurred_at": "2026-11-03T01:00:00Z"},
        "occurred_at 2026-11-03T01:00:00Z is after 2026-11-03 01:00 UTC, the end of 2026-11-02 plus 1 h "
        "of grace: an event from the future",
    ),
    "unknown event type": ({"event_type": "teleport"}, "unknown event_type teleport"),
    "unknown decision": ({"decision_id": "D404"}, "unknown decision_id D404"),
}


@pytest.mark.parametrize("case", BAD_VALUES, ids=list(BAD_VALUES))
def test_a_bad_value_costs_its_row_only(clean_engine, world, tmp_path, case) -> None:
    overrides, reason = BAD_VALUES[case]
    rows = [event(world, 1), event(world, 2, **overrides), event(world, 3)]
    write(tmp_path, "interactions_a.csv", HEADER + "".join(csv_line(r) for r in rows))
    write(tmp_path, "interactions_b.csv", HEADER + csv_line(event(world, 4)))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    assert [(f.status, f.rows, f.loaded, f.duplicates, f.quarantined) for f in report.files] == [
        ("loaded", 3, 2, 0, 1),
        ("loaded", 1, 1, 0, 0),
    ]
    assert query(clean_engine, "select event_id from raw.interactions order by event_id") == [
        ("E1",),
        ("E3",),
        ("E4",),
    ]
    assert query(clean_engine, "select source_file, line_no, reason from ops.quarantine") == [
        ("2026-11-02/interactions_a.csv", 3, reason)
    ]


def test_a_non_utf8_row_is_quarantined_and_its_neighbours_load(clean_engine, world, tmp_path) -> None:
    good = HEADER + csv_line(event(world, 1))
    latin1 = csv_line(event(world, 2, customer_id="Zoë")).replace("Zoë", "C2é").encode("latin-1")
    write(tmp_path, "interactions_a.csv", good.encode() + latin1 + csv_line(event(world, 3)).encode())
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    assert (report.loaded, report.quarantined) == (2, 1)
    [(line, row, reason)] = query(clean_engine, "select line_no, row, reason from ops.quarantine")
    assert (line, reason) == (3, "the row is not valid UTF-8 text")
    assert "C2\\xe9" in row  # the undecodable byte is kept, shown escaped


def test_a_nul_byte_is_stored_escaped_in_the_quarantine(clean_engine, world, tmp_path) -> None:
    write(tmp_path, "interactions_a.csv", HEADER + csv_line(event(world, 1, event_type="cl\x00ick")))
    ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=1.0)
    [(row, reason)] = query(clean_engine, "select row, reason from ops.quarantine")
    assert "cl\\x00ick" in row and reason == "unknown event_type cl\\x00ick"


def test_bad_files_are_rejected_alone_and_the_day_goes_on(clean_engine, world, tmp_path) -> None:
    write(tmp_path, "interactions_empty.csv", b"")
    write(tmp_path, "interactions_corrupt.parquet", b"PAR1 this is not parquet")
    write(tmp_path, "interactions_noid.csv", "decision_id,customer_id\nD1,C1\n")
    write(tmp_path, "notes.txt", "hello")
    nested = pa.table({c: [str(v)] for c, v in event(world, 8).items()} | {"value": [[1, 2]]})
    pq.write_table(nested, tmp_path / DAY.isoformat() / "interactions_nested.parquet")
    write(tmp_path, "interactions_good.csv", HEADER + csv_line(event(world, 1)) + csv_line(event(world, 2)))
    write(tmp_path, "interactions_good.jsonl", json.dumps(event(world, 3)) + "\n")
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)  # does not raise
    assert report.loaded == 3
    expected = {
        "interactions_corrupt.parquet": "not a readable Parquet file: Parquet magic bytes not found in "
        "footer. Either the file is corrupted or this is not a parquet file.",
        "interactions_empty.csv": "the file is empty (0 bytes)",
        "interactions_nested.parquet": "column value holds list<element: int64> values; expected one value "
        "per row",
        "interactions_noid.csv": "required columns event_id, campaign_id, arm_id, event_type, occurred_at "
        "missing (expected event_id, decision_id, customer_id, campaign_id, arm_id, event_type, value, "
        "occurred_at)",
        "notes.txt": "not a known file: expected customers*, consents* or interactions* with .csv, .jsonl, "
        ".parquet",
    }
    assert {f.source_file.split("/")[1]: f.reason for f in report.rejected} == expected
    ledger = file_ledger(clean_engine)
    assert {k: v[0] for k, v in ledger.items()} == {
        **dict.fromkeys(expected, "rejected"),
        "interactions_good.csv": "loaded",
        "interactions_good.jsonl": "loaded",
    }
    assert {k: v[-1] for k, v in ledger.items() if v[0] == "rejected"} == expected
    [(severity, message, details)] = query(
        clean_engine, "select severity, message, details from ops.alerts where kind = 'ingest_rejected'"
    )
    assert severity == "critical" and message.startswith("5 inbox file(s) of 2026-11-02 rejected, the others")
    assert sorted(f["path"].split("/")[1] for f in details["files"]) == sorted(expected)
    # A retry changes nothing: the good files are skipped, the bad ones rejected again, one alert.
    again = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert sorted(f.status for f in again.files) == ["rejected"] * 5 + ["skipped"] * 2
    assert len(file_ledger(clean_engine)) == 7
    assert query(clean_engine, "select count(*) from ops.alerts") == [(1,)]


def test_missing_null_or_nan_values_are_stored_as_null_never_zero(clean_engine, world, tmp_path) -> None:
    conversions = [event(world, n, event_type="conversion", value=250.0) for n in range(1, 7)]
    no_value = pd.DataFrame(conversions[:2]).drop(columns="value")
    no_value.to_csv(tmp_path / "x.csv", index=False)
    write(tmp_path, "interactions_novalue.csv", (tmp_path / "x.csv").read_text())
    jsonl = [dict(conversions[2], value=None), dict(conversions[3], value=float("nan"))]
    write(tmp_path, "interactions_nulls.jsonl", "".join(json.dumps(r) + "\n" for r in jsonl))
    frame = pd.DataFrame([dict(conversions[4], value=None), dict(conversions[5], value=float("nan"))])
    frame.to_parquet(tmp_path / DAY.isoformat() / "interactions_nulls.parquet")
    write(
        tmp_path,
        "interactions_250.csv",
        HEADER + csv_line(event(world, 7, event_type="conversion", value=250)),
    )
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert (report.loaded, report.quarantined) == (7, 0)
    assert query(clean_engine, "select event_id, value from raw.interactions order by event_id") == [
        ("E1", None),
        ("E2", None),
        ("E3", None),
        ("E4", None),
        ("E5", None),
        ("E6", None),
        ("E7", Decimal("250.00")),
    ]
    notes = {f.source_file.split("/")[1]: f.note for f in report.files}
    assert notes["interactions_novalue.csv"] == "no value column: stored as NULL for every row"
    assert notes["interactions_nulls.jsonl"] is None


def test_timestamps_keep_their_microseconds(clean_engine, world, tmp_path) -> None:
    write(
        tmp_path,
        "interactions_a.csv",
        HEADER
        + csv_line(event(world, 1, occurred_at="2026-11-02T10:00:00.123456Z"))
        + csv_line(event(world, 2, occurred_at="2026-11-02T12:30:00.5+02:00")),
    )
    write(
        tmp_path,
        "interactions_b.jsonl",
        json.dumps(event(world, 3, occurred_at="2026-11-02T10:00:00.000001Z")),
    )
    stamps = pa.array([pd.Timestamp("2026-11-02T23:59:59.999999Z")], type=pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {c: [str(v)] for c, v in event(world, 4).items() if c != "occurred_at"} | {"occurred_at": stamps}
    )
    pq.write_table(table, tmp_path / DAY.isoformat() / "interactions_c.parquet")
    ingest_day(clean_engine, DAY, inbox=tmp_path)
    got = query(
        clean_engine,
        "select event_id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
        "from raw.interactions order by event_id",
    )
    assert got == [
        ("E1", "2026-11-02 10:00:00.123456"),
        ("E2", "2026-11-02 10:30:00.500000"),
        ("E3", "2026-11-02 10:00:00.000001"),
        ("E4", "2026-11-02 23:59:59.999999"),
    ]


def test_resent_events_duplicates_and_conflicts(clean_engine, world, tmp_path) -> None:
    first = [event(world, n, event_type="conversion", value="250.00") for n in (0, 1, 2)]
    write(tmp_path, "interactions_1.csv", HEADER + "".join(csv_line(r) for r in first))
    ingest_day(clean_engine, DAY, inbox=tmp_path)
    second = [
        first[0],  # line 2: same content -> duplicate
        dict(first[1], value="500.00"),  # line 3: other content -> conflict with interactions_1.csv
        event(world, 3),  # line 4: new -> loaded
        event(world, 3),  # line 5: same as line 4 -> duplicate
        event(world, 4),  # line 6: new -> loaded
        event(world, 4, event_type="open"),  # line 7: other content than line 6 -> conflict
    ]
    write(tmp_path, "interactions_2.csv", HEADER + "".join(csv_line(r) for r in second))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    [result] = [f for f in report.files if f.status != "skipped"]
    assert (result.rows, result.loaded, result.duplicates, result.quarantined) == (6, 2, 2, 2)
    assert file_ledger(clean_engine)["interactions_2.csv"][:5] == ("loaded", 6, 2, 2, 2)
    assert query(clean_engine, "select line_no, reason from ops.quarantine order by line_no") == [
        (
            3,
            "event_id E1 was already loaded from 2026-11-02/interactions_1.csv with other content: "
            "value 250.00 there, 500.00 here",
        ),
        (
            7,
            "event_id E4 appears at line 6 of this file with other content: "
            "event_type click there, open here",
        ),
    ]
    assert query(clean_engine, "select value from raw.interactions where event_id = 'E1'") == [
        (Decimal("250.00"),)
    ]
    assert query(clean_engine, "select count(*) from raw.interactions") == [(5,)]


def test_rows_read_add_up_with_unknown_decisions(clean_engine, world, tmp_path) -> None:
    """The issue's file: 104 rows were counted as 100 loaded + 4 skipped + 4 quarantined."""
    earlier = [event(world, n) for n in range(4)]
    write(tmp_path, "interactions_1.csv", HEADER + "".join(csv_line(r) for r in earlier))
    ingest_day(clean_engine, DAY, inbox=tmp_path)
    rows = earlier + [event(world, n) for n in range(100, 200)]
    rows += [event(world, n, decision_id=f"X{n}") for n in range(900, 904)]
    write(tmp_path, "interactions_2.csv", HEADER + "".join(csv_line(r) for r in rows))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.05)
    assert file_ledger(clean_engine)["interactions_2.csv"][:5] == ("loaded", 108, 100, 4, 4)
    assert report.as_dict()["loaded"] == 100 and report.duplicates == 4 and report.quarantined == 4


def test_late_events_load_and_future_ones_are_quarantined(clean_engine, world, tmp_path) -> None:
    """300 events of D and 10 cut two minutes after midnight: none is bad (the issue's 310-row file)."""
    rows = [event(world, n, occurred_at="2026-11-02T18:00:00Z") for n in range(300)]
    rows += [event(world, n, occurred_at="2026-11-03T00:02:00Z") for n in range(300, 310)]
    write(tmp_path, "interactions_1.csv", HEADER + "".join(csv_line(r) for r in rows))
    late = [
        event(world, 400, occurred_at="2026-11-01T23:58:00Z"),  # late by minutes
        event(world, 401, occurred_at="2026-10-30T08:00:00Z"),  # late by days
        event(world, 402, occurred_at="2026-11-03T00:59:59.999999Z"),  # last instant of the grace
        event(world, 403, occurred_at="2026-11-03T01:00:00Z"),  # from the future
    ]
    write(tmp_path, "interactions_2.csv", HEADER + "".join(csv_line(r) for r in late))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.3)  # default 1% for file 1
    assert [(f.rows, f.loaded, f.quarantined) for f in report.files] == [(310, 310, 0), (4, 3, 1)]
    assert query(clean_engine, "select line_no from ops.quarantine") == [(5,)]
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert [f.status for f in report.files] == ["skipped", "skipped"]


def test_a_fixed_file_supersedes_the_quarantine_of_its_rejected_version(
    clean_engine, world, tmp_path
) -> None:
    rows = [event(world, n) for n in range(5)]
    broken = [rows[0], dict(rows[1], value="lots"), rows[2], dict(rows[3], arm_id="x"), rows[4]]
    path = write(tmp_path, "interactions_1.csv", HEADER + "".join(csv_line(r) for r in broken))
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert [(f.status, f.rows, f.loaded, f.quarantined) for f in report.rejected] == [("rejected", 5, 0, 2)]
    assert report.rejected[0].reason == (
        "2 of 5 rows bad (40.0% > 1.0%): none of its rows were loaded, see ops.quarantine"
    )
    assert query(clean_engine, "select count(*) from raw.interactions") == [(0,)]
    assert query(clean_engine, "select line_no, superseded_by from ops.quarantine order by 1") == [
        (3, None),
        (5, None),
    ]
    path.write_text(HEADER + "".join(csv_line(r) for r in rows))  # fixed: same path, new checksum
    report = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert [(f.status, f.loaded) for f in report.files] == [("loaded", 5)]
    [(new_checksum,)] = query(clean_engine, "select checksum from ops.ingested_files where status = 'loaded'")
    assert query(clean_engine, "select line_no, superseded_by from ops.quarantine order by 1") == [
        (3, new_checksum),
        (5, new_checksum),
    ]
    assert sorted(v[0] for v in query(clean_engine, "select status from ops.ingested_files")) == [
        "loaded",
        "rejected",
    ]
    assert query(clean_engine, "select count(*) from ops.alerts") == [(0,)]  # the day's alert is cleared


def test_customer_and_consent_values_that_overflow_their_columns(clean_engine, tmp_path) -> None:
    header = (
        "customer_id,age,gender,income,loyalty_points,tenure_years,products_held,digital_engagement,"
        "website_visits,past_purchases\n"
    )
    write(
        tmp_path,
        "customers.csv",
        header
        + "C1,34,f,52000,120,3.5,2,0.7,4,1\n"
        + "C2,34,f,1e15,120,3.5,2,0.7,4,1\n"  # income overflows numeric(14, 2)
        + "C3,34,f,52000,99999999999,3.5,2,0.7,4,1\n"  # loyalty_points overflows int4
        + "C4,34,f,52000,120,inf,2,0.7,4,1\n"  # tenure not finite
        + "C5,34,f\x00,52000,120,3.5,2,0.7,4,1\n"  # NUL in gender
        + "C6,34,f,,120,3.5,2,0.7,4,1\n",  # income missing: quarantined, not 0
    )
    write(
        tmp_path,
        "consents.csv",
        "customer_id,channel,granted,recorded_at\n"
        + "C1,sms,true,2026-10-01T00:00:00Z\n"
        + f"{'C' * 300},sms,true,2026-10-01T00:00:00Z\n",
    )
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.9)
    assert [(f.kind, f.rows, f.loaded, f.quarantined) for f in report.files] == [
        ("customers", 6, 1, 5),
        ("consents", 2, 1, 1),
    ]
    assert query(
        clean_engine, "select line_no, reason from ops.quarantine order by source_file desc, line_no"
    ) == [
        (3, "income 1e15 is above 999,999,999,999.99"),
        (4, "loyalty_points 99999999999 is out of range (0 to 2,147,483,647)"),
        (5, "tenure_years inf is not a finite number"),
        (6, "gender contains a control character (a NUL byte, tab or line break)"),
        (7, "income is missing"),
        (3, "customer_id is 300 characters long (at most 200)"),
    ]
