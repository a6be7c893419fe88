"""A small world for the data-quality page, counted by hand. T is the UTC day of the test; the
page's window is the 30 logical dates up to T.

    ops.quarantine   T - 2  a.csv  3 x "expected 5 fields, got 3", 1 x "event_type: unknown"
                     T - 1  b.csv  2 x "expected 5 fields, got 3"
                     T - 1  b.csv  1 row superseded by a newer version of b.csv: not counted
                     T - 40 old.csv 1 row: outside the window
        by reason: "expected 5 fields, got 3" 5 rows in 2 files, "event_type: unknown" 1 in 1; 6 rows
    ops.ingested_files  T - 1 c.jsonl rejected (10 read, 8 quarantined); T - 1 d.csv loaded
    ops.alerts   1 concept_drift:1 warning, open (T - 1)
                 2 ingest_rejected critical, open (T - 1)
                 3 quarantine warning, resolved by "ops-person" (T - 2)
    Great Expectations  interactions_batch on VALIDATED_DAY: one click on an arm of no campaign
                        fails arm_in_campaign (1 of the suite's 9 expectations)
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from tests.api.realtime_world import fresh_world

VALIDATED_DAY = date(2031, 3, 5)  # no other test lands events on it
FEW_FIELDS, BAD_EVENT = "expected 5 fields, got 3", "event_type: unknown"


def build_quality_world(engine: sa.Engine) -> dict:
    from pipelines.validation import validate_interactions

    fresh_world(engine)
    today = datetime.now(UTC).date()
    day = lambda back: today - timedelta(days=back)  # noqa: E731
    quarantine = [
        *[(day(2), "inbox/a.csv", i, FEW_FIELDS, None) for i in range(3)],
        (day(2), "inbox/a.csv", 3, BAD_EVENT, None),
        *[(day(1), "inbox/b.csv", i, FEW_FIELDS, None) for i in range(2)],
        (day(1), "inbox/b.csv", 9, FEW_FIELDS, "newer"),
        (day(40), "inbox/old.csv", 0, FEW_FIELDS, None),
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.quarantine (logical_date, source_file, checksum, line_no, row, reason,
                                               superseded_by)
                   values (:d, :f, 'x', :n, 'a,b,c', :r, :s)"""
            ),
            [{"d": d, "f": f, "n": n, "r": r, "s": s} for d, f, n, r, s in quarantine],
        )
        conn.execute(
            sa.text(
                """insert into ops.ingested_files (checksum, path, kind, logical_date, rows_read, rows_loaded,
                                                   rows_skipped, rows_quarantined, status, reason)
                   values ('c1', 'inbox/c.jsonl', 'interactions', :d, 10, 0, 0, 8, 'rejected',
                           '8 of 10 rows quarantined, above the 5% allowed'),
                          ('d1', 'inbox/d.csv', 'interactions', :d, 4, 4, 0, 0, 'loaded', null)"""
            ),
            {"d": day(1)},
        )
        conn.execute(
            sa.text(
                """insert into ops.alerts (alert_date, kind, severity, message, details, resolved_by,
                                           resolved_at)
                   values (:d1, 'concept_drift:1', 'warning', 'arm 1 converts less since T - 3',
                           cast(:details as jsonb), null, null),
                          (:d1, 'ingest_rejected', 'critical', '1 inbox file(s) rejected', '{}', null, null),
                          (:d2, 'quarantine', 'warning', '4 rows quarantined', '{}', 'ops-person', now())"""
            ),
            {"d1": day(1), "d2": day(2), "details": json.dumps({"arm_id": 1})},
        )
        conn.execute(  # held in the window; released long ago (not shown); still held from long ago
            sa.text(
                """insert into ops.feedback_holds (channel, landing, logical_date, reason, released_at,
                                                   released_by)
                   values ('email', 'file', :d1, 'email events landed from file: open 0 against 64 expected',
                           null, null),
                          ('sms', 'realtime', :d45, 'sms events: click 90 against 30 expected', now(), 'ops'),
                          ('app_push', 'file', :d60, 'app_push: open 0 against 40 expected', null, null)"""
            ),
            {"d1": day(1), "d45": day(45), "d60": day(60)},
        )
        conn.execute(
            sa.text(
                """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                                                 event_type, value, occurred_at, logical_date, source_file)
                   values ('gx-1', 'd-1', 'cu-1', 1, 999, 'click', null, :at, :d, 'inbox/e.csv')"""
            ),
            {"at": datetime.combine(VALIDATED_DAY, datetime.min.time(), tzinfo=UTC), "d": VALIDATED_DAY},
        )
    report = validate_interactions(VALIDATED_DAY, raise_on_failure=False)
    return {"today": today, "report": report}


def key_name(engine: sa.Engine, token: str) -> str:
    """The name a token's key was created with (what an acknowledgement records)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select name from ops.api_keys where key_id = :k"), {"k": token.split("_")[1]}
        ).scalar_one()


def alert_row(engine: sa.Engine, alert_id: int) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    """select acknowledged_by, acknowledged_at, resolved_by, resolved_at, note
                       from ops.alerts where alert_id = :a"""
                ),
                {"a": alert_id},
            )
            .mappings()
            .one()
        )
