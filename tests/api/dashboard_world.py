"""A small world for the dashboard tests, counted by hand. T is the UTC day of the test; the
attribution window is 7 days, so decisions of T - 20 and T - 19 have matured. A 4-arm campaign
(offer_type x channel: A0 = credit_card/email, the default, A1 = credit_card/sms, A2 = loan/email,
A3 = loan/sms; email 0.5 a send, sms 2.0; prior Beta(1, 9); holdout_share 0.2). Real-time
decisions, their conversions (no value: 100 each) posted to POST /feedback:

    T - 20, segment middle_mid   treatment A3 x 40 (8 convert), control A0 x 10 (1 converts)
    T - 19, segment young_low    treatment A1 x 40 (4 convert), control A0 x 10 (1 converts)
    T - 1                        5 batch treatment decisions on A3, pending

    performance (30 days): treatment 85 sends, 80 matured, 12 conversions (15%); control 20, 2 (10%);
        lift +5 points; revenue 14 x 100 = 1400; cost 45 x 2 + 40 x 2 + 20 x 0.5 = 180; ROI 1220 / 180
    per day: T - 20 treatment 8/40 = 20%, control 1/10 = 10% (cumulative lift +10 points);
             T - 19 treatment 4/40 = 10%, control 1/10 (cumulative lift +5 points)
    sample ratio: control 20 of 105 sends against 0.2 expected (21 of 105):
        chi2 = 1/21 + 1/84 = 0.0595, p = 0.807: no mismatch
    offer_type x channel: credit_card/email 20/2 -> Beta(3, 27), credit_card/sms 40/4 -> Beta(5, 45),
        loan/email 0/0 -> Beta(1, 9), loan/sms 40/8 -> Beta(9, 41)
    segment x arm: middle_mid A0 10/1, A3 40/8; young_low A0 10/1, A1 40/4; the others the prior

The logged propensity and explored flag of the treatment decisions (tests/api/
test_dashboard_learning.py derives the off-policy estimates from them): T - 20 A3 0.8, not
explored; T - 19 A1 0.4, all explored; T - 1 A3 0.5, not explored.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from pipelines.campaign_store import load_campaign_by_id
from tests.api.conftest import auth
from tests.api.realtime_world import add_world, fresh_world
from tests.pipelines.seed_rows import insert_decisions, noon

# (day offset from T, segment, group, arm index, sends, conversions)
PLAN = (
    (20, "middle_mid", "treatment", 3, 40, 8),
    (20, "middle_mid", "control", 0, 10, 1),
    (19, "young_low", "treatment", 1, 40, 4),
    (19, "young_low", "control", 0, 10, 1),
)
# (day offset, group) -> (propensity, explored) of its decisions; control keeps 1.0, not explored
LOGGED = {(20, "treatment"): (0.8, False), (19, "treatment"): (0.4, True)}


def build_world(server, keys: dict, engine: sa.Engine) -> dict:
    fresh_world(engine)
    today = datetime.now(UTC).date()
    campaign_id = add_world(
        engine,
        [],
        name="dashboard-demo",
        channel_costs={"email": 0.5, "sms": 2.0},
        policy={"name": "thompson", "params": {"prior_alpha": 1.0, "prior_beta": 9.0}},
        attribution_window_days=7,
        holdout_share=0.2,
    )
    arms = load_campaign_by_id(engine, campaign_id).arm_ids  # in arm_id order: A0..A3
    rows, segments, events = [], {}, []
    for back, segment, group, arm, sends, converting in PLAN:
        day = today - timedelta(days=back)
        for i in range(sends):
            decision_id = f"{group[0]}{back}-{i}"
            rows.append({"decision_id": decision_id, "arm_id": arms[arm], "treatment_group": group,
                         "source": "realtime", "decision_date": day})  # fmt: skip
            if (back, group) in LOGGED:
                rows[-1]["propensity"], rows[-1]["explored"] = LOGGED[back, group]
            segments[decision_id] = segment
            if i < converting:
                at = noon(day + timedelta(days=1)).isoformat()
                events.append({"event_id": f"ev-{decision_id}", "decision_id": decision_id,
                               "event_type": "conversion", "occurred_at": at})  # fmt: skip
    rows += [
        {"decision_id": f"p{i}", "arm_id": arms[3], "decision_date": today - timedelta(days=1)}
        for i in range(5)
    ]
    for row in rows:
        row.update(campaign_id=campaign_id, customer_id=f"cu-{row['decision_id']}")
    insert_decisions(engine, rows)
    with engine.begin() as conn:  # the segment at decision time, which the snapshot folds by
        conn.execute(
            sa.text("update ops.decisions set segment = :s where decision_id = :d"),
            [{"s": s, "d": d} for d, s in segments.items()],
        )
    answer = httpx.post(f"{server.url}/feedback", json=events, headers=auth(keys["service"]), timeout=60)
    assert answer.status_code == 200 and answer.json()["counts"] == {"stored": 14}, answer.text
    # A changed campaign makes every worker reload its snapshot. After the feedback: a snapshot
    # folds the feedback of decisions as they mature, and these matured before it arrived, so a
    # reload between the decisions and their feedback would hold the decisions without it.
    with engine.begin() as conn:
        conn.execute(
            sa.text("update ops.campaigns set updated_at = now() where campaign_id = :c"), {"c": campaign_id}
        )
    deadline = time.monotonic() + 20
    # Until this worker's snapshot has folded the 100 matured real-time decisions and their 14
    # conversions.
    while True:
        body = get_json(server, keys["analyst"], f"/campaigns/{campaign_id}/parameters/performance")
        arms_now = body.get("arms", [])
        if (sum(a["matured"] for a in arms_now), sum(a["rewards"] for a in arms_now)) == (100, 14):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    return {"campaign_id": campaign_id, "arms": arms, "today": today}


def get_json(server, token: str, path: str, **params) -> dict:
    answer = httpx.get(f"{server.url}{path}", params=params, headers=auth(token), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()
