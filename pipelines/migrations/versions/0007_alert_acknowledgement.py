"""Alerts a person can acknowledge and resolve (issue 10, drift): who did it, when, and a note.

An acknowledged alert is seen and still applies (a concept-drift alert keeps discounting the
arm's old evidence when the campaign asks for it); a resolved one no longer applies. The
monitor's re-run of a day updates its alerts in place, so these columns survive it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "note")


def upgrade() -> None:
    op.add_column("alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True)), schema="ops")
    op.add_column("alerts", sa.Column("acknowledged_by", sa.Text), schema="ops")
    op.add_column("alerts", sa.Column("resolved_at", sa.DateTime(timezone=True)), schema="ops")
    op.add_column("alerts", sa.Column("resolved_by", sa.Text), schema="ops")
    op.add_column("alerts", sa.Column("note", sa.Text), schema="ops")


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("alerts", column, schema="ops")
