"""Parity over real HTTP: for the same statistics, champion model and seeds, `POST /optimize`
follows the batch decide's distribution.

World (logical date D, the service's clock set to D 10:00 UTC): 200 identical customers of one
segment (age 40, income 60,000: `middle_mid`) in the `customer_features` mart built by the real
dbt, email and sms consent, hand-written (segment x arm) statistics in `segment_arm_stats`, and a
champion XGBoost model trained on the synthetic examples (~15 s) in the module's own MLflow
database. Three campaigns, offer_type x channel (4 arms), holdout 0.2: Thompson sampling, the
Thompson blend with the model, and the confidence hybrid. The batch decide runs first, with the
champion; then one `campaignopt serve` serves all three.

Propensities are Monte Carlo for all three policies (see bandits/thompson.py): a propensity is a
share of ``draws`` posterior samples, standard error ``sqrt(p (1 - p) / draws)``. The campaigns use
20,000 draws, so the batch's vector is a sharp expectation (SE <= 0.0035) and two independent
estimates differ by at most 5 SE of their difference, ``5 sqrt(2 p (1 - p) / draws)`` <= 0.018.
Identical customers share one Monte Carlo vector in a batch call, so the batch list reveals the
segment's whole vector: arm -> propensity.

Power of the chi-square at N = 320 calls per campaign: the Thompson vector
here is about (0.58, 0.23, 0.13, 0.06); a uniform policy gives a chi-square of ~0.7 N ~ 230 and the
statistics of another segment (the arms rotated) more, against a critical 16.3 (df 3, p 0.001).
The test asserts that both wrong expectations are rejected by the observed counts.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from scipy import integrate, stats

from pipelines.campaign_store import Campaign
from pipelines.decide import build_policy, decide_campaign, segment_stats
from pipelines.domain import SEGMENTS
from pipelines.settings import Settings
from tests.api.conftest import auth, service_env, start_server, stop_server
from tests.api.realtime_world import LOOSE_CAPS, fresh_world
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    noon,
    replace_segment_arm_stats,
)

pytestmark = pytest.mark.slow

D = date(2026, 6, 15)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
SEGMENT = "middle_mid"
OTHER_SEGMENT = "middle_high"
CUSTOMERS = [f"par{i:03d}" for i in range(200)]
DRAWS = 20_000
ARMS = {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]}
# Rewards of 80 matured sends per arm; each segment rotates them, so its best arm differs.
BASE_REWARDS = np.array([18.0, 13.0, 11.0, 8.0])
POLICIES = {
    "thompson": {"name": "thompson", "params": {"draws": DRAWS}},
    "blend": {"name": "thompson_blend", "params": {"weight": 0.7, "blend_draws": DRAWS}},
    "hybrid": {"name": "confidence_hybrid", "params": {"draws": DRAWS}},
}
N_CALLS = 320  # per campaign, over its treatment customers in turn (about 2 each)


def _rewards(segment: int) -> np.ndarray:
    return np.roll(BASE_REWARDS, segment)


@pytest.fixture(scope="module")
def mlflow_url(database_url: str):
    """The module's own MLflow database on the session's server (its champion is the module's)."""
    admin_url = sa.make_url(database_url).set(database="postgres")
    name = f"mlflow_parity_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    yield sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture(scope="module")
def settings(mlflow_url: str, test_home: Path) -> Settings:
    env = f"parity{uuid.uuid4().hex[:6]}"
    return Settings(mlflow_tracking_uri=mlflow_url, campaignopt_home=test_home, campaignopt_env=env)


@pytest.fixture(scope="module")
def champion(settings: Settings):
    from ml.synthetic import make_arms, make_training_examples
    from pipelines.retrain import retrain
    from pipelines.scoring import load_model_for_decide

    trained = retrain(
        settings=settings,
        examples=make_training_examples(12_000, seed=7),
        arms=make_arms(),
        config={"n_estimators": 40, "early_stopping_rounds": 10},
    )
    assert trained["status"] == "done" and trained["promoted"], trained
    handle, note = load_model_for_decide(settings)
    assert handle is not None, note
    return handle


@pytest.fixture(scope="module")
def world(engine: sa.Engine, champion) -> dict[str, Campaign]:
    from pipelines.transform import run_dbt

    fresh_world(engine)
    insert_customers(engine, [{"customer_id": c, "age": 40, "income": 60_000.0} for c in CUSTOMERS], D)
    consented = noon(date(2026, 5, 1))
    insert_consents(engine, [(c, ch, consented, True) for c in CUSTOMERS for ch in ("email", "sms")])
    campaigns = {
        key: add_campaign(
            engine,
            {
                "name": f"parity-{key}",
                "start_date": "2026-05-01",
                "parameters": ARMS,
                "policy": policy,
                "holdout_share": 0.2,
                "frequency_caps": LOOSE_CAPS,
            },
        )
        for key, policy in POLICIES.items()
    }
    run_dbt(D)
    rows = [
        {"c": campaign.campaign_id, "s": segment, "a": arm_id, "m": 80, "r": float(_rewards(s)[a])}
        for campaign in campaigns.values()
        for s, segment in enumerate(SEGMENTS)
        for a, arm_id in enumerate(campaign.arm_ids)
    ]
    replace_segment_arm_stats(engine, rows)
    for campaign in campaigns.values():
        decide_campaign(engine, campaign, D, model=champion)
    return campaigns


@pytest.fixture(scope="module")
def server(world, database_url: str, test_home: Path, settings: Settings, tmp_path_factory):
    """The service on the module's registry, its clock at D 10:00 UTC (started after the batch)."""
    offset = (NOW - datetime.now(UTC)).total_seconds()
    env = service_env(
        database_url,
        test_home,
        MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
        CAMPAIGNOPT_ENV=settings.campaignopt_env,
        REALTIME_CLOCK_OFFSET_SECONDS=str(offset),
    )
    started = start_server(env, tmp_path_factory.mktemp("parity") / "server.log", timeout=180)
    yield started
    stop_server(started)


def _batch_rows(engine: sa.Engine, campaign: Campaign) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select * from ops.decisions where campaign_id = :c and source = 'batch'"),
            {"c": campaign.campaign_id},
        ).all()
    return {r.customer_id: r for r in rows}


