"""Applying campaigns: idempotent, stable arm ids, retired arms keep their history."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign, list_campaigns, load_active_campaigns

REPO = Path(__file__).resolve().parents[2]


def arm_ids(engine: sa.Engine) -> dict[str, tuple[int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select arm_key, arm_id, active from ops.arms"))
        return {r.arm_key: (r.arm_id, r.active) for r in rows}


def test_apply_twice_changes_nothing(clean_engine: sa.Engine) -> None:
    spec = load_campaign(REPO / "campaigns/cross_sell.yaml")
    first = apply_campaign(clean_engine, spec)
    before = arm_ids(clean_engine)
    second = apply_campaign(clean_engine, spec)
    assert first.created and first.arms_added == 56 and first.arms_active == 56
    assert not second.created and not second.changed and second.arms_added == 0
    assert arm_ids(clean_engine) == before


def test_removing_a_value_retires_arms_and_adding_it_back_reuses_ids(
    clean_engine: sa.Engine, tmp_path: Path
) -> None:
    original = (REPO / "campaigns/card_cashback.yaml").read_text()
    apply_campaign(clean_engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    before = arm_ids(clean_engine)

    narrowed = tmp_path / "narrowed.yaml"
    narrowed.write_text(original.replace("channel: [email, sms]", "channel: [email]"))
    result = apply_campaign(clean_engine, load_campaign(narrowed))
    after = arm_ids(clean_engine)
    assert (result.arms_retired, result.arms_active) == (4, 4)
    assert {k for k, (_, active) in after.items() if not active} == {k for k in before if "channel=sms" in k}
    assert {k: i for k, (i, _) in after.items()} == {k: i for k, (i, _) in before.items()}

    restored = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/card_cashback.yaml"))
    assert restored.arms_reactivated == 4 and restored.arms_added == 0
    assert arm_ids(clean_engine) == before


def test_list_and_active_campaigns(clean_engine: sa.Engine) -> None:
    from datetime import date

    for name in ("card_cashback", "cross_sell"):
        apply_campaign(clean_engine, load_campaign(REPO / f"campaigns/{name}.yaml"))
    rows = list_campaigns(clean_engine)
    assert [(r["name"], r["arms_active"]) for r in rows] == [("card-cashback", 8), ("cross-sell", 56)]
    active = load_active_campaigns(clean_engine, date(2027, 3, 1))  # card-cashback ended in January
    assert [c.name for c in active] == ["cross-sell"]
    (campaign,) = active
    assert campaign.control_arm_id in campaign.arm_ids
    assert campaign.arm_params[campaign.arm_ids.index(campaign.control_arm_id)]["channel"] == "email"
