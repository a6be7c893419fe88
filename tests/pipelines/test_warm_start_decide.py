"""Warm start through the real decide step: a new campaign that starts from an old campaign's
statistics sends what worked there from its first list; without it, it explores uniformly.

Old campaign `ws-old`: loan by email converts 40% (400 of 1,000 matured sends in every segment),
credit card by email 1% (10 of 1,000). New campaigns `ws-warm` and `ws-cold`: offer_type x cta
(4 arms; `cta` is new, `channel` is gone), Thompson with the prior Beta(1, 30), no sends yet.
With strength 100, each loan arm starts at Beta(1 + 40, 30 + 60) (mean 0.31), each credit-card
arm at Beta(1 + 1, 30 + 99) (mean 0.015): a draw of a credit-card arm beats every loan draw with
a probability far below 1e-6, so every treatment customer gets a loan. Cold, each offer gets
about half of them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.decide import decide_campaign, decision_stats
from pipelines.domain import SEGMENTS
from pipelines.errors import UserError
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    noon,
    random_customers,
    replace_segment_arm_stats,
    truncate_all,
)

D = date(2026, 7, 10)
OLD = {
    "name": "ws-old",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email"]},
    "holdout_share": 0.1,
}
NEW = {
    "start_date": "2026-07-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "cta": ["direct", "consultative"]},
    "policy": {"name": "thompson", "params": {"prior_alpha": 1.0, "prior_beta": 30.0}},
    "holdout_share": 0.1,
    "frequency_caps": {"max_per_week": 100, "min_days_between": 0},
}


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict:
    truncate_all(engine)
    customers = random_customers(400, seed=5, prefix="w")
    insert_customers(engine, customers, date(2026, 7, 1))
    insert_consents(engine, [(c["customer_id"], "email", noon(date(2026, 6, 1)), True) for c in customers])
    old = add_campaign(engine, OLD)
    warm = add_campaign(
        engine, {**NEW, "name": "ws-warm", "warm_start": {"from_campaign": "ws-old", "strength": 100}}
    )
    cold = add_campaign(engine, {**NEW, "name": "ws-cold"})
    run_dbt(D)
    rates = {"loan": 0.4, "credit_card": 0.01}
    replace_segment_arm_stats(
        engine,
        [
            {"c": old.campaign_id, "s": s, "a": arm_id, "m": 1000, "r": 1000 * rates[params["offer_type"]]}
            for s in SEGMENTS
            for arm_id, params in zip(old.arm_ids, old.arm_params, strict=True)
        ],
    )
    return {"warm": warm, "cold": cold}


def _treatment_offers(engine: sa.Engine, campaign_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """select a.params->>'offer_type', count(*)
                   from ops.decisions d join ops.arms a using (arm_id)
                   where d.campaign_id = :c and d.decision_date = :d and d.treatment_group = 'treatment'
                   group by 1"""
            ),
            {"c": campaign_id, "d": D},
        ).all()
    return dict(rows)


def test_the_warm_statistics_by_hand(engine: sa.Engine, world: dict) -> None:
    warm = world["warm"]
    with engine.connect() as conn:
        pulls, rewards = decision_stats(conn, warm)
    loan = [k for k, p in enumerate(warm.arm_params) if p["offer_type"] == "loan"]
    card = [k for k, p in enumerate(warm.arm_params) if p["offer_type"] == "credit_card"]
    assert (pulls == 100).all()  # 1,000 sends each, capped at the strength
    assert np.allclose(rewards[:, loan], 40) and np.allclose(rewards[:, card], 1)
    with engine.connect() as conn:
        cold_pulls, _ = decision_stats(conn, world["cold"])
    assert not cold_pulls.any()


def test_the_first_list_sends_what_worked_before(engine: sa.Engine, world: dict) -> None:
    decide_campaign(engine, world["warm"], D)
    decide_campaign(engine, world["cold"], D)
    warm, cold = (
        _treatment_offers(engine, world["warm"].campaign_id),
        _treatment_offers(engine, world["cold"].campaign_id),
    )
    assert warm.get("credit_card", 0) == 0 and warm["loan"] > 300
    assert 0.35 < cold["loan"] / (cold["loan"] + cold["credit_card"]) < 0.65


def test_a_campaign_file_names_its_history_file(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "old.csv").write_text("offer_type,sends,conversions\nloan,100,30\n")
    text = (
        "name: ws-file\nstart_date: 2026-07-01\n"
        "parameters: {offer_type: [credit_card, loan], cta: [direct]}\n"
        "warm_start: {file: history/old.csv, strength: 20}\n"
    )
    (tmp_path / "ws.yaml").write_text(text)
    spec = load_campaign(tmp_path / "ws.yaml")
    assert spec.warm_start.file == str((tmp_path / "history" / "old.csv").resolve())
    (tmp_path / "history" / "old.csv").write_text("offer_type,sends,conversions\nloan,100,300\n")
    with pytest.raises(UserError, match=r"old.csv line 2: more conversions than sends"):
        load_campaign(tmp_path / "ws.yaml")
    (tmp_path / "ws.yaml").write_text(text.replace("file: history/old.csv", "from_campaign: ws-file"))
    with pytest.raises(UserError, match="cannot warm-start from itself"):
        load_campaign(tmp_path / "ws.yaml")
    (tmp_path / "ws.yaml").write_text(text.replace("file: history/old.csv, ", ""))
    with pytest.raises(UserError, match="give one of from_campaign"):
        load_campaign(tmp_path / "ws.yaml")