def _batch_vector(rows: dict[str, sa.Row]) -> dict[int, float]:
    """arm_id -> the batch's propensity. Identical customers of one shard share one Monte Carlo
    vector (a shard is decided with its own generator: pipelines/shards.py); the shards' vectors
    are independent estimates of the same probabilities, averaged here."""
    seen: dict[tuple[int, int], set[float]] = {}
    for r in rows.values():
        if r.treatment_group == "treatment":
            seen.setdefault((r.shard, r.arm_id), set()).add(round(r.propensity, 12))
    assert all(len(v) == 1 for v in seen.values()), seen
    by_arm: dict[int, list[float]] = {}
    for (_, arm), values in seen.items():
        by_arm.setdefault(arm, []).extend(values)
    vector = {arm: float(np.mean(v)) for arm, v in by_arm.items()}
    # Averages of estimates sum to 1 only up to Monte Carlo noise (~4e-4 here): a vector that holds
    # all but that much is every arm's, and is normalised; otherwise the rest is the undrawn arms'.
    total = sum(vector.values())
    return {arm: p / total for arm, p in vector.items()} if total > 1.0 - 2e-3 else vector


def _mc_tolerance(p: float, estimates: int = 2) -> float:
    """5 standard errors of the difference of ``estimates`` independent Monte Carlo shares."""
    return 5.0 * math.sqrt(estimates * p * (1.0 - p) / DRAWS) + 1e-9


