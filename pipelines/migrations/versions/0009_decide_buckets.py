"""The decide step partitioned over (campaign, customer-hash bucket) (issue 11, part 2).

``ops.decisions.shard`` is the customer's hash shard (0..63, pipelines/shards.py): the unit of
the decide step's randomness, so a list is the same whatever the bucket count. A bucket's re-run
deletes exactly its shards' rows. Rows from before this revision have no shard; any bucket of a
re-run deletes them.

``ops.decide_buckets`` records each bucket decided for a (campaign, day) and the run that decided
it: a list is complete, and may be published, only when every bucket of one run is there. While
buckets are being (re)written the list's status is ``deciding``.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("shard", sa.SmallInteger), schema="ops")
    op.create_table(
        "decide_buckets",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id"), primary_key=True),
        sa.Column("list_date", sa.Date, primary_key=True),
        sa.Column("n_buckets", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("n_control", sa.Integer, nullable=False),
        sa.Column("model_version", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("bucket >= 0 and bucket < n_buckets", name="bucket_in_range"),
        schema="ops",
    )
    op.drop_constraint("status_known", "send_lists", schema="ops")
    op.create_check_constraint(
        "status_known", "send_lists", "status in ('deciding', 'draft', 'published')", schema="ops"
    )


def downgrade() -> None:
    op.execute("update ops.send_lists set status = 'draft' where status = 'deciding'")
    op.drop_constraint("status_known", "send_lists", schema="ops")
    op.create_check_constraint("status_known", "send_lists", "status in ('draft', 'published')", schema="ops")
    op.drop_table("decide_buckets", schema="ops")
    op.drop_column("decisions", "shard", schema="ops")
