"""The schema: created by Alembic, upgrading twice is harmless, constraints hold."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipelines import migrate


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    assert migrate.upgrade(engine) == migrate.head_revision(engine)
    assert migrate.upgrade(engine) == migrate.head_revision(engine)


def test_tables_of_the_data_model_exist(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert {"interactions", "customers", "consents"} <= set(inspector.get_table_names(schema="raw"))
    assert {
        "campaigns",
        "arms",
        "decisions",
        "send_lists",
        "ingested_files",
        "quarantine",
        "alerts",
        "suppressions",
    } <= set(inspector.get_table_names(schema="ops"))


def test_event_ids_are_unique_and_event_types_checked(clean_engine: sa.Engine) -> None:
    insert = sa.text(
        "insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id, event_type, "
        "occurred_at, logical_date, source_file) "
        "values (:e, 'd1', 'C1', 1, 1, :t, '2026-11-02', '2026-11-02', 'f')"
    )
    with clean_engine.begin() as conn:
        conn.execute(insert, {"e": "e1", "t": "click"})
    with pytest.raises(sa.exc.IntegrityError), clean_engine.begin() as conn:
        conn.execute(insert, {"e": "e1", "t": "click"})
    with pytest.raises(sa.exc.IntegrityError), clean_engine.begin() as conn:
        conn.execute(insert, {"e": "e2", "t": "teleport"})
