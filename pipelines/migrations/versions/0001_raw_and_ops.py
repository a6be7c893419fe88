"""raw and ops schemas: landed data and operational state (dbt owns analytics).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EVENT_TYPES = "('impression', 'open', 'click', 'view', 'dwell', 'conversion')"


def upgrade() -> None:
    op.execute("create schema if not exists raw")
    op.execute("create schema if not exists ops")

    # -- ops: campaigns and their arms --------------------------------------------------
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("policy_params", JSONB, nullable=False, server_default="{}"),
        sa.Column("holdout_share", sa.Float, nullable=False),
        sa.Column("attribution_window_days", sa.Integer, nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("source_file", sa.Text),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("holdout_share >= 0 and holdout_share <= 0.5", name="holdout_share_range"),
        sa.CheckConstraint("end_date is null or end_date >= start_date", name="dates_ordered"),
        schema="ops",
    )
    op.create_table(
        "arms",
        sa.Column("arm_id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id"), nullable=False),
        # Canonical "name=value|..." key: what keeps an arm's id stable across re-applies.
        sa.Column("arm_key", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("campaign_id", "arm_key", name="arms_campaign_key"),
        schema="ops",
    )
    op.create_index("arms_campaign_active", "arms", ["campaign_id", "active"], schema="ops")

    # -- raw: landed data, append-only ------------------------------------------------------
    op.create_table(
        "interactions",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("arm_id", sa.Integer, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("value", sa.Numeric(14, 2), nullable=False, server_default="0"),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.CheckConstraint(f"event_type in {EVENT_TYPES}", name="event_type_known"),
        sa.CheckConstraint("value >= 0", name="value_non_negative"),
        schema="raw",
    )
    op.create_index("interactions_decision", "interactions", ["decision_id"], schema="raw")
    op.create_index(
        "interactions_campaign_time", "interactions", ["campaign_id", "occurred_at"], schema="raw"
    )
    op.create_index("interactions_logical_date", "interactions", ["logical_date"], schema="raw")
    op.create_table(
        "customers",
        sa.Column("snapshot_date", sa.Date, primary_key=True),
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("gender", sa.Text, nullable=False),
        sa.Column("income", sa.Numeric(14, 2), nullable=False),
        sa.Column("loyalty_points", sa.Integer, nullable=False),
        sa.Column("tenure_years", sa.Float, nullable=False),
        sa.Column("products_held", sa.Integer, nullable=False),
        sa.Column("digital_engagement", sa.Float, nullable=False),
        sa.Column("website_visits", sa.Integer, nullable=False),
        sa.Column("past_purchases", sa.Integer, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        schema="raw",
    )
    op.create_index("customers_customer", "customers", ["customer_id", "snapshot_date"], schema="raw")
    op.create_table(
        "consents",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        schema="raw",
    )

    # -- ops: decisions, send lists and the day's bookkeeping ------------------------------
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.Text, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id"), nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("arm_id", sa.Integer, sa.ForeignKey("ops.arms.arm_id"), nullable=False),
        sa.Column("decision_date", sa.Date, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segment", sa.Text),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Text, nullable=False),
        sa.Column("strategy", sa.Text),
        sa.Column("phase", sa.Text),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("bandit_score", sa.Float),
        sa.Column("model_score", sa.Float),
        sa.Column("blend_score", sa.Float),
        sa.Column("selected_by", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float),
        sa.Column("explored", sa.Boolean, nullable=False),
        sa.Column("model_version", sa.Text),
        sa.Column("treatment_group", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("propensity > 0 and propensity <= 1", name="propensity_range"),
        sa.CheckConstraint("treatment_group in ('treatment', 'control')", name="group_known"),
        sa.CheckConstraint("source in ('batch', 'realtime')", name="source_known"),
        schema="ops",
    )
    op.create_index("decisions_campaign_date", "decisions", ["campaign_id", "decision_date"], schema="ops")
    op.create_index("decisions_customer", "decisions", ["customer_id", "decision_date"], schema="ops")
    # One batch decision per customer, campaign and day: what makes a re-run idempotent.
    op.create_index(
        "decisions_batch_unique",
        "decisions",
        ["campaign_id", "decision_date", "customer_id"],
        unique=True,
        schema="ops",
        postgresql_where=sa.text("source = 'batch'"),
    )
    op.create_table(
        "send_lists",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id"), primary_key=True),
        sa.Column("list_date", sa.Date, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("n_control", sa.Integer, nullable=False, server_default="0"),
        sa.Column("model_version", sa.Text),
        sa.Column("csv_path", sa.Text),
        sa.Column("parquet_path", sa.Text),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status in ('draft', 'published')", name="status_known"),
        schema="ops",
    )
    op.create_table(
        "suppressions",
        sa.Column("customer_id", sa.Text, primary_key=True),
        # 0 = every campaign (a primary key cannot hold NULL).
        sa.Column("campaign_id", sa.Integer, primary_key=True, server_default="0"),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("added_on", sa.Date, nullable=False),
        schema="ops",
    )
    op.create_table(
        "ingested_files",
        sa.Column("checksum", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("rows_loaded", sa.Integer, nullable=False),
        sa.Column("rows_skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_quarantined", sa.Integer, nullable=False),
        # A rejected file (too many bad rows) is kept for the record and tried again next run.
        sa.Column("status", sa.Text, nullable=False, server_default="loaded"),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind in ('interactions', 'customers', 'consents')", name="kind_known"),
        sa.CheckConstraint("status in ('loaded', 'rejected')", name="status_known"),
        schema="ops",
    )
    op.create_index("ingested_files_date", "ingested_files", ["logical_date"], schema="ops")
    op.create_table(
        "quarantine",
        sa.Column("quarantine_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("source_file", "line_no", name="quarantine_file_line"),
        schema="ops",
    )
    op.create_index("quarantine_date", "quarantine", ["logical_date"], schema="ops")
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("alert_date", sa.Date, nullable=False),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ops.campaigns.campaign_id")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("severity in ('info', 'warning', 'critical')", name="severity_known"),
        schema="ops",
    )
    # Re-running a day's monitoring replaces, never duplicates, its alerts.
    op.create_index(
        "alerts_day_kind",
        "alerts",
        ["alert_date", sa.text("coalesce(campaign_id, 0)"), "kind"],
        unique=True,
        schema="ops",
    )


def downgrade() -> None:
    for table in ("alerts", "quarantine", "ingested_files", "suppressions", "send_lists", "decisions"):
        op.drop_table(table, schema="ops")
    for table in ("consents", "customers", "interactions"):
        op.drop_table(table, schema="raw")
    op.drop_table("arms", schema="ops")
    op.drop_table("campaigns", schema="ops")
