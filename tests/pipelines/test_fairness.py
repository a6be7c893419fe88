"""The fair-lending monitor on a list built by hand, every figure derived here.

Campaign `fair`: offer_type credit_card (the default arm) or loan, by email. 400 customers in
the snapshot of D - 5: c000-c199 men, c200-c399 women; c000-c099 and c200-c299 are 25 (young),
the rest 40 (middle); c390-c399 are missing from it, known from a snapshot of D - 9 only. A later
snapshot (D + 1) makes every woman a man: the monitor must read each customer as of D.

    holdout (control, default arm)   c000-c019, c200-c219                   40
    loan (treatment)                 c020-c199 (180 men), c220-c239 (20 women)  200
    credit_card (treatment)          c240-c399 (160 women)                  160

Eligible: everyone decided, 200 men and 200 women (50/50); young 200, middle 200.
- loan by gender: 90/10 against 50/50: variance 0.4, women 10% of recipients (Wilson upper bound
  14.9%) against 80% of 50% = 40%: flagged, both ways.
- credit_card by gender: 0/100: variance 0.5, men short: flagged.
- loan by age band: young c020-c099 (80) + c220-c239 (20) = 100 of 200: variance 0: not flagged.
- credit_card by age band: young c240-c299 = 60 of 160 (37.5% against 50%): variance 0.125, but
  the interval (about 0.05-0.20) does not exclude 10%, and 37.5% (Wilson upper bound 45.3%) is not
  significantly below 40%: not flagged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.fairness import Thresholds, campaign_fairness, fairness_alerts, total_variation, wilson
from tests.pipelines.seed_rows import add_campaign, insert_customers, insert_decisions, truncate_all

CLI = str(Path(sys.executable).with_name("campaignopt"))
D = date(2026, 6, 10)
FAIR = {
    "name": "fair",
    "start_date": "2026-06-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email"]},
    "default_arm": {"offer_type": "credit_card", "channel": "email"},
    "holdout_share": 0.1,
}
LIMITS = Thresholds(max_variance=0.10, min_share_ratio=0.8, min_recipients=100)


def _customer(i: int, gender: str) -> dict:
    return {
        "customer_id": f"c{i:03d}",
        "age": 25 if i % 200 < 100 else 40,
        "income": 50_000.0,
        "gender": gender,
    }


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> int:
    return build_fair_world(engine)


def build_fair_world(engine: sa.Engine) -> int:
    """The world of the module docstring; returns the campaign id."""
    truncate_all(engine)
    campaign = add_campaign(engine, FAIR)
    people = [_customer(i, "M" if i < 200 else "F") for i in range(400)]
    insert_customers(engine, people[:390], D - timedelta(days=5))
    insert_customers(engine, people[390:], D - timedelta(days=9))  # not in the latest extract
    insert_customers(engine, [_customer(i, "M") for i in range(400)], D + timedelta(days=1))
    with engine.connect() as conn:
        arm = dict(
            conn.execute(
                sa.text("select params->>'offer_type', arm_id from ops.arms where campaign_id = :c"),
                {"c": campaign.campaign_id},
            ).all()
        )
    rows = []
    for i in range(400):
        control = i % 200 < 20
        offer = "credit_card" if control or i >= 240 else "loan"
        rows.append(
            {
                "decision_id": f"d{i:03d}",
                "campaign_id": campaign.campaign_id,
                "customer_id": f"c{i:03d}",
                "arm_id": arm[offer],
                "decision_date": D,
                "treatment_group": "control" if control else "treatment",
            }
        )
    insert_decisions(engine, rows)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into ops.send_lists (campaign_id, list_date, status, n_rows) "
                "values (:c, :d, 'draft', 400)"
            ),
            {"c": campaign.campaign_id, "d": D},
        )
    return campaign.campaign_id


def _offer(figures: dict, value: str, attribute: str) -> dict:
    return next(o for o in figures["offers"] if o["value"] == value and o["attribute"] == attribute)


def test_variance_and_wilson_by_hand() -> None:
    assert total_variation([0.9, 0.1], [0.5, 0.5]) == pytest.approx(0.4)
    assert total_variation([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    low, high = wilson(20, 200)
    # centre (0.1 + z²/400) / (1 + z²/200) = 0.10754, half-width 0.04187 (z = 1.96)
    assert (low, high) == (pytest.approx(0.0657, abs=1e-4), pytest.approx(0.1494, abs=1e-4))


def test_shares_variances_and_flags(engine: sa.Engine, world: int) -> None:
    with engine.connect() as conn:
        figures = campaign_fairness(conn, world, D, LIMITS)
    assert (figures["eligible"], figures["treatment"]) == (400, 360)
    loan = _offer(figures, "loan", "gender")
    assert loan["recipients"] == 200 and loan["variance"] == pytest.approx(0.4)
    assert {g["group"]: (g["eligible_share"], g["recipient_share"]) for g in loan["groups"]} == {
        "F": (0.5, 0.1),
        "M": (0.5, 0.9),
    }
    assert loan["over_variance"] and loan["under_represented"] == ["F"] and loan["flagged"]
    card = _offer(figures, "credit_card", "gender")
    assert (card["recipients"], card["variance"], card["under_represented"]) == (160, 0.5, ["M"])
    assert not _offer(figures, "loan", "age_band")["flagged"]
    assert _offer(figures, "loan", "age_band")["variance"] == 0.0
    card_age = _offer(figures, "credit_card", "age_band")
    assert card_age["variance"] == pytest.approx(0.125)
    assert card_age["variance_low"] < 0.10 < card_age["variance_high"] and not card_age["flagged"]
    with engine.connect() as conn:  # the bootstrap is seeded by what it measures: the same again
        assert campaign_fairness(conn, world, D, LIMITS) == figures


def test_too_few_recipients_are_reported_never_flagged(engine: sa.Engine, world: int) -> None:
    with engine.connect() as conn:
        figures = campaign_fairness(conn, world, D, Thresholds(min_recipients=201))
    assert _offer(figures, "loan", "gender")["variance"] == pytest.approx(0.4)
    assert not any(o["flagged"] for o in figures["offers"])


def test_alerts_name_the_offer_attribute_and_reason(engine: sa.Engine, world: int) -> None:
    with engine.connect() as conn:
        alerts = fairness_alerts(conn, D, LIMITS)
        assert fairness_alerts(conn, D + timedelta(days=1), LIMITS) == []  # no list that day
    assert sorted(a["kind"] for a in alerts) == [
        "fair_lending:offer_type=credit_card:gender",
        "fair_lending:offer_type=loan:gender",
    ]
    loan = next(a for a in alerts if a["kind"].endswith("loan:gender"))
    assert loan["campaign_id"] == world and loan["severity"] == "warning"
    assert loan["message"].startswith("fair: offer_type=loan by gender: variance 40.0% (95% CI ")
    assert "F 10.0% of recipients against 50.0% of the eligible (below 80% of it)" in loan["message"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "fairness", "report", *args], capture_output=True, text=True, env=os.environ, timeout=120
    )


def test_cli_report_json_and_table(world: int) -> None:
    as_json = _cli("--campaign", "fair", "--json")  # the latest list: D
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["date"] == D.isoformat()
    assert _offer(figures, "loan", "gender")["variance"] == pytest.approx(0.4)
    table = _cli("--campaign", "fair", "--day", D.isoformat())
    assert table.returncode == 0, table.stderr
    assert "Fair lending, fair, 2026-06-10: 400 eligible, 360 in treatment" in table.stdout
    assert "variance, F short" in table.stdout


def test_cli_unknown_campaign_or_bad_day_is_one_line(world: int) -> None:
    unknown = _cli("--campaign", "nope")
    assert (unknown.returncode, unknown.stderr.count("\n")) == (4, 1), unknown.stderr
    assert "nope" in unknown.stderr
    bad = _cli("--campaign", "fair", "--day", "2026-13-01")
    assert (bad.returncode, bad.stderr) == (2, "error: --day: '2026-13-01' is not a date (YYYY-MM-DD)\n")


def test_a_configured_proxy_is_monitored_like_a_protected_attribute(
    engine: sa.Engine, world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """region (a CUSTOMER_EXTRA_FEATURES column) as a proxy: north is c000-c099 and c200-c299, half
    of the 400 eligible. Loan's 200 recipients (c020-c199, c220-c239) are 100 north: variance 0.
    credit_card's 160 (c240-c399) are 60 north: 37.5% against 50%, variance 0.125."""
    from pipelines.settings import Settings, get_settings

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update raw.customers set extra_features = jsonb_build_object('region', "
                "case when substr(customer_id, 2)::int % 200 < 100 then 'north' else 'south' end)"
            )
        )
    monkeypatch.setenv("CUSTOMER_EXTRA_FEATURES", "region:categorical")
    monkeypatch.setenv("FAIRNESS_PROXY_FEATURES", "region")
    get_settings.cache_clear()
    try:
        with engine.connect() as conn:
            figures = campaign_fairness(conn, world, D, LIMITS)
    finally:
        monkeypatch.delenv("FAIRNESS_PROXY_FEATURES")
        get_settings.cache_clear()
    loan, card = _offer(figures, "loan", "region"), _offer(figures, "credit_card", "region")
    assert (loan["recipients"], loan["variance"]) == (200, pytest.approx(0.0))
    assert (card["recipients"], card["variance"]) == (160, pytest.approx(0.125))
    assert {g["group"]: g["recipient_share"] for g in card["groups"]} == {
        "north": pytest.approx(0.375),
        "south": pytest.approx(0.625),
    }
    assert _offer(figures, "loan", "gender")["variance"] == pytest.approx(0.4)  # unchanged
    with pytest.raises(ValueError, match="FAIRNESS_PROXY_FEATURES item 'tier': not a categorical"):  # noqa: PT011
        Settings(customer_extra_features="tier:numeric", fairness_proxy_features="tier")
