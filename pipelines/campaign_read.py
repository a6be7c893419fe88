"""Read a stored campaign as the API shows it: its definition and every arm, retired ones too."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pipelines.errors import NotFound


def campaign_detail(engine: sa.Engine, campaign_id: int) -> dict[str, Any]:
    """``{campaign_id, name, definition, created_at, updated_at, arms: [...]}``; NotFound naming the id."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "select campaign_id, name, definition, created_at, updated_at from ops.campaigns "
                    "where campaign_id = :c"
                ),
                {"c": campaign_id},
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"unknown campaign id {campaign_id}")
        arms = conn.execute(
            sa.text(
                "select arm_id, arm_key, params, active, is_default, retired_at from ops.arms "
                "where campaign_id = :c order by arm_id"
            ),
            {"c": campaign_id},
        ).mappings()
        return {**row, "arms": [dict(a) for a in arms]}


def campaign_name(engine: sa.Engine, campaign_id: int) -> str:
    """The stored name of campaign ``campaign_id``; NotFound naming the id."""
    with engine.connect() as conn:
        name = conn.execute(
            sa.text("select name from ops.campaigns where campaign_id = :c"), {"c": campaign_id}
        ).scalar()
    if name is None:
        raise NotFound(f"unknown campaign id {campaign_id}")
    return name


def campaign_id_by_name(engine: sa.Engine, name: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select campaign_id from ops.campaigns where name = :n"), {"n": name}
        ).scalar()
