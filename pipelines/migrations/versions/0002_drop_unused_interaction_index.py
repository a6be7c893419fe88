"""Drop the (campaign_id, occurred_at) index of raw.interactions: no daily query uses it
(dbt scans by logical date, GX filters by logical date, decide never reads events), and it
costs the 5M-event ingest a large share of its insert time (BENCHMARKS.md, daily pipeline).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("interactions_campaign_time", table_name="interactions", schema="raw")


def downgrade() -> None:
    op.create_index(
        "interactions_campaign_time", "interactions", ["campaign_id", "occurred_at"], schema="raw"
    )
