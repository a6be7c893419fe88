"""Feedback source-days held out of learning (issue 10, anomalies in feedback).

One row per (channel, landing, logical_date) whose event volume or rates the daily run found
anomalous (pipelines/anomalies.py): an email platform outage is not a change in customers. While
``released_at`` is null, decisions of that channel whose attribution window covers the day stay
pending in the marts and the real-time snapshot; a person releases it (`campaignopt anomalies
release`), and the next build learns from them again. Re-running a day inserts nothing new for a
source-day already held or released.

ops.feedback_volumes keeps each day's counts the check compares (events per channel, landing
and event type; the channel's sends whose attribution window covers the day), so a day's check
reads one day of raw events.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_holds",
        sa.Column("hold_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("landing", sa.Text, nullable=False),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("released_by", sa.Text),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("landing in ('file', 'realtime')", name="landing_known"),
        sa.UniqueConstraint("channel", "landing", "logical_date", name="feedback_holds_source_day"),
        schema="ops",
    )
    op.create_table(
        "feedback_volumes",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("landing", sa.Text, primary_key=True),
        sa.Column("logical_date", sa.Date, primary_key=True),
        sa.Column("event_type", sa.Text, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("active", sa.BigInteger, nullable=False),
        schema="ops",
    )
    # The marts and the snapshot look up the open holds of a channel by day.
    op.create_index(
        "feedback_holds_open",
        "feedback_holds",
        ["channel", "logical_date"],
        schema="ops",
        postgresql_where=sa.text("released_at is null"),
    )


def downgrade() -> None:
    op.drop_table("feedback_volumes", schema="ops")
    op.drop_table("feedback_holds", schema="ops")
