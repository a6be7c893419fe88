"""GET /campaigns/{id}/performance and /campaigns/{id}/parameters/performance over real HTTP.

The world, with T the UTC day of the test and D = T - 20 (matured: the window is 7 days): a 4-arm
campaign (offer_type x channel: A0 = credit_card/email, the default, A1 = credit_card/sms,
A2 = loan/email, A3 = loan/sms; email 0.5 a send, sms 2.0; prior Beta(1, 9)). Real-time decisions
of D, their conversions posted to POST /feedback:

    treatment  A1 x 20 (2 convert, no value -> 100 each), A2 x 30 (none), A3 x 50 (10 convert,
               worth 200 each); the first 25 of them (t0..t19, u0..u4) explored
    control    A0 x 50 (3 convert, no value)
    pending    batch treatment decisions of T - 1 on A3: p0..p4

    performance: treatment 105 sends, 100 matured, 12 conversions (0.12); control 50, 3 (0.06);
                 lift 0.06; cost 20 x 2 + 30 x 0.5 + 55 x 2 + 50 x 0.5 = 190; revenue 2500
    parameters (the service's snapshot folds the matured real-time ones):
                 A0 50 / 3 -> Beta(4, 56), A1 20 / 2 -> Beta(3, 27), A2 30 / 0 -> Beta(1, 39),
                 A3 50 / 10 -> Beta(11, 49); email 80 / 3 -> Beta(4, 86), sms 70 / 12 -> Beta(13, 67)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from pipelines.campaign_store import load_campaign_by_id
from tests.api.conftest import auth
from tests.api.realtime_world import add_world, fresh_world
from tests.pipelines.seed_rows import insert_decisions, noon
from tests.pipelines.test_performance import assert_lift_of_12_100_against_3_50, figures

ENDPOINTS = ("performance", "parameters/performance")


@pytest.fixture(scope="module")
def world(server, keys, engine: sa.Engine) -> dict:
    fresh_world(engine)
    today = datetime.now(UTC).date()
    day = today - timedelta(days=20)
    campaign_id = add_world(
        engine,
        [],
        channel_costs={"email": 0.5, "sms": 2.0},
        policy={"name": "thompson", "params": {"prior_alpha": 1.0, "prior_beta": 9.0}},
        attribution_window_days=7,
        holdout_share=0.1,
    )
    arms = load_campaign_by_id(engine, campaign_id).arm_ids  # in arm_id order: A0..A3
    plan = [("t", arms[1], 20, 2, None), ("u", arms[2], 30, 0, None), ("v", arms[3], 50, 10, 200.0)]
    rows, conversions = [], []
    for prefix, arm, n, converting, value in plan:
        for i in range(n):
            rows.append({"decision_id": f"{prefix}{i}", "arm_id": arm, "source": "realtime"})
            if i < converting:
                conversions.append((f"{prefix}{i}", value))
    for i, row in enumerate(rows):
        row["explored"] = i < 25
    rows += [
        {"decision_id": f"c{i}", "arm_id": arms[0], "treatment_group": "control", "source": "realtime"}
        for i in range(50)
    ]
    conversions += [(f"c{i}", None) for i in range(3)]
    rows += [{"decision_id": f"p{i}", "arm_id": arms[3], "source": "batch"} for i in range(5)]
    for row in rows:
        pending = row["decision_id"].startswith("p")
        row.update(campaign_id=campaign_id, customer_id=f"cu-{row['decision_id']}")
        row["decision_date"] = today - timedelta(days=1) if pending else day
    insert_decisions(engine, rows)
    with engine.begin() as conn:  # the segment at decision time, which the snapshot folds by
        conn.execute(
            sa.text("update ops.decisions set segment = 'middle_mid' where campaign_id = :c"),
            {"c": campaign_id},
        )
    events = [
        {"event_id": f"ev-{d}", "decision_id": d, "event_type": "conversion",
         "occurred_at": noon(day + timedelta(days=1)).isoformat()} | ({"value": v} if v else {})
        for d, v in conversions
    ]  # fmt: skip
    answer = httpx.post(f"{server.url}/feedback", json=events, headers=auth(keys["service"]), timeout=60)
    assert answer.status_code == 200 and answer.json()["counts"] == {"stored": 15}, answer.text
    with engine.begin() as conn:  # a changed campaign makes every worker reload its snapshot
        conn.execute(
            sa.text("update ops.campaigns set updated_at = now() where campaign_id = :c"), {"c": campaign_id}
        )
    deadline = time.monotonic() + 20
    while True:  # until this worker's snapshot has folded the 150 matured decisions and 15 conversions
        body = get(server, keys["analyst"], campaign_id, "parameters/performance").json()
        arms_now = body.get("arms", [])
        if (sum(a["matured"] for a in arms_now), sum(a["rewards"] for a in arms_now)) == (150, 15):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    return {"campaign_id": campaign_id, "arms": arms, "day": day, "today": today}


def get(server, token: str | None, campaign_id: int, what: str, **params) -> httpx.Response:
    headers = auth(token) if token else {}
    return httpx.get(
        f"{server.url}/campaigns/{campaign_id}/{what}", params=params, headers=headers, timeout=30
    )


def test_performance_of_the_last_30_days_matches_the_hand_count(server, keys, world) -> None:
    r = get(server, keys["analyst"], world["campaign_id"], "performance")
    assert r.status_code == 200, r.text
    body = r.json()
    today = world["today"]
    assert body["window"] == {"since": str(today - timedelta(days=29)), "until": str(today), "days": 30}
    assert body["matured_through"] == str(today - timedelta(days=8))
    assert body["treatment"] == figures(105, 100, conversions=12, explored=25, revenue=2200, cost=165)
    assert body["control"] == figures(50, 50, conversions=3, explored=0, revenue=300, cost=25)
    assert_lift_of_12_100_against_3_50(body["lift"])
    assert body["exploration_share"] == pytest.approx(25 / 105)
    assert (body["revenue"], body["cost"]) == (2500.0, 190.0)
    assert body["roi"] == pytest.approx((2500 - 190) / 190)
    assert body["pending"] == 5
    # No daily build of this campaign (none at all, or one of earlier modules, emptied): no estimate.
    assert body["regret"]["estimate"] is None and "daily build" in body["regret"]["reason"]


def test_the_window_is_chosen_by_since_until_or_days(server, keys, world) -> None:
    cid, day = world["campaign_id"], world["day"]
    recent = get(server, keys["analyst"], cid, "performance", days=5).json()
    assert recent["window"]["days"] == 5 and recent["treatment"]["sends"] == 5 and recent["pending"] == 5
    assert recent["lift"]["reason"] == "no matured treatment or control decision in the window"
    one_day = get(server, keys["admin"], cid, "performance", since=str(day), until=str(day)).json()
    assert one_day["window"]["days"] == 1 and one_day["treatment"]["sends"] == 100
    assert one_day["control"]["conversions"] == 3 and one_day["pending"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01", "until": "0001-01-01"},
        {"since": "9999-12-31", "until": "9999-12-31"},
        {"until": "9999-12-31", "days": 3660},
        {"days": 2},
    ],
)
def test_windows_at_the_ends_of_the_calendar_answer(server, keys, world, params) -> None:
    r = get(server, keys["analyst"], world["campaign_id"], "performance", **params)
    assert r.status_code == 200, r.text
    assert r.json()["treatment"]["sends"] == (5 if params == {"days": 2} else 0)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "2026-13-01"}, "query since: Input should be a valid date"),
        ({"until": "yesterday"}, "query until: Input should be a valid date"),
        ({"days": 0}, "query days: Input should be greater than or equal to 1"),
        ({"days": "x"}, "query days: Input should be a valid integer"),
        ({"since": "2026-01-01", "days": 3}, "days: give since or days, not both"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "since: 2026-02-02 is after until (2026-02-01)"),
        ({"until": "0001-01-05"}, "until: 0001-01-05 leaves no room for 30 days before it"),
        ({"since": "0001-01-01", "until": "9999-12-31"}, "since: the window may span at most 3660 days"),
    ],
)
def test_a_bad_window_is_422_naming_the_parameter(server, keys, world, params, detail) -> None:
    r = get(server, keys["analyst"], world["campaign_id"], "performance", **params)
    assert r.status_code == 422 and r.json()["detail"].startswith(detail), r.text


def test_parameters_performance_is_the_services_posteriors(server, keys, world) -> None:
    r = get(server, keys["analyst"], world["campaign_id"], "parameters/performance")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prior"] == {"alpha": 1.0, "beta": 9.0} and body["reward_kind"] == "conversion"
    statistics = body["statistics"]
    assert statistics["source"] == "service_snapshot" and statistics["marts_as_of"] is None
    assert statistics["realtime_matured_through"] == str(world["today"] - timedelta(days=8))
    arms = body["arms"]
    assert [a["arm_id"] for a in arms] == world["arms"] and arms[0]["is_default"]
    assert [(a["sends"], a["matured"], a["rewards"]) for a in arms] == [
        (50, 50, 3),
        (20, 20, 2),
        (30, 30, 0),
        (55, 50, 10),
    ]
    assert [(a["posterior_alpha"], a["posterior_beta"]) for a in arms] == [
        (4, 56),
        (3, 27),
        (1, 39),
        (11, 49),
    ]
    assert [a["posterior_mean"] for a in arms] == pytest.approx([4 / 60, 3 / 30, 1 / 40, 11 / 60])
    assert all(a["ci_low"] < a["posterior_mean"] < a["ci_high"] for a in arms)
    assert (
        sum(a["prob_best"] for a in arms) == pytest.approx(1.0)
        and max(arms, key=lambda a: a["prob_best"]) == arms[3]
    )
    values = {(v["parameter"], v["value"]): v for v in body["parameters"]}
    assert (values["channel", "email"]["posterior_alpha"], values["channel", "email"]["posterior_beta"]) == (
        4,
        86,
    )
    assert (values["channel", "sms"]["posterior_alpha"], values["channel", "sms"]["posterior_beta"]) == (
        13,
        67,
    )
    assert values["channel", "sms"]["sends"] == 75 and values["offer_type", "loan"]["matured"] == 80
    assert values["channel", "sms"]["prob_best"] > 0.99
    again = get(server, keys["admin"], world["campaign_id"], "parameters/performance").json()
    assert again["arms"] == arms and again["parameters"] == body["parameters"]  # seeded: the same answer


@pytest.mark.parametrize("what", ENDPOINTS)
def test_who_may_read(server, keys, world, what) -> None:
    cid = world["campaign_id"]
    assert get(server, None, cid, what).status_code == 401
    for token in ("unknown", "revoked"):
        assert get(server, keys[token], cid, what).status_code == 401
    forbidden = get(server, keys["service"], cid, what)
    assert forbidden.status_code == 403 and "needs admin or analyst" in forbidden.json()["detail"]
    assert get(server, keys["analyst"], cid, what).status_code == 200
    assert get(server, keys["admin"], cid, what).status_code == 200


@pytest.mark.parametrize("what", ENDPOINTS)
def test_an_unknown_campaign_is_404_naming_it(server, keys, world, what) -> None:
    r = get(server, keys["analyst"], 99_999, what)
    assert r.status_code == 404 and r.json() == {"detail": "unknown campaign id 99999"}
    assert get(server, keys["analyst"], 0, what).status_code == 422
