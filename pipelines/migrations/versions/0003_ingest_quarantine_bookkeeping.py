"""Ingestion that quarantines, never blocks (issue 8):

- raw.interactions.value is nullable: a missing value is stored as NULL, never invented as 0.
- raw.interactions' logical_date index is a BRIN index and its unused decision_id index is gone:
  per-row index upkeep was most of the time of a big load (BENCHMARKS.md, ingest).
- ops.ingested_files records every file version tried, rejected ones included: rows_read (so that
  rows_read = loaded + skipped (duplicates) + quarantined holds for a loaded file), the reason a file
  was rejected, kind 'unknown' for a file of no known kind, and (checksum, path) as key so that two
  empty files of one day are both recorded.
- ops.quarantine rows carry the checksum of the file version they came from and, once a new version
  of the same path is ingested, the checksum that superseded them (kept, not deleted).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("interactions", "value", schema="raw", nullable=True, server_default=None)
    # Events land day by day, so a BRIN index finds a day's rows (GX reads logical_date = D) as
    # well as the btree did, and costs next to nothing per inserted row (BENCHMARKS.md, ingest).
    op.drop_index("interactions_logical_date", table_name="interactions", schema="raw")
    op.create_index(
        "interactions_logical_date", "interactions", ["logical_date"], schema="raw", postgresql_using="brin"
    )
    # No query reads events by decision_id (dbt hash-joins them, GX and dbt scan by day, the
    # ingest checks decisions the other way round): the index only cost ~10% of every insert.
    op.drop_index("interactions_decision", table_name="interactions", schema="raw")

    op.add_column("ingested_files", sa.Column("rows_read", sa.Integer), schema="ops")
    op.add_column("ingested_files", sa.Column("reason", sa.Text), schema="ops")
    op.execute("update ops.ingested_files set rows_read = rows_loaded + rows_skipped + rows_quarantined")
    op.alter_column("ingested_files", "rows_read", schema="ops", nullable=False, server_default="0")
    op.drop_constraint("ingested_files_pkey", "ingested_files", schema="ops")
    op.create_primary_key("ingested_files_pkey", "ingested_files", ["checksum", "path"], schema="ops")
    op.drop_constraint("kind_known", "ingested_files", schema="ops")
    op.create_check_constraint(
        "kind_known",
        "ingested_files",
        "kind in ('interactions', 'customers', 'consents', 'unknown')",
        schema="ops",
    )
    op.create_check_constraint(
        "rows_add_up",
        "ingested_files",
        "status <> 'loaded' or rows_read = rows_loaded + rows_skipped + rows_quarantined",
        schema="ops",
    )

    op.add_column("quarantine", sa.Column("checksum", sa.Text), schema="ops")
    op.add_column("quarantine", sa.Column("superseded_by", sa.Text), schema="ops")
    op.drop_constraint("quarantine_file_line", "quarantine", schema="ops")
    op.create_unique_constraint(
        "quarantine_file_line", "quarantine", ["source_file", "checksum", "line_no"], schema="ops"
    )


def downgrade() -> None:
    op.drop_constraint("quarantine_file_line", "quarantine", schema="ops")
    op.execute("delete from ops.quarantine where superseded_by is not null")
    op.create_unique_constraint(
        "quarantine_file_line", "quarantine", ["source_file", "line_no"], schema="ops"
    )
    op.drop_column("quarantine", "superseded_by", schema="ops")
    op.drop_column("quarantine", "checksum", schema="ops")

    op.drop_constraint("rows_add_up", "ingested_files", schema="ops")
    op.drop_constraint("kind_known", "ingested_files", schema="ops")
    op.execute("delete from ops.ingested_files where kind = 'unknown'")
    op.create_check_constraint(
        "kind_known", "ingested_files", "kind in ('interactions', 'customers', 'consents')", schema="ops"
    )
    op.drop_constraint("ingested_files_pkey", "ingested_files", schema="ops")
    op.execute(
        "delete from ops.ingested_files f using ops.ingested_files g "
        "where f.checksum = g.checksum and f.path > g.path"
    )
    op.create_primary_key("ingested_files_pkey", "ingested_files", ["checksum"], schema="ops")
    op.drop_column("ingested_files", "reason", schema="ops")
    op.drop_column("ingested_files", "rows_read", schema="ops")

    op.create_index("interactions_decision", "interactions", ["decision_id"], schema="raw")
    op.drop_index("interactions_logical_date", table_name="interactions", schema="raw")
    op.create_index("interactions_logical_date", "interactions", ["logical_date"], schema="raw")
    op.execute("update raw.interactions set value = 0 where value is null")
    op.alter_column("interactions", "value", schema="raw", nullable=False, server_default="0")
