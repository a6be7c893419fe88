"""Campaigns and arms in `ops`: apply a definition idempotently, read them back.

Arm ids are stable: an arm is found again by its canonical key, a value removed
from the parameter space retires its arms (history stays), and adding it back
reactivates them under the same ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from pipelines.campaign_spec import CampaignSpec, arm_key
from pipelines.errors import NotFound, UserError


class InvalidStoredCampaign(UserError):
    """A campaign in ops.campaigns no longer validates (edited by hand, or older rules)."""


@dataclass(frozen=True)
class ApplyResult:
    campaign_id: int
    name: str
    created: bool
    changed: bool
    arms_active: int
    arms_added: int
    arms_retired: int
    arms_reactivated: int


@dataclass(frozen=True)
class Campaign:
    """A stored campaign with its active arms, as the daily job sees it."""

    campaign_id: int
    spec: CampaignSpec
    arm_ids: list[int]
    arm_params: list[dict[str, str]]
    control_arm_id: int

    @property
    def name(self) -> str:
        return self.spec.name

    def is_active_on(self, day: date) -> bool:
        return self.spec.start_date <= day and (self.spec.end_date is None or day <= self.spec.end_date)


def apply_campaign(
    engine: sa.Engine, spec: CampaignSpec, source_file: str | Path | None = None
) -> ApplyResult:
    """Create or update a campaign and its arms in one transaction."""
    return apply_campaigns(engine, [(spec, source_file)])[0]


def apply_campaigns(
    engine: sa.Engine, specs: Sequence[tuple[CampaignSpec, str | Path | None]]
) -> list[ApplyResult]:
    """Create or update several campaigns in one transaction: all of them are stored, or none.

    A name given twice is refused before anything is written (it would silently keep the last).
    """
    check_unique_names(specs)
    with engine.begin() as conn:
        # Lock in name order, so two applies of overlapping sets cannot deadlock.
        for name in sorted({spec.name for spec, _ in specs}):
            conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
        return [_apply(conn, spec, source) for spec, source in specs]


def check_unique_names(specs: Sequence[tuple[CampaignSpec, str | Path | None]]) -> None:
    """UserError naming the second file when two definitions carry the same campaign name."""
    first_file: dict[str, str | Path | None] = {}
    for spec, source in specs:
        if spec.name in first_file:
            where = f"{source}: " if source else ""
            earlier = f" in {first_file[spec.name]}" if first_file[spec.name] else ""
            raise UserError(
                f"{where}name: campaign {spec.name!r} is already defined{earlier}; "
                "apply each campaign from one file"
            )
        first_file[spec.name] = source


def _apply(conn: sa.Connection, spec: CampaignSpec, source_file: str | Path | None) -> ApplyResult:
    definition = json.dumps(spec.as_json(), allow_nan=False)
    row = conn.execute(
        sa.text("select campaign_id, checksum from ops.campaigns where name = :n"), {"n": spec.name}
    ).first()
    params = {
        "n": spec.name,
        "d": spec.description,
        "s": spec.start_date,
        "e": spec.end_date,
        "p": spec.policy.name,
        "pp": json.dumps(spec.policy.params, allow_nan=False),
        "h": spec.holdout_share,
        "w": spec.attribution_window_days,  # null for a minute or hour window ...
        "ws": None if spec.window.by_day else spec.window.seconds,  # ... which is here
        "def": definition,
        "f": str(source_file) if source_file else None,
        "c": spec.checksum(),
    }
    if row is None:
        campaign_id = conn.execute(
            sa.text(
                """insert into ops.campaigns (name, description, start_date, end_date, policy,
                       policy_params, holdout_share, attribution_window_days,
                       attribution_window_seconds, definition, source_file, checksum)
                   values (:n, :d, :s, :e, :p, cast(:pp as jsonb), :h, :w, :ws, cast(:def as jsonb),
                       :f, :c)
                   returning campaign_id"""
            ),
            params,
        ).scalar_one()
    else:
        campaign_id = row.campaign_id
        if row.checksum != spec.checksum():
            conn.execute(
                sa.text(
                    """update ops.campaigns set description = :d, start_date = :s, end_date = :e,
                           policy = :p, policy_params = cast(:pp as jsonb), holdout_share = :h,
                           attribution_window_days = :w, attribution_window_seconds = :ws,
                           definition = cast(:def as jsonb),
                           source_file = coalesce(:f, source_file), checksum = :c, updated_at = now()
                       where campaign_id = :id"""
                ),
                {**params, "id": campaign_id},
            )
    added, retired, reactivated = _sync_arms(conn, campaign_id, spec)
    active = conn.execute(
        sa.text("select count(*) from ops.arms where campaign_id = :id and active"), {"id": campaign_id}
    ).scalar_one()
    changed = row is None or row.checksum != spec.checksum() or bool(added or retired or reactivated)
    return ApplyResult(campaign_id, spec.name, row is None, changed, active, added, retired, reactivated)


def _sync_arms(conn: sa.Connection, campaign_id: int, spec: CampaignSpec) -> tuple[int, int, int]:
    wanted = {arm_key(a): a for a in spec.arms()}
    default_key = arm_key(spec.control_arm())
    existing = {
        r.arm_key: r.active
        for r in conn.execute(
            sa.text("select arm_key, active from ops.arms where campaign_id = :id"), {"id": campaign_id}
        )
    }
    new_rows = [
        {"id": campaign_id, "k": k, "p": json.dumps(p), "ch": p.get("channel")}
        for k, p in wanted.items()
        if k not in existing
    ]
    if new_rows:
        conn.execute(
            sa.text(
                "insert into ops.arms (campaign_id, arm_key, params, channel) "
                "values (:id, :k, cast(:p as jsonb), :ch)"
            ),
            new_rows,
        )
    to_retire = [k for k, active in existing.items() if active and k not in wanted]
    to_reactivate = [k for k, active in existing.items() if not active and k in wanted]
    if to_retire:
        conn.execute(
            sa.text(
                "update ops.arms set active = false, retired_at = now() "
                "where campaign_id = :id and arm_key = any(:keys)"
            ),
            {"id": campaign_id, "keys": to_retire},
        )
    if to_reactivate:
        conn.execute(
            sa.text(
                "update ops.arms set active = true, retired_at = null "
                "where campaign_id = :id and arm_key = any(:keys)"
            ),
            {"id": campaign_id, "keys": to_reactivate},
        )
    conn.execute(
        sa.text("update ops.arms set is_default = (arm_key = :k) where campaign_id = :id"),
        {"id": campaign_id, "k": default_key},
    )
    return len(new_rows), len(to_retire), len(to_reactivate)


def list_campaigns(engine: sa.Engine) -> list[dict[str, Any]]:
    """One summary row per campaign, ordered by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """select c.campaign_id, c.name, c.start_date, c.end_date, c.policy, c.holdout_share,
                          count(a.arm_id) filter (where a.active) as arms_active,
                          count(a.arm_id) filter (where not a.active) as arms_retired
                   from ops.campaigns c left join ops.arms a using (campaign_id)
                   group by c.campaign_id order by c.name"""
            )
        ).mappings()
        return [dict(r) for r in rows]


