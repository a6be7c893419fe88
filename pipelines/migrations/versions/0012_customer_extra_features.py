"""A deployment's own customer features (CUSTOMER_EXTRA_FEATURES; pipelines/extra_features.py).

``raw.customers.extra_features``: one jsonb object per snapshot row holding the configured
features beyond the fixed columns, so a bank adds a feature by configuration, not by migration.
PostgreSQL adds a column with a constant default without rewriting the table.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("extra_features", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema="raw",
    )


def downgrade() -> None:
    op.drop_column("customers", "extra_features", schema="raw")