def _exact_p_best(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(arm k has the highest Beta sample), by numerical integration:
    p_k = integral of pdf_k(x) * prod_{j != k} cdf_j(x) over [0, 1]."""
    out = []
    for k in range(len(alpha)):
        others = [j for j in range(len(alpha)) if j != k]

        def f(x: float, k: int = k, others: list[int] = others) -> float:
            return stats.beta.pdf(x, alpha[k], beta[k]) * np.prod(
                [stats.beta.cdf(x, alpha[j], beta[j]) for j in others]
            )

        out.append(integrate.quad(f, 0.0, 1.0, limit=200, epsabs=1e-10)[0])
    return np.array(out)


def _optimize(server, token: str, campaign_id: int, customer: str, key: str) -> dict:
    body = {"campaign_id": campaign_id, "customer_id": customer, "idempotency_key": key}
    r = httpx.post(f"{server.url}/optimize", json=body, headers=auth(token), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def answers(server, keys, world, engine: sa.Engine) -> dict[str, dict[str, list[dict]]]:
    """Per campaign and customer, the service's answers: N_CALLS over the treatment customers of
    the batch list in turn, one per control customer (fixed keys: fixed seeds, a fixed sample)."""
    out: dict[str, dict[str, list[dict]]] = {}
    for key, campaign in world.items():  # the service started after the campaigns: all served
        batch = _batch_rows(engine, campaign)
        treated = sorted(c for c, r in batch.items() if r.treatment_group == "treatment")
        controls = sorted(c for c, r in batch.items() if r.treatment_group == "control")
        calls = [treated[i % len(treated)] for i in range(N_CALLS)] + controls
        out[key] = {customer: [] for customer in batch}
        token, cid = keys["service"], campaign.campaign_id
        args = [(server, token, cid, c, f"parity-{i}") for i, c in enumerate(calls)]
        with ThreadPoolExecutor(4) as pool:  # the seeds come from the keys: order does not matter
            for customer, answer in zip(calls, pool.map(lambda a: _optimize(*a), args), strict=True):
                out[key][customer].append(answer)
    return out


def test_control_customers_get_the_default_arm_with_propensity_1_in_both(world, answers, engine) -> None:
    for key, campaign in world.items():
        batch = _batch_rows(engine, campaign)
        controls = [c for c, r in batch.items() if r.treatment_group == "control"]
        assert 20 <= len(controls) <= 60, (key, len(controls))  # 200 customers, holdout 0.2
        for customer, row in batch.items():
            (first, *_) = answers[key][customer]
            assert first["group"] == row.treatment_group  # the same stable hash
            if row.treatment_group != "control":
                continue
            assert (row.arm_id, row.propensity, row.selected_by) == (campaign.control_arm_id, 1.0, "control")
            got = (first["arm_id"], first["propensity"], first["selected_by"])
            assert got == (campaign.control_arm_id, 1.0, "control"), (key, first)


@pytest.mark.parametrize("key", list(POLICIES))
def test_the_service_propensity_is_the_batch_propensity(key, world, answers, champion, engine) -> None:
    batch = _batch_rows(engine, world[key])
    vector = _batch_vector(batch)
    assert sum(vector.values()) <= 1.0 + 1e-9
    checked = 0
    for customer, row in batch.items():
        if row.treatment_group != "treatment":
            continue
        assert row.model_version == champion.version
        for got in answers[key][customer]:
            assert got["model_version"] == champion.version and got["fallback_reason"] is None
            expected = vector.get(got["arm_id"])
            if expected is None:  # an arm no batch customer drew: its share is in the rest
                expected = 1.0 - sum(vector.values())
            assert abs(got["propensity"] - expected) <= _mc_tolerance(expected), (key, got, vector)
            checked += 1
    assert checked == N_CALLS


def _observed_and_expected(key, world, answers, engine) -> tuple[np.ndarray, np.ndarray, list]:
    """Counts of the service's arms over every treatment call, and the batch's expected shares
    (arms no batch customer drew are pooled into one last cell)."""
    batch = _batch_rows(engine, world[key])
    vector = _batch_vector(batch)
    arms = sorted(vector)
    counts = Counter(
        got["arm_id"] if got["arm_id"] in vector else "rest"
        for customer, row in batch.items()
        if row.treatment_group == "treatment"
        for got in answers[key][customer]
    )
    shares = [vector[a] for a in arms]
    rest = 1.0 - sum(shares)
    cells = arms + (["rest"] if rest > 1e-9 else [])
    if rest > 1e-9:
        shares.append(rest)
    assert set(counts) <= set(cells), (counts, cells)
    return np.array([counts.get(c, 0) for c in cells]), np.array(shares), cells


@pytest.mark.parametrize("key", list(POLICIES))
def test_the_service_arm_frequencies_follow_the_batch_propensities(key, world, answers, engine) -> None:
    observed, shares, cells = _observed_and_expected(key, world, answers, engine)
    n = int(observed.sum())
    assert n == N_CALLS
    if len(cells) == 1:  # the policy is certain here: every call takes that arm
        assert shares[0] == pytest.approx(1.0) and observed[0] == n
        return
    p_value = stats.chisquare(observed, n * shares).pvalue
    assert p_value > 0.001, (key, cells, observed, n * shares)
    # The same counts reject a wrong policy: uniform, or the batch's vector of another segment.
    uniform = stats.chisquare(observed, np.full(len(cells), n / len(cells))).pvalue
    assert uniform < 1e-6, (key, observed)
    if key == "thompson":
        campaign = world[key]
        with engine.connect() as conn:
            policy = build_policy(campaign, *segment_stats(conn, campaign), None)
        other = SEGMENTS.index(OTHER_SEGMENT)
        wrong = _exact_p_best(policy.alpha_[other], policy.beta_[other])
        order = [campaign.arm_ids.index(a) for a in cells]  # every arm has a cell here
        assert stats.chisquare(observed, n * wrong[order] / wrong[order].sum()).pvalue < 1e-6


def test_thompson_batch_and_service_draw_from_the_exact_posterior(world, answers, engine) -> None:
    """The batch's vector and every service propensity are within Monte Carlo error of
    P(arm is best) integrated exactly from the policy's Beta posteriors for the segment."""
    campaign = world["thompson"]
    with engine.connect() as conn:
        policy = build_policy(campaign, *segment_stats(conn, campaign), None)
    s = SEGMENTS.index(SEGMENT)
    exact = _exact_p_best(policy.alpha_[s], policy.beta_[s])
    assert exact.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.argmax(exact) == np.argmax(_rewards(s))  # the segment's best arm leads
    for arm_id, p in _batch_vector(_batch_rows(engine, campaign)).items():
        k = campaign.arm_ids.index(arm_id)
        assert abs(p - exact[k]) <= _mc_tolerance(exact[k], estimates=1), (arm_id, p, exact)
    for calls in answers["thompson"].values():
        for got in calls:
            if got["group"] == "treatment":
                k = campaign.arm_ids.index(got["arm_id"])
                assert abs(got["propensity"] - exact[k]) <= _mc_tolerance(exact[k], estimates=1)
