"""Ingestion: good rows land, bad rows are quarantined with a reason, nothing twice."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.errors import IngestRejected
from pipelines.ingest import ingest_day

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
HEADER = "event_id,decision_id,customer_id,campaign_id,arm_id,event_type,value,occurred_at\n"


@pytest.fixture
def campaign(clean_engine: sa.Engine) -> tuple[int, list[int]]:
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
            [{"d": f"D{i}", "c": result.campaign_id, "cust": f"C{i}", "a": arms[i % 2]} for i in range(3)],
        )
    return result.campaign_id, arms


def inbox_file(inbox: Path, name: str, text: str) -> Path:
    folder = inbox / DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        events = conn.execute(sa.text("select count(*) from raw.interactions")).scalar_one()
        bad = conn.execute(sa.text("select count(*) from ops.quarantine")).scalar_one()
    return events, bad


def test_malformed_rows_are_quarantined_and_good_rows_land(clean_engine, campaign, tmp_path) -> None:
    cid, arms = campaign
    good = [f"E{i},D{i},C{i},{cid},{arms[i % 2]},click,0,2026-11-02T10:00:00Z" for i in range(3)]
    bad = [
        "E9,D0,C0,1",  # wrong number of fields
        f"E10,D0,C0,{cid},{arms[0]},teleport,0,2026-11-02T10:00:00Z",  # unknown event type
        f"E11,D0,C0,{cid},{arms[0]},click,lots,2026-11-02T10:00:00Z",  # value not a number
        f"E12,D0,C0,{cid},{arms[0]},click,0,yesterday",  # bad timestamp
        f"E13,D404,C0,{cid},{arms[0]},click,0,2026-11-02T10:00:00Z",  # unknown decision
        f"E14,D0,C0,{cid},{arms[0]},click,0,2026-11-05T10:00:00Z",  # from the future
    ]
    inbox_file(tmp_path, "interactions_1.csv", HEADER + "\n".join(good + bad) + "\n")
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.9)
    assert (report.loaded, report.quarantined) == (3, 6)
    with clean_engine.connect() as conn:
        reasons = dict(conn.execute(sa.text("select line_no, reason from ops.quarantine")).all())
    assert reasons[5] == "expected 8 fields, got 4"
    assert reasons[6] == "unknown event_type teleport"
    assert reasons[7] == "value is not a number: lots"
    assert reasons[8].startswith("occurred_at is not an ISO 8601 timestamp")
    assert reasons[9] == "unknown decision_id D404"
    assert reasons[10] == (
        "occurred_at 2026-11-05T10:00:00Z is after 2026-11-03 01:00 UTC, the end of 2026-11-02 plus 1 h "
        "of grace: an event from the future"
    )


def test_same_file_and_same_events_are_not_counted_twice(clean_engine, campaign, tmp_path) -> None:
    cid, arms = campaign
    rows = [f"E{i},D{i},C{i},{cid},{arms[i % 2]},conversion,12.5,2026-11-02T10:00:00Z" for i in range(3)]
    inbox_file(tmp_path, "interactions_1.csv", HEADER + "\n".join(rows) + "\n")
    first = ingest_day(clean_engine, DAY, inbox=tmp_path)
    second = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert first.loaded == 3 and [f.status for f in second.files] == ["skipped"]
    # The same events in another format and file: skipped by event_id.
    records = [dict(zip(HEADER.strip().split(","), r.split(","), strict=True)) for r in rows]
    inbox_file(tmp_path, "interactions_2.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    pd.DataFrame.from_records(records).to_parquet(tmp_path / DAY.isoformat() / "interactions_3.parquet")
    third = ingest_day(clean_engine, DAY, inbox=tmp_path)
    assert third.loaded == 0
    assert [f.duplicates for f in third.files if f.status == "loaded"] == [3, 3]
    assert counts(clean_engine) == (3, 0)


def test_too_many_bad_rows_rejects_the_file_and_keeps_what_was_stored(
    clean_engine, campaign, tmp_path
) -> None:
    cid, arms = campaign
    inbox_file(
        tmp_path, "interactions_1.csv", HEADER + f"E0,D0,C0,{cid},{arms[0]},click,0,2026-11-02T09:00:00Z\n"
    )
    ingest_day(clean_engine, DAY, inbox=tmp_path)
    rows = [f"E{i},D1,C1,{cid},{arms[1]},click,0,2026-11-02T10:00:00Z" for i in range(5, 9)] + ["junk"]
    inbox_file(tmp_path, "interactions_2.csv", HEADER + "\n".join(rows) + "\n")
    with pytest.raises(IngestRejected, match=r"interactions_2.csv: 1 of 5 rows bad \(20.0% > 1.0%\)"):
        ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.01, fail_on_rejected=True)
    assert counts(clean_engine) == (1, 1)  # the earlier event stays; the rejected file added none
    # The operator accepts the share: the same file now loads its good rows.
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.5)
    assert [(f.source_file, f.status, f.loaded) for f in report.files][-1] == (
        "2026-11-02/interactions_2.csv",
        "loaded",
        4,
    )


def test_customers_and_consents_land(clean_engine, tmp_path) -> None:
    inbox_file(
        tmp_path,
        "customers.csv",
        "customer_id,age,gender,income,loyalty_points,tenure_years,products_held,digital_engagement,"
        "website_visits,past_purchases\nC1,34,f,52000,120,3.5,2,0.7,4,1\nC2,-3,m,1,0,0,0,0,0,0\n"
        "C3,40,f,1,inf,0,0,0,0,0\n",
    )
    inbox_file(
        tmp_path,
        "consents.csv",
        "customer_id,channel,granted,recorded_at\nC1,sms,true,2026-10-01T00:00:00Z\nC1,fax,true,2026-10-01\n",
    )
    report = ingest_day(clean_engine, DAY, inbox=tmp_path, max_bad_share=0.7)
    assert [(f.kind, f.loaded, f.quarantined) for f in report.files] == [
        ("customers", 1, 2),
        ("consents", 1, 1),
    ]
    with clean_engine.connect() as conn:
        reasons = set(conn.execute(sa.text("select reason from ops.quarantine")).scalars())
    assert "loyalty_points is not an integer: inf" in reasons
    with clean_engine.connect() as conn:
        assert conn.execute(sa.text("select snapshot_date, income from raw.customers")).one() == (DAY, 52000)
