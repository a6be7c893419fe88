"""Attribution windows in minutes or hours (issue 9; pipelines/attribution.py):

- ops.campaigns.attribution_window_seconds: the window of a campaign that gives it in minutes or
  hours (exact timestamps); null for day windows, which stay in attribution_window_days (now
  null for the others). Exactly one of the two is set. The definition JSON stays what the marts
  and the service read; the columns are its copy for people and ad-hoc SQL.
- an index on real-time decisions by (campaign_id, decided_at): the snapshot folds a minute or
  hour window's matured decisions every few seconds by decision time, so it must not scan a day.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("attribution_window_seconds", sa.Integer), schema="ops")
    op.alter_column("campaigns", "attribution_window_days", nullable=True, schema="ops")
    op.create_check_constraint(
        "attribution_window_one_unit",
        "campaigns",
        "(attribution_window_days is null) <> (attribution_window_seconds is null)",
        schema="ops",
    )
    op.create_check_constraint(
        "attribution_window_seconds_range",
        "campaigns",
        "attribution_window_seconds between 60 and 90 * 86400",
        schema="ops",
    )
    op.create_index(
        "decisions_realtime_decided_at",
        "decisions",
        ["campaign_id", "decided_at"],
        schema="ops",
        postgresql_where=sa.text("source = 'realtime'"),
    )


def downgrade() -> None:
    op.drop_index("decisions_realtime_decided_at", table_name="decisions", schema="ops")
    op.drop_constraint("attribution_window_seconds_range", "campaigns", schema="ops")
    op.drop_constraint("attribution_window_one_unit", "campaigns", schema="ops")
    # The older code knows day windows only (and no default reward): a minute or hour window
    # becomes the days that cover it, in the column and in the definition it validates.
    op.execute(
        """update ops.campaigns
           set attribution_window_days = ceil(attribution_window_seconds / 86400.0),
               definition = (definition - 'attribution_window' - 'default_reward')
                   || jsonb_build_object('attribution_window_days',
                                         ceil(attribution_window_seconds / 86400.0)::integer)
           where attribution_window_days is null"""
    )
    op.execute("update ops.campaigns set definition = definition - 'default_reward'")
    op.alter_column("campaigns", "attribution_window_days", nullable=False, schema="ops")
    op.drop_column("campaigns", "attribution_window_seconds", schema="ops")
