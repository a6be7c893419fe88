"""Accumulated history for the bank-size benchmark: days before the first measured day, in SQL.

A bank that has run campaignopt for a month has a month of lists, events and customer snapshots
in its tables. Running the DAG for 30 days to get there would take hours, so the history is
copied from one real day instead: the decisions the DAG made on ``day`` (every column: arms,
propensities, shards, model scores), the events that landed on ``day + 1`` for them, the customer
snapshot of ``day``, its published send lists, the ingest bookkeeping and the feedback volumes,
each shifted back by 1..n days under new ids. The days then look to every query as days the DAG
ran: a decision of day h has its events landing on h + 1, a snapshot per day (the bank sends a
full extract daily), one published list per campaign and day.

The copy is written behind the marts' back (they assume history only grows), so the caller
rebuilds them day by day from the first history day, as a deployment that had run those days
built them.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import sqlalchemy as sa

DECISION_COLUMNS = (
    "campaign_id, customer_id, arm_id, segment, policy, policy_version, strategy, phase, propensity, "
    "bandit_score, model_score, blend_score, selected_by, confidence, explored, model_version, "
    "treatment_group, source, seed, note, shard"
)
EVENT_COLUMNS = "customer_id, campaign_id, arm_id, event_type, value, source, outside_window"
CUSTOMER_COLUMNS = (
    "customer_id, age, gender, income, loyalty_points, tenure_years, products_held, "
    "digital_engagement, website_visits, past_purchases"
)


def _copy_day(conn: sa.Connection, day: date, back: int) -> dict[str, int]:
    """Day ``day - back``: a copy of ``day``'s decisions, lists and snapshot, and of the events
    that landed on ``day + 1``; returns the rows written per table."""
    old_next, new_day = day + timedelta(days=1), day - timedelta(days=back)
    new_next = new_day + timedelta(days=1)
    params = {
        "day": day,
        "next": old_next,
        "back": back,
        "new_day": new_day,
        "new_next": new_next,
        "prefix": f"h{back}-",
        "old_tag": day.isoformat(),
        "new_tag": new_day.isoformat(),
        "old_next_tag": old_next.isoformat(),
        "new_next_tag": new_next.isoformat(),
    }
    statements = {
        "ops.decisions": f"""
            insert into ops.decisions (decision_id, decision_date, decided_at, {DECISION_COLUMNS})
            select :prefix || decision_id, :new_day, decided_at - make_interval(days => :back),
                   {DECISION_COLUMNS}
            from ops.decisions where decision_date = :day and source = 'batch'""",
        "raw.interactions": f"""
            insert into raw.interactions
                (event_id, decision_id, occurred_at, logical_date, source_file, {EVENT_COLUMNS})
            select :prefix || event_id, :prefix || decision_id,
                   occurred_at - make_interval(days => :back), :new_next,
                   replace(source_file, :old_next_tag, :new_next_tag), {EVENT_COLUMNS}
            from raw.interactions where logical_date = :next and source = 'file'""",
        "raw.customers": f"""
            insert into raw.customers (snapshot_date, source_file, {CUSTOMER_COLUMNS})
            select :new_day, replace(source_file, :old_tag, :new_tag), {CUSTOMER_COLUMNS}
            from raw.customers where snapshot_date = :day""",
        "ops.send_lists": """
            insert into ops.send_lists (campaign_id, list_date, status, n_rows, n_control, model_version,
                                        csv_path, parquet_path, published_at, updated_at)
            select campaign_id, :new_day, status, n_rows, n_control, model_version,
                   replace(csv_path, :old_tag, :new_tag), replace(parquet_path, :old_tag, :new_tag),
                   published_at - make_interval(days => :back), updated_at - make_interval(days => :back)
            from ops.send_lists where list_date = :day and status = 'published'""",
        "ops.ingested_files": """
            insert into ops.ingested_files (checksum, path, kind, logical_date, rows_loaded, rows_skipped,
                                            rows_quarantined, status, loaded_at, rows_read, reason)
            select :prefix || checksum,
                   replace(replace(path, :old_next_tag, :new_next_tag), :old_tag, :new_tag), kind,
                   logical_date - :back, rows_loaded, rows_skipped, rows_quarantined, status,
                   loaded_at - make_interval(days => :back), rows_read, reason
            from ops.ingested_files
            where (logical_date = :day and kind = 'customers')
               or (logical_date = :next and kind = 'interactions')""",
        "ops.feedback_volumes": """
            insert into ops.feedback_volumes (channel, landing, logical_date, event_type, events, active)
            select channel, landing, :new_next, event_type, events, active
            from ops.feedback_volumes where logical_date = :next""",
    }
    # Day 1 counted its (empty) feedback of D itself: the copy replaces those counts.
    conn.execute(sa.text("delete from ops.feedback_volumes where logical_date = :new_next"), params)
    return {table: conn.execute(sa.text(sql), params).rowcount for table, sql in statements.items()}


def add_history(engine: sa.Engine, day: date, n_days: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    """Days ``day - n_days`` .. ``day - 1`` copied from ``day`` (see the module docstring), one
    transaction per day, then ANALYZE of the grown tables; returns rows written and seconds."""
    totals: dict[str, int] = {}
    t0 = time.perf_counter()
    for back in range(1, n_days + 1):
        with engine.begin() as conn:
            conn.execute(sa.text("set local synchronous_commit = off"))  # setup: no wait on the WAL
            for table, rows in _copy_day(conn, day, back).items():
                totals[table] = totals.get(table, 0) + rows
        log(f"history: day {day - timedelta(days=back)} written ({time.perf_counter() - t0:.0f} s)")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("ops.decisions", "raw.interactions", "raw.customers"):
            conn.execute(sa.text(f"vacuum analyze {table}"))  # what autovacuum would have done by then
    return {"rows": totals, "seconds": time.perf_counter() - t0}
