"""The runner-up of every decision (pipelines/explain.py): the arm the policy was next most likely
to choose for the customer, and that probability. Null for holdout rows, for a customer with one
allowed arm, and for rows logged before this migration.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("runner_up_arm_id", sa.Integer), schema="ops")
    op.add_column("decisions", sa.Column("runner_up_propensity", sa.Float), schema="ops")


def downgrade() -> None:
    op.drop_column("decisions", "runner_up_propensity", schema="ops")
    op.drop_column("decisions", "runner_up_arm_id", schema="ops")
