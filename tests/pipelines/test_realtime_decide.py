"""Real-time decisions follow the batch's rules: parity with the batch decide, caps counting both
paths, the holdout, idempotency under concurrent callers, and one-line errors.

World: 300 customers (every segment) in the `customer_features` mart built by the real dbt as of
D, email and sms consent for all, and hand-written (segment x arm) statistics in the
`segment_arm_stats` mart. Campaigns (offer_type x channel, 4 arms each):

- `rt-eps`: epsilon_greedy (epsilon 0.2, unpooled), holdout 0.2, caps that never bind.
- `rt-ts`: thompson, holdout 0.2, caps that never bind.
- `rt-caps`: thompson, the default caps (3 a week, 1 day apart), no holdout.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.stats import chi2_contingency

from pipelines.audience import eligible_audience
from pipelines.campaign_store import Campaign
from pipelines.decide import build_policy, decide_campaign, pending_sends
from pipelines.domain import SEGMENTS
from pipelines.errors import NotFound, UserError
from pipelines.realtime.optimize import NotEligible, decide_one
from pipelines.realtime.snapshot import Snapshot
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    insert_decisions,
    noon,
    random_customers,
    replace_segment_arm_stats,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 6, 15)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
SNAPSHOT = date(2026, 6, 1)
ARMS = {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]}
LOOSE_CAPS = {"max_per_week": 100, "min_days_between": 0}
CAMPAIGNS = {
    "eps": {
        "name": "rt-eps",
        "start_date": "2026-05-01",
        "parameters": ARMS,
        "policy": {"name": "epsilon_greedy", "params": {"epsilon": 0.2, "pooled": False, "top_k": 1}},
        "holdout_share": 0.2,
        "frequency_caps": LOOSE_CAPS,
    },
    "ts": {
        "name": "rt-ts",
        "start_date": "2026-05-01",
        "parameters": ARMS,
        "policy": {"name": "thompson"},
        "holdout_share": 0.2,
        "frequency_caps": LOOSE_CAPS,
    },
    "caps": {"name": "rt-caps", "start_date": "2026-05-01", "parameters": ARMS, "holdout_share": 0.0},
    "ucb": {
        "name": "rt-ucb",
        "start_date": "2026-05-01",
        "parameters": ARMS,
        "policy": {"name": "ucb"},
        "holdout_share": 0.0,
        "frequency_caps": LOOSE_CAPS,
    },
}


def _rates(k: int) -> np.ndarray:
    """Reward rate per (segment, arm): a different best arm per segment, far from the others."""
    seg = np.arange(len(SEGMENTS))[:, None]
    return np.where((seg + np.arange(k)[None, :]) % k == 0, 0.5, 0.1) + 0.02 * np.arange(k)[None, :]


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, Campaign]:
    truncate_all(engine)
    customers = random_customers(300, seed=23, prefix="r")
    insert_customers(engine, customers, SNAPSHOT)
    consented = noon(date(2026, 5, 1))
    insert_consents(
        engine, [(c["customer_id"], ch, consented, True) for c in customers for ch in ("email", "sms")]
    )
    campaigns = {key: add_campaign(engine, spec) for key, spec in CAMPAIGNS.items()}
    run_dbt(D)
    rows = []
    for key in ("eps", "ts"):
        campaign = campaigns[key]
        rates = _rates(len(campaign.arm_ids))
        for s, segment in enumerate(SEGMENTS):
            for a, arm_id in enumerate(campaign.arm_ids):
                rows.append(
                    {"c": campaign.campaign_id, "s": segment, "a": arm_id, "m": 200, "r": 200 * rates[s, a]}
                )
    replace_segment_arm_stats(engine, rows)
    return campaigns


@pytest.fixture(autouse=True)
def _no_decisions(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("delete from ops.decisions"))
        conn.execute(sa.text("delete from ops.send_lists"))
        conn.execute(sa.text("delete from ops.suppressions"))


def _batch(engine: sa.Engine, campaign: Campaign) -> dict[str, sa.Row]:
    decide_campaign(engine, campaign, D)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select * from ops.decisions where campaign_id = :c and source = 'batch'"),
            {"c": campaign.campaign_id},
        ).all()
    return {r.customer_id: r for r in rows}


def test_epsilon_greedy_parity_exact_propensities_and_holdout(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    campaign = world["eps"]
    batch = _batch(engine, campaign)
    snapshot = Snapshot.load(engine, now=NOW)
    best = np.argmax(_rates(len(campaign.arm_ids)), axis=1)
    arm_idx = {arm_id: i for i, arm_id in enumerate(campaign.arm_ids)}
    controls = 0
    for customer_id, b in sorted(batch.items()):
        rt = decide_one(
            engine, snapshot, campaign.campaign_id, customer_id, idempotency_key=f"k-{customer_id}", now=NOW
        )
        assert rt.treatment_group == b.treatment_group  # the same stable hash
        if rt.treatment_group == "control":
            controls += 1
            assert rt.arm_id == b.arm_id == campaign.control_arm_id and rt.propensity == 1.0
            assert rt.selected_by == "control"
            continue
        # Hand-derived: 4 allowed arms, epsilon 0.2: the best arm 0.8 + 0.05, every other 0.05.
        segment = SEGMENTS.index(b.segment)
        expected = 0.85 if arm_idx[rt.arm_id] == best[segment] else 0.05
        assert rt.propensity == pytest.approx(expected, abs=1e-12)
        assert b.propensity == pytest.approx(0.85 if arm_idx[b.arm_id] == best[segment] else 0.05, abs=1e-12)
        assert rt.strategy == "epsilon_greedy" and (
            rt.explored or expected == 0.85
        )  # exploring may hit the best
    assert 0.1 < controls / len(batch) < 0.3


def test_thompson_parity_same_arm_distribution_as_the_batch(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    campaign = world["ts"]
    batch = _batch(engine, campaign)
    snapshot = Snapshot.load(engine, now=NOW)
    k = len(campaign.arm_ids)
    arm_idx = {arm_id: i for i, arm_id in enumerate(campaign.arm_ids)}
    best = np.argmax(_rates(k), axis=1)
    # Arms relative to each segment's best arm (0 = best), so all segments pool into one table.
    counts = np.zeros((2, k), dtype=int)
    policy = build_policy(campaign, *snapshot.stats(campaign.campaign_id), None)
    exact = policy.arm_probabilities(np.arange(len(SEGMENTS)), rng=np.random.default_rng(5))
    for repeat in range(3):  # three requests per customer: enough draws for the test
        for customer_id, b in sorted(batch.items()):
            if b.treatment_group == "control":
                continue
            segment = SEGMENTS.index(b.segment)
            rt = decide_one(
                engine,
                snapshot,
                campaign.campaign_id,
                customer_id,
                idempotency_key=f"{repeat}-{customer_id}",
                now=NOW,
            )
            counts[1, (arm_idx[rt.arm_id] - best[segment]) % k] += 1
            if repeat == 0:
                counts[0, (arm_idx[b.arm_id] - best[segment]) % k] += 1
            # Monte Carlo propensity of the same posterior: close to the exact arm probability.
            assert rt.propensity == pytest.approx(exact[segment, arm_idx[rt.arm_id]], abs=0.03)
    counts[0] *= 3  # the batch decided once per customer
    table = counts[:, counts.sum(axis=0) > 0]
    assert chi2_contingency(table)[1] > 0.001, counts


def test_caps_count_batch_and_realtime_sends_both_ways(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    campaign = world["caps"]
    snapshot = Snapshot.load(engine, now=NOW)
    cid = campaign.campaign_id
    arm = campaign.arm_ids[0]
    # r0000: a batch send yesterday (min_days_between 1 allows today); r0001: a batch send today.
    insert_decisions(
        engine,
        [
            {
                "decision_id": "b-y",
                "campaign_id": cid,
                "customer_id": "r0000",
                "arm_id": arm,
                "decision_date": D - timedelta(days=1),
            },
            {
                "decision_id": "b-t",
                "campaign_id": cid,
                "customer_id": "r0001",
                "arm_id": arm,
                "decision_date": D,
            },
        ]
        + [  # r0002: three sends this week (max_per_week 3)
            {
                "decision_id": f"b-w{i}",
                "campaign_id": cid,
                "customer_id": "r0002",
                "arm_id": arm,
                "decision_date": D - timedelta(days=2 * i + 2),
            }
            for i in range(3)
        ],
    )
    assert decide_one(engine, snapshot, cid, "r0000", now=NOW).treatment_group == "treatment"
    with pytest.raises(
        NotEligible,
        match=r"'r0001' is not eligible for campaign 'rt-caps': frequency cap: last send on 2026-06-15",
    ):
        decide_one(engine, snapshot, cid, "r0001", now=NOW)
    with pytest.raises(NotEligible, match=r"3 sends in the last 7 days \(max_per_week 3\)"):
        decide_one(engine, snapshot, cid, "r0002", now=NOW)
    # A real-time send today blocks a second one today (min_days_between 1) ...
    decide_one(engine, snapshot, cid, "r0003", now=NOW)
    with pytest.raises(NotEligible, match="last send on 2026-06-15"):
        decide_one(engine, snapshot, cid, "r0003", now=NOW + timedelta(hours=1))
    # ... and counts in the batch list of tomorrow: r0006's two batch sends plus today's
    # real-time one make 3 in D-5..D (max_per_week 3); the batch alone would be 2.
    insert_decisions(
        engine,
        [
            {
                "decision_id": f"b-6-{i}",
                "campaign_id": cid,
                "customer_id": "r0006",
                "arm_id": arm,
                "decision_date": D - timedelta(days=2 * i + 2),
            }
            for i in range(2)
        ],
    )
    decide_one(engine, snapshot, cid, "r0006", now=NOW)
    with engine.connect() as conn:
        tomorrow, _ = eligible_audience(conn, campaign, D + timedelta(days=1))
    ids = set(tomorrow["customer_id"])
    assert "r0006" not in ids and "r0003" in ids and "r0004" in ids
    with engine.begin() as conn:
        conn.execute(sa.text("insert into ops.suppressions values ('r0005', 0, 'asked', :d)"), {"d": D})
    with pytest.raises(NotEligible, match="'r0005' is not eligible for campaign 'rt-caps': suppressed"):
        decide_one(engine, snapshot, cid, "r0005", now=NOW)


def test_touchpoint_channels_and_consent(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    campaign = world["caps"]
    snapshot = Snapshot.load(engine, now=NOW)
    sms_arms = {
        a for a, p in zip(campaign.arm_ids, campaign.arm_params, strict=True) if p["channel"] == "sms"
    }
    for i in range(10, 20):
        rt = decide_one(
            engine, snapshot, campaign.campaign_id, f"r{i:04d}", channels=["sms", "branch"], now=NOW
        )
        assert rt.arm_id in sms_arms and rt.arm_params["channel"] == "sms"
    with pytest.raises(
        NotEligible,
        match=r"no consent for any of its arms' channels among the touchpoint's channels \['app_push'\]",
    ):
        decide_one(engine, snapshot, campaign.campaign_id, "r0020", channels=["app_push"], now=NOW)
    with pytest.raises(UserError, match="channels: unknown channel 'fax'"):
        decide_one(engine, snapshot, campaign.campaign_id, "r0020", channels=["fax"], now=NOW)


def test_same_key_gives_one_decision_even_for_concurrent_callers(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    campaign = world["ts"]
    snapshot = Snapshot.load(engine, now=NOW)
    first = decide_one(engine, snapshot, campaign.campaign_id, "r0030", idempotency_key="req-1", now=NOW)
    again = decide_one(
        engine,
        snapshot,
        campaign.campaign_id,
        "r0030",
        idempotency_key="req-1",
        now=NOW + timedelta(seconds=3),
    )
    assert not first.replayed and again.replayed
    assert (again.decision_id, again.arm_id, again.propensity, again.seed) == (
        first.decision_id,
        first.arm_id,
        first.propensity,
        first.seed,
    )
    with pytest.raises(UserError, match="idempotency_key 'req-1' was already used for another customer"):
        decide_one(engine, snapshot, campaign.campaign_id, "r0031", idempotency_key="req-1", now=NOW)

    barrier = threading.Barrier(8)
    results: list = []

    def call() -> None:
        barrier.wait()
        results.append(
            decide_one(engine, snapshot, campaign.campaign_id, "r0032", idempotency_key="race", now=NOW)
        )

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len({r.decision_id for r in results}) == 1
    assert len({(r.arm_id, r.propensity) for r in results}) == 1
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(
                "select count(*) from ops.decisions "
                "where customer_id in ('r0030', 'r0032') and source = 'realtime'"
            )
        ).scalar()
    assert n == 2


def test_ucb_counts_the_sends_still_pending_in_batch_and_real_time(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    """Every arm of rt-ucb at 10 % on 100 matured sends per segment; arm 0 also has 1,000 sends
    pending in every segment. Counted as pulls at 10 %, arm 0 stands far above the others, so the
    day's ~33 customers per segment fill arms 1-3 and arm 0 gets none, batch or real time."""
    campaign = world["ucb"]
    rows = [
        {"c": campaign.campaign_id, "s": s, "a": a, "m": 100, "r": 10, "p": 1000 if i == 0 else 0}
        for s in SEGMENTS
        for i, a in enumerate(campaign.arm_ids)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into analytics.segment_arm_stats (campaign_id, segment, arm_id, sends, matured,
                       pending, opens, clicks, conversions, revenue, reward_sum, alpha, beta)
                   values (:c, :s, :a, :m + :p, :m, :p, 0, 0, :r, 0, :r, 1 + :r, 1 + :m - :r)"""
            ),
            rows,
        )
    try:
        with engine.connect() as conn:
            pending = pending_sends(conn, campaign)
        expected = np.zeros((len(SEGMENTS), 4))
        expected[:, 0] = 1000
        np.testing.assert_array_equal(pending, expected)
        batch = _batch(engine, campaign)
        arms = [r.arm_id for r in batch.values()]
        assert len(arms) == 300 and campaign.arm_ids[0] not in arms
        state = Snapshot.load(engine, now=NOW).campaigns[campaign.campaign_id]
        np.testing.assert_array_equal(state.pending, expected)
        rt = decide_one(engine, Snapshot.load(engine, now=NOW), campaign.campaign_id, "r0001", now=NOW)
        assert rt.arm_id != campaign.arm_ids[0]
        # The runner-up is logged in both paths: never the chosen arm, never the arm with 1,000 pending.
        with engine.connect() as conn:
            logged = conn.execute(
                sa.text(
                    "select arm_id, runner_up_arm_id, runner_up_propensity from ops.decisions "
                    "where campaign_id = :c"
                ),
                {"c": campaign.campaign_id},
            ).all()
        assert len(logged) == 301 and all(
            r.runner_up_arm_id not in (r.arm_id, campaign.arm_ids[0]) for r in logged
        )
        assert (rt.runner_up_arm_id, rt.runner_up_propensity) in {
            (r.runner_up_arm_id, r.runner_up_propensity) for r in logged
        }
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text("delete from analytics.segment_arm_stats where campaign_id = :c"),
                {"c": campaign.campaign_id},
            )


def test_unknown_campaign_customer_and_bad_attributes(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    campaign = world["caps"]
    snapshot = Snapshot.load(engine, now=NOW)
    with pytest.raises(NotFound, match="campaign 999 is unknown or not active today"):
        decide_one(engine, snapshot, 999, "r0001", now=NOW)
    with pytest.raises(NotFound, match="customer 'new-1' is unknown: send its attributes"):
        decide_one(engine, snapshot, campaign.campaign_id, "new-1", now=NOW)
    attributes = {
        "age": 61,
        "gender": "M",
        "income": 120_000,
        "loyalty_points": 10,
        "tenure_years": 1.5,
        "products_held": 1,
        "digital_engagement": 0.3,
        "website_visits": 2,
        "past_purchases": 0,
    }
    with pytest.raises(UserError, match="attributes: digital_engagement"):
        decide_one(
            engine,
            snapshot,
            campaign.campaign_id,
            "new-1",
            attributes=attributes | {"digital_engagement": 3},
            now=NOW,
        )
    with pytest.raises(UserError, match="attributes.age: missing"):
        decide_one(engine, snapshot, campaign.campaign_id, "new-1", attributes={"income": 5}, now=NOW)
    # No consent record for a new customer: opt-in means not eligible.
    with pytest.raises(NotEligible, match="no consent"):
        decide_one(engine, snapshot, campaign.campaign_id, "new-1", attributes=attributes, now=NOW)
    insert_consents(engine, [("new-1", "email", NOW - timedelta(minutes=5), True)])
    rt = decide_one(engine, snapshot, campaign.campaign_id, "new-1", attributes=attributes, now=NOW)
    assert rt.arm_params["channel"] == "email"
    with engine.connect() as conn:
        segment = conn.execute(
            sa.text("select segment from ops.decisions where decision_id = :d"), {"d": rt.decision_id}
        ).scalar()
    assert segment == "senior_high"  # 61 years, 120k: the segment_of rule on the given attributes


def _race(n: int, call) -> list:
    barrier = threading.Barrier(n)
    outcomes: list = []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(call())
        except NotEligible as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_concurrent_sends_to_one_customer_respect_the_caps(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    campaign = world["caps"]  # min_days_between 1: one send a day
    snapshot = Snapshot.load(engine, now=NOW)
    cid = campaign.campaign_id
    unkeyed = _race(8, lambda: decide_one(engine, snapshot, cid, "r0040", now=NOW))
    assert sum(isinstance(o, NotEligible) for o in unkeyed) == 7
    # The same key from 8 callers under a binding cap: all get the one decision, none is refused.
    keyed = _race(8, lambda: decide_one(engine, snapshot, cid, "r0041", idempotency_key="cap-race", now=NOW))
    assert not any(isinstance(o, NotEligible) for o in keyed)
    assert len({o.decision_id for o in keyed}) == 1
    with engine.connect() as conn:
        counts = conn.execute(
            sa.text(
                "select customer_id, count(*) from ops.decisions where customer_id in ('r0040', 'r0041') "
                "group by 1 order by 1"
            )
        ).all()
    assert [tuple(r) for r in counts] == [("r0040", 1), ("r0041", 1)]
