"""Real-time decisions and feedback (issue 9):

- ops.decisions.idempotency_key: a real-time caller's request key; unique per campaign, so the
  same request gives the same decision, logged once, however many callers race.
- raw.interactions.source: 'file' (ingested from the inbox) or 'realtime' (POST /feedback), so
  the daily marts read both paths from one table and an operator can tell them apart.
- raw.interactions.outside_window: a real-time event that occurred outside its decision's
  attribution window is stored (nothing is lost) and marked; the marts never attribute it.
- a partial index on real-time events' decision_id, for the snapshot's incremental fold.

Independent of 0004 (API keys): it touches other columns only.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("idempotency_key", sa.Text), schema="ops")
    op.create_index(
        "decisions_idempotency_key",
        "decisions",
        ["campaign_id", "idempotency_key"],
        unique=True,
        schema="ops",
        postgresql_where=sa.text("idempotency_key is not null"),
    )
    # Constant defaults: PostgreSQL adds these columns without rewriting the table.
    op.add_column(
        "interactions",
        sa.Column("source", sa.Text, nullable=False, server_default="file"),
        schema="raw",
    )
    op.create_check_constraint(
        "interaction_source_known", "interactions", "source in ('file', 'realtime')", schema="raw"
    )
    op.add_column(
        "interactions",
        sa.Column("outside_window", sa.Boolean, nullable=False, server_default=sa.false()),
        schema="raw",
    )
    # The real-time snapshot reads the feedback of a few decisions by decision_id; only real-time
    # events are indexed, so the file ingest pays nothing for it (0003 dropped the full index).
    op.create_index(
        "interactions_realtime_decision",
        "interactions",
        ["decision_id"],
        schema="raw",
        postgresql_where=sa.text("source = 'realtime'"),
    )


def downgrade() -> None:
    op.drop_index("interactions_realtime_decision", table_name="interactions", schema="raw")
    op.drop_column("interactions", "outside_window", schema="raw")
    op.drop_constraint("interaction_source_known", "interactions", schema="raw")
    op.drop_column("interactions", "source", schema="raw")
    op.drop_index("decisions_idempotency_key", table_name="decisions", schema="ops")
    op.drop_column("decisions", "idempotency_key", schema="ops")
