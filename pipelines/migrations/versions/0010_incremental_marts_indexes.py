"""Indexes for the incremental marts' daily queries (issue 11), and their old tables dropped.

- ops.decisions gets a BRIN index on decision_date: each dbt build reads the decisions of the
  last day in the marts or later (new ones), and decisions are written day by day, so a BRIN
  index finds them at almost no cost per insert (a btree would be paid by every decide).
  raw.interactions already has one on logical_date (0003), which the build uses for the events
  landed since its last day; both tables stay unpartitioned.
- The analytics tables that became incremental (int_decisions_attributed, int_decisions_segmented,
  campaign_daily_kpis, training_examples) are dropped if a previous version built them: they lack
  the columns the incremental builds keep (built_as_of, channel, campaign_checksum), and the next
  `dbt build` creates them again from all history (analytics is dbt's schema; nothing is lost).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

REBUILT_BY_DBT = (
    "int_decisions_attributed",
    "int_decisions_segmented",
    "campaign_daily_kpis",
    "training_examples",
)


def upgrade() -> None:
    op.create_index(
        "decisions_decision_date", "decisions", ["decision_date"], schema="ops", postgresql_using="brin"
    )
    for table in REBUILT_BY_DBT:
        op.execute(f"drop table if exists analytics.{table} cascade")


def downgrade() -> None:
    # The incremental tables are valid tables for the previous version's dbt build to replace.
    op.drop_index("decisions_decision_date", table_name="decisions", schema="ops")
