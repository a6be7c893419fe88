"""Cost- and capacity-aware allocation (issue 12, part 3; pipelines/allocation.py).

``ops.day_prices`` holds a campaign's capacity prices of one day: the duals of the assignment LP
the batch decide solves on a sample of the day's audience (every bucket solves the same sample and
writes the same row), and the list's capacities they price. The real-time service decides with
them and counts the day's sends, batch and real time, against the same capacities.

Three nullable columns on ``ops.decisions`` (null for campaigns without capacities, and for
real-time rows): the customer's best free arm (one that uses no capacity), the propensity that arm
had, and the value a move to it loses. ``finish_list`` moves a list's overflow there.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_prices",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id"), primary_key=True),
        sa.Column("price_date", sa.Date, primary_key=True),
        sa.Column("prices", postgresql.JSONB, nullable=False),  # [{name, kind, limit, price}] per capacity
        sa.Column("n_sample", sa.Integer, nullable=False),
        sa.Column("n_list_estimate", sa.Float, nullable=False),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="ops",
    )
    op.add_column("decisions", sa.Column("fallback_arm_id", sa.Integer), schema="ops")
    op.add_column("decisions", sa.Column("fallback_propensity", sa.Float), schema="ops")
    op.add_column("decisions", sa.Column("capacity_regret", sa.Float), schema="ops")


def downgrade() -> None:
    for column in ("capacity_regret", "fallback_propensity", "fallback_arm_id"):
        op.drop_column("decisions", column, schema="ops")
    op.drop_table("day_prices", schema="ops")
