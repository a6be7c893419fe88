"""Migration 0006 on a database of its own (it goes down and up again): a minute or hour window
is stored in attribution_window_seconds, a day window in attribution_window_days as before,
never both or neither; downgrading turns a minute window into the days that cover it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from pipelines import migrate
from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from tests.conftest import _create_local_database

BASE = {"name": "x", "start_date": "2026-11-01", "parameters": {"channel": ["email", "sms"]}}


@pytest.fixture
def scratch() -> Iterator[sa.Engine]:
    created = _create_local_database()
    if created is None:
        pytest.skip("no local PostgreSQL to create a scratch database in")
    url, admin = created
    engine = sa.create_engine(url)
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)'))
        admin.dispose()


def _columns(engine: sa.Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select name, attribution_window_days, attribution_window_seconds, "
                "definition -> 'attribution_window_days', definition -> 'attribution_window' "
                "from ops.campaigns order by name"
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def test_windows_in_one_column_each_and_down_again(scratch: sa.Engine) -> None:
    for name, extra in (("days", {"attribution_window": "2d"}), ("minutes", {"attribution_window": "90m"})):
        apply_campaign(scratch, CampaignSpec.model_validate(BASE | {"name": name} | extra))
    assert _columns(scratch) == {"days": (2, None, 2, None), "minutes": (None, 5400, None, "90m")}
    with pytest.raises(sa.exc.IntegrityError), scratch.begin() as conn:
        conn.execute(sa.text("update ops.campaigns set attribution_window_seconds = 60 where name = 'days'"))
    with pytest.raises(sa.exc.IntegrityError), scratch.begin() as conn:
        conn.execute(
            sa.text("update ops.campaigns set attribution_window_seconds = 30 where name = 'minutes'")
        )

    with scratch.connect() as conn:  # the older code's view: days only, in the column and definition
        cfg = migrate._config(scratch)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        conn.commit()
    with scratch.connect() as conn:
        rows = conn.execute(
            sa.text("select name, attribution_window_days, definition from ops.campaigns order by name")
        ).all()
    assert [(r.name, r.attribution_window_days, r.definition["attribution_window_days"]) for r in rows] == [
        ("days", 2, 2),
        ("minutes", 1, 1),  # 90 minutes: covered by the decision's day and the next
    ]
    assert all("attribution_window" not in r.definition for r in rows)
    assert migrate.upgrade(scratch) == migrate.head_revision(scratch)