def load_campaign_by_name(engine: sa.Engine, name: str) -> Campaign:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select campaign_id, definition from ops.campaigns where name = :n"), {"n": name}
        ).first()
        if row is None:
            known = conn.execute(sa.text("select string_agg(name, ', ' order by name) from ops.campaigns"))
            raise NotFound(f"unknown campaign {name!r}; known: {known.scalar() or 'none'}")
        return _campaign(conn, row.campaign_id, row.definition)


def load_campaign_by_id(engine: sa.Engine, campaign_id: int) -> Campaign:
    """One stored campaign; InvalidStoredCampaign (one line naming the field) if it no longer validates."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select campaign_id, definition from ops.campaigns where campaign_id = :c"),
            {"c": campaign_id},
        ).first()
        if row is None:
            raise NotFound(f"unknown campaign id {campaign_id}")
        return _campaign(conn, row.campaign_id, row.definition)


_ACTIVE_SQL = """select campaign_id, definition from ops.campaigns
                 where start_date <= :d and (end_date is null or end_date >= :d) order by campaign_id"""


def active_campaign_ids(engine: sa.Engine, day: date) -> list[int]:
    """Ids of the campaigns whose stored dates include ``day``, ordered, without validating them:
    a campaign that no longer validates then fails only its own tasks of the day."""
    with engine.connect() as conn:
        return [r.campaign_id for r in conn.execute(sa.text(_ACTIVE_SQL), {"d": day})]


def load_active_campaigns(engine: sa.Engine, day: date) -> list[Campaign]:
    """Campaigns whose dates include ``day``, ordered by id; InvalidStoredCampaign if one no longer
    validates (the daily job uses :func:`active_campaign_ids` and loads each campaign on its own)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(_ACTIVE_SQL), {"d": day}).all()
        return [_campaign(conn, r.campaign_id, r.definition) for r in rows]


def _campaign(conn: sa.Connection, campaign_id: int, definition: dict[str, Any]) -> Campaign:
    arms = conn.execute(
        sa.text(
            "select arm_id, params, is_default from ops.arms "
            "where campaign_id = :id and active order by arm_id"
        ),
        {"id": campaign_id},
    ).all()
    try:
        spec = CampaignSpec.model_validate(definition)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "definition"
        name = definition.get("name") if isinstance(definition, dict) else None
        raise InvalidStoredCampaign(
            f"stored campaign {name!r} (id {campaign_id}) no longer validates: {field}: {first['msg']}; "
            "apply a corrected definition with `campaignopt campaign apply`"
        ) from None
    if not arms:
        raise InvalidStoredCampaign(f"stored campaign {spec.name!r} (id {campaign_id}) has no active arm")
    control = next((a.arm_id for a in arms if a.is_default), arms[0].arm_id)
    return Campaign(
        campaign_id=campaign_id,
        spec=spec,
        arm_ids=[a.arm_id for a in arms],
        arm_params=[a.params for a in arms],
        control_arm_id=control,
    )
