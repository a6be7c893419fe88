"""ops.api_keys: the keys of the real-time service (issue 9), stored as hashes only.

A key is ``co_<key_id>_<secret>``: ``key_id`` is public (it finds the row), the secret is a random
32-byte token of which only the SHA-256 is kept. A revoked key stays (audit); a name is unique
among the keys not revoked, so a revoked name can be given to a new key.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role in ('admin', 'service', 'analyst')", name="api_keys_role"),
        sa.CheckConstraint("octet_length(secret_sha256) = 32", name="api_keys_hash_length"),
        schema="ops",
    )
    op.create_index(
        "api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        schema="ops",
        postgresql_where=sa.text("revoked_at is null"),
    )


def downgrade() -> None:
    op.drop_table("api_keys", schema="ops")
