"""Stage 4 of the day: the send list of one campaign for logical date D.

eligible audience -> holdout control (static default arm) -> segment posteriors from
the `segment_arm_stats` mart -> champion model scores (when a scorer is given) ->
the campaign's policy per customer -> decisions with propensities in `ops.decisions`
and a draft in `ops.send_lists`. Seeded by (campaign, D): a re-run gives the same
list. A published list is final: deciding its day again changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

import bandits
from bandits import make_policy
from pipelines import allocation as alloc_mod
from pipelines.allocation import Allocation
from pipelines.campaign_store import Campaign
from pipelines.db import read_frame
from pipelines.domain import SEGMENTS
from pipelines.drift import discount_drifted

log = logging.getLogger(__name__)

CHUNK = 200_000  # customers per policy call: bounds the (chunk x arms) working arrays
POLICY_VERSION = f"bandits-{getattr(bandits, '__version__', '0')}"
CAMPAIGN_LOCK_CLASS = 7240304  # advisory lock (class, campaign_id): one writer of a list row at a time


class Scorer(Protocol):
    """P(conversion) for customers x arms, shape (n, n_arms).

    With ``allowed`` (bool, shape (n, n_arms)) a scorer may skip the disallowed pairs
    (any value there, NaN included): :func:`model_scores` overwrites them.
    """

    def __call__(
        self, customers: pd.DataFrame, arms: list[dict[str, str]], allowed: np.ndarray | None = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelHandle:
    """The champion model as the decide step uses it."""

    version: str
    scorer: Scorer
    quality: float = 0.5  # validation quality in [0, 1], for the confidence hybrid
    model: Any = None  # the ResponseModel behind scorer, for readers beyond scoring (suggestions)


@dataclass(frozen=True)
class DecideResult:
    campaign: str
    campaign_id: int
    list_date: date
    status: str  # draft | published (already final, left alone) | empty
    n_rows: int
    n_control: int
    model_version: str | None
    seed: int


def seed_for(campaign_name: str, day: date) -> int:
    """A stable 63-bit seed from (campaign, D)."""
    digest = hashlib.sha256(f"{campaign_name}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def decide_campaign(
    engine: sa.Engine,
    campaign: Campaign,
    day: date,
    model: ModelHandle | None = None,
    note: str | None = None,
    n_buckets: int = 1,
) -> DecideResult:
    """Build (or rebuild) the draft send list of ``campaign`` for ``day`` in this process: its
    ``n_buckets`` buckets one after another, then the list (the DAG runs the buckets as parallel
    tasks: :mod:`pipelines.decide_buckets`). The list is the same for any ``n_buckets``.

    Two decides of one (campaign, bucket) never interleave (an advisory lock around the read of
    the audience and the write of its decisions); the order of days is the caller's rule
    (:func:`pipelines.day_order.decide_slot`, which the daily job uses).
    """
    from pipelines.decide_buckets import decide_bucket, finish_list, list_status

    if list_status(engine, campaign.campaign_id, day) == "published":
        log.info("%s %s: list already published; left as it is", campaign.name, day)
        return finish_list(engine, campaign, day, n_buckets, "")
    run_id = f"local-{uuid.uuid4()}"
    for bucket in range(n_buckets):
        decide_bucket(engine, campaign, day, bucket, n_buckets, run_id, model, note)
    return finish_list(engine, campaign, day, n_buckets, run_id)


@contextmanager
def campaign_lock(engine: sa.Engine, campaign_id: int) -> Iterator[None]:
    """One writer of a campaign's list row at a time."""
    with engine.connect() as conn:
        key = {"a": CAMPAIGN_LOCK_CLASS, "b": campaign_id}
        conn.execute(sa.text("select pg_advisory_lock(:a, :b)"), key)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("select pg_advisory_unlock(:a, :b)"), key)
            conn.commit()


def segment_stats(conn: sa.Connection, campaign: Campaign) -> tuple[np.ndarray, np.ndarray]:
    """Matured sends and reward sums per (segment, arm) from the mart, shape (n_segments, n_arms).

    Shared with the real-time snapshot (:mod:`pipelines.realtime.snapshot`). A campaign with
    ``drift.response: discount`` gets its drifted arms' old evidence discounted (pipelines/drift.py)."""
    frame = read_frame(
        conn,
        "select segment, arm_id, matured, reward_sum from analytics.segment_arm_stats "
        "where campaign_id = %(c)s",
        {"c": campaign.campaign_id},
    )
    pulls, rewards = stats_arrays(campaign, frame)
    discount_drifted(conn, campaign, pulls, rewards)
    return pulls, np.minimum(rewards, pulls)


def pending_sends(conn: sa.Connection, campaign: Campaign) -> np.ndarray:
    """Sends per (segment, arm) whose attribution window is still open at the last daily build,
    shape (n_segments, n_arms); zeros before the first build. UCB counts them (Policy.set_pending)."""
    if conn.execute(sa.text("select to_regclass('analytics.segment_arm_stats')")).scalar() is None:
        return np.zeros((len(SEGMENTS), len(campaign.arm_ids)))
    frame = read_frame(
        conn,
        "select segment, arm_id, pending from analytics.segment_arm_stats where campaign_id = %(c)s",
        {"c": campaign.campaign_id},
    )
    (pending,) = segment_arm_sums(campaign, frame, ("pending",))
    return pending


def decision_stats(conn: sa.Connection, campaign: Campaign) -> tuple[np.ndarray, np.ndarray]:
    """:func:`segment_stats` plus the campaign's warm start: what the batch and the real-time
    decisions learn from. Reports keep reading segment_stats: history guides decisions, it is not
    a send of this campaign."""
    return with_warm_start(conn, campaign, *segment_stats(conn, campaign))


def with_warm_start(
    conn: sa.Connection, campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``pulls`` and ``rewards`` plus the pseudo-observations of the campaign's warm start
    (pipelines/warm_start.py), when it has one."""
    warm = campaign.spec.warm_start
    if warm is None:
        return pulls, rewards
    from pipelines.warm_start import history_from_campaign, history_from_file, map_history

    if warm.from_campaign is not None:
        history = history_from_campaign(conn, warm.from_campaign)
    else:
        history = history_from_file(warm.file, list(campaign.spec.parameters))
    warm_pulls, warm_rewards = map_history(history, campaign.arm_params, warm.strength)
    return pulls + warm_pulls, rewards + warm_rewards


def stats_arrays(campaign: Campaign, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (segment, arm_id, matured, reward_sum) summed into (n_segments, n_arms) arrays."""
    pulls, rewards = segment_arm_sums(campaign, frame, ("matured", "reward_sum"))
    return pulls, rewards


def segment_arm_sums(campaign: Campaign, frame: pd.DataFrame, columns: tuple[str, ...]) -> list[np.ndarray]:
    """Each of ``columns`` of (segment, arm_id, ...) rows summed into an (n_segments, n_arms) array."""
    out = [np.zeros((len(SEGMENTS), len(campaign.arm_ids))) for _ in columns]
    if frame.empty:
        return out
    seg = pd.Index(SEGMENTS).get_indexer(frame["segment"].astype(str))
    arm = pd.Index(campaign.arm_ids).get_indexer(frame["arm_id"])
    ok = (seg >= 0) & (arm >= 0)  # retired arms and unknown segments drop out
    for array, column in zip(out, columns, strict=True):
        np.add.at(array, (seg[ok], arm[ok]), frame[column].to_numpy(dtype=float)[ok])
    return out


def build_policy(
    campaign: Campaign,
    pulls: np.ndarray,
    rewards: np.ndarray,
    model: ModelHandle | None,
    pending: np.ndarray | None = None,
) -> bandits.ChunkedPolicy:
    """The campaign's policy over its active arms, fed the (segment x arm) statistics and the
    sends still pending (:func:`pending_sends`)."""
    params = dict(campaign.spec.policy.params)
    if campaign.spec.policy.name == "confidence_hybrid" and model is not None:
        params.setdefault("model_quality", model.quality)
    policy = make_policy(
        campaign.spec.policy.name, n_arms=len(campaign.arm_ids), n_segments=len(SEGMENTS), **params
    )
    policy.set_stats(pulls, rewards)
    if pending is not None:
        policy.set_pending(pending)
    return policy


def choose_arms(
    campaign: Campaign,
    policy: bandits.ChunkedPolicy,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    rng: np.random.Generator,
    model: ModelHandle | None,
    alloc: Allocation | None = None,
) -> dict[str, np.ndarray]:
    """One arm per customer, as batch and real time both decide: control customers get the static
    default arm (propensity 1), the others the policy's pick with its exact propensity (with
    ``alloc``, the priced choice of pipelines/allocation.py over the policy's plan).

    ``customers`` needs segment_idx, is_control and the attributes a model scores; ``allowed`` is
    the (n, n_arms) consent mask. Returns arrays of shape (n,): arm_idx, propensity, explored,
    bandit_score, model_score, blend_score, confidence, selected_by, strategy, phase.
    """
    out = _control_choices(campaign, customers, allowed)
    treat = np.flatnonzero(~customers["is_control"].to_numpy(dtype=bool))
    for start in range(0, len(treat), CHUNK):
        rows = treat[start : start + CHUNK]
        proba = _scores(campaign, model, customers, allowed, rows)
        if alloc is None:
            _pick(out, policy, customers, allowed, rows, proba, rng)
        else:
            _pick_priced(out, policy, customers, allowed, rows, proba, alloc, rng.spawn(3))
    out["propensity"] = np.clip(out["propensity"], 1e-6, 1.0)
    return out


def choose_arms_by_shard(
    campaign: Campaign,
    policy: bandits.ChunkedPolicy,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    seed: int,
    model: ModelHandle | None,
    alloc: Allocation | None = None,
) -> dict[str, np.ndarray]:
    """:func:`choose_arms` for the batch list, one customer shard at a time: shard s is decided
    with its own generator, seeded by (seed, s), as policy block s, in customer-id order. So a
    customer's arm and propensity depend on their shard alone, not on which other shards are
    decided in the same call (the partitioned decide's bucket count). ``customers`` needs a
    ``shard`` column and is ordered by customer_id."""
    out = _control_choices(campaign, customers, allowed)
    shards = customers["shard"].to_numpy(dtype=np.int64)
    treat = np.flatnonzero(~customers["is_control"].to_numpy(dtype=bool))
    treat = treat[np.argsort(shards[treat], kind="stable")]  # by shard, customer-id order within
    # Shard i is treat[bounds[i]:bounds[i + 1]]; whole shards up to CHUNK customers share one
    # scoring call (the model's per-call cost), each then decided on its own.
    bounds = np.r_[0, np.flatnonzero(np.diff(shards[treat])) + 1, len(treat)] if len(treat) else [0]
    i = 0
    while i < len(bounds) - 1:
        j = i + 1
        while j < len(bounds) - 1 and bounds[j + 1] - bounds[i] <= CHUNK:
            j += 1
        proba = _scores(campaign, model, customers, allowed, treat[bounds[i] : bounds[j]])
        for a, b in zip(bounds[i:j], bounds[i + 1 : j + 1], strict=True):
            shard = int(shards[treat[a]])
            policy.start_block(shard)
            part = None if proba is None else proba[a - bounds[i] : b - bounds[i]]
            if alloc is None:
                _pick(out, policy, customers, allowed, treat[a:b], part, np.random.default_rng([seed, shard]))
            else:
                rngs = [np.random.default_rng([seed, shard, k]) for k in (1, 2, 3)]
                _pick_priced(out, policy, customers, allowed, treat[a:b], part, alloc, rngs)
        i = j
    out["propensity"] = np.clip(out["propensity"], 1e-6, 1.0)
    return out


def _control_choices(
    campaign: Campaign, customers: pd.DataFrame, allowed: np.ndarray
) -> dict[str, np.ndarray]:
    """Every customer as a control customer: the static arm, propensity 1; _pick fills the rest."""
    n = len(customers)
    return {
        "fallback_idx": np.full(n, -1, dtype=np.int64),
        "fallback_propensity": np.full(n, np.nan),
        "capacity_regret": np.full(n, np.nan),
        "arm_idx": _static_arm(allowed, campaign.arm_ids.index(campaign.control_arm_id)),
        "propensity": np.ones(n),
        "explored": np.zeros(n, dtype=bool),
        "bandit_score": np.full(n, np.nan),
        "model_score": np.full(n, np.nan),
        "blend_score": np.full(n, np.nan),
        "confidence": np.full(n, np.nan),
        "selected_by": np.full(n, "control", dtype=object),
        "strategy": np.full(n, None, dtype=object),
        "phase": np.full(n, None, dtype=object),
        "runner_up_idx": np.full(n, -1, dtype=np.int64),
        "runner_up_propensity": np.full(n, np.nan),
    }


def _scores(
    campaign: Campaign,
    model: ModelHandle | None,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray | None:
    if model is None or not len(rows):  # disallowed pairs are not scored (see model_scores)
        return None
    return model_scores(model, customers.iloc[rows], campaign.arm_params, allowed[rows])


def _pick(
    out: dict[str, np.ndarray],
    policy: bandits.ChunkedPolicy,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    rows: np.ndarray,
    proba: np.ndarray | None,
    rng: np.random.Generator,
) -> None:
    """The policy's choices for the treatment customers ``rows``, written into ``out``."""
    segments = customers["segment_idx"].to_numpy(dtype=np.int64)[rows]
    batch = policy.decide(segments, rng, allowed=allowed[rows], model_proba=proba)
    out["arm_idx"][rows] = batch.arm
    for name in ("propensity", "explored", "bandit_score", "model_score", "blend_score", "confidence"):
        out[name][rows] = getattr(batch, name)
    out["selected_by"][rows] = batch.selected_by
    out["strategy"][rows] = batch.strategy
    out["phase"][rows] = batch.phase
    if batch.runner_up is not None:
        out["runner_up_idx"][rows] = batch.runner_up
        out["runner_up_propensity"][rows] = np.where(batch.runner_up >= 0, batch.runner_up_propensity, np.nan)


def _pick_priced(
    out: dict[str, np.ndarray],
    policy: bandits.ChunkedPolicy,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    rows: np.ndarray,
    proba: np.ndarray | None,
    alloc: Allocation,
    rngs: list[np.random.Generator],
) -> None:
    """The priced choices (pipelines/allocation.py) for the treatment customers ``rows``: the
    policy's plan from rngs[0], the fixed tie-break from rngs[1], the draws from rngs[2]."""
    segments = customers["segment_idx"].to_numpy(dtype=np.int64)[rows]
    values, probs = priced_inputs(policy, alloc, segments, allowed[rows], proba, rngs[0], rngs[1])
    c = alloc_mod.priced_choice(alloc, values, allowed[rows], probs, rngs[2])
    out["arm_idx"][rows] = c.arm
    out["propensity"][rows] = c.propensity
    out["explored"][rows] = c.explored
    out["bandit_score"][rows] = posterior_mean(policy)[segments, c.arm]
    if proba is not None:
        out["model_score"][rows] = proba[np.arange(len(rows)), c.arm]
    out["blend_score"][rows] = c.value  # the chosen arm's expected value
    out["selected_by"][rows] = np.where(c.explored, "bandit", "priced")
    out["strategy"][rows] = policy.name
    out["phase"][rows] = ""
    out["fallback_idx"][rows] = c.fallback
    out["fallback_propensity"][rows] = c.fallback_propensity
    out["capacity_regret"][rows] = c.regret


def priced_inputs(
    policy: bandits.ChunkedPolicy,
    alloc: Allocation,
    segments: np.ndarray,
    allowed: np.ndarray,
    proba: np.ndarray | None,
    plan_rng: np.random.Generator,
    tie_rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(values with the tie-break, the policy's plan probabilities) of some treatment customers:
    what the prices are solved on and the priced choice decides from."""
    probs = policy.arm_probabilities(segments, allowed, proba, rng=plan_rng)
    p = proba if proba is not None else posterior_mean(policy)[segments]
    values = alloc_mod.expected_values(alloc, p) + alloc_mod.tie_break(alloc, p.shape, tie_rng)
    return values, probs


def posterior_mean(policy: bandits.Policy) -> np.ndarray:
    """The segment x arm reward rate a model-less value uses: the Beta posterior mean with the
    policy's prior (Beta(1, 1) unless its parameters give one)."""
    a = float(getattr(getattr(policy, "params", None), "prior_alpha", 1.0))
    b = float(getattr(getattr(policy, "params", None), "prior_beta", 1.0))
    return (policy.rewards_ + a) / (policy.pulls_ + a + b)


def decide_customers(
    campaign: Campaign,
    customers: pd.DataFrame,
    allowed: np.ndarray,
    pulls: np.ndarray,
    rewards: np.ndarray,
    seed: int,
    day: date,
    model: ModelHandle | None,
    note: str | None,
    alloc: Allocation | None = None,
    pending: np.ndarray | None = None,
) -> pd.DataFrame:
    """The decisions of ``customers`` (one bucket's, or everyone's) as rows of ops.decisions;
    with ``alloc`` (priced) also each row's repair fallback (pipelines/allocation.py)."""
    arm_ids = np.asarray(campaign.arm_ids)
    policy = build_policy(campaign, pulls, rewards, model, pending)
    out = choose_arms_by_shard(campaign, policy, customers, allowed, seed, model, alloc)
    control = customers["is_control"].to_numpy(dtype=bool)
    decided_at = datetime.combine(day, time(6), tzinfo=UTC)  # the list's send morning, not now()
    ids = customers["customer_id"].astype(str).to_numpy()
    prefix = f"{campaign.campaign_id}-{day:%Y%m%d}-"  # formatting the day per row cost seconds
    frame = pd.DataFrame(
        {
            "decision_id": [prefix + c for c in ids],
            "campaign_id": campaign.campaign_id,
            "customer_id": ids,
            "arm_id": arm_ids[out["arm_idx"]],
            # ISO text for the COPY (the same date and instant): pandas' CSV writer formats
            # date and datetime values one by one, ~10 s per million rows.
            "decision_date": day.isoformat(),
            "decided_at": decided_at.isoformat(),
            "segment": customers["segment"].astype(str).to_numpy(),
            "policy": campaign.spec.policy.name,
            "policy_version": POLICY_VERSION,
            "strategy": out["strategy"],
            "phase": out["phase"],
            "propensity": out["propensity"],
            "bandit_score": out["bandit_score"],
            "model_score": out["model_score"],
            "blend_score": out["blend_score"],
            "selected_by": out["selected_by"],
            "confidence": out["confidence"],
            "explored": out["explored"],
            "model_version": model.version if model else None,
            "treatment_group": np.where(control, "control", "treatment"),
            "source": "batch",
            "seed": seed,
            "note": note,
            "shard": customers["shard"].to_numpy(dtype=np.int64),
            "runner_up_arm_id": runner_up_arm_ids(arm_ids, out["runner_up_idx"]),
            "runner_up_propensity": out["runner_up_propensity"],
        }
    )
    if alloc is not None and alloc.kinds:
        fallback = out["fallback_idx"]
        frame["fallback_arm_id"] = pd.array(np.where(fallback >= 0, arm_ids[fallback], 0), dtype="Int64")
        frame.loc[fallback < 0, "fallback_arm_id"] = pd.NA
        frame["fallback_propensity"] = out["fallback_propensity"]
        frame["capacity_regret"] = out["capacity_regret"]
    return frame


def runner_up_arm_ids(arm_ids: np.ndarray, runner_up_idx: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The runner-up arms' ids, null where there is none (index -1)."""
    ids = pd.array(np.where(runner_up_idx >= 0, arm_ids[np.maximum(runner_up_idx, 0)], 0), dtype="Int64")
    ids[runner_up_idx < 0] = pd.NA
    return ids


def model_scores(
    model: ModelHandle, customers: pd.DataFrame, arm_params: list[dict[str, str]], allowed: np.ndarray
) -> np.ndarray:
    """The model's P(conversion) for the policy, shape (n, n_arms); 0 on disallowed pairs.

    Disallowed pairs (no consent for the arm's channel) are not scored at all: no policy
    picks them or reads their score (each masks them first), so the decisions and
    propensities are the same as with every pair scored, and the scoring work shrinks by
    the disallowed share. They are set to 0, not left NaN, because the policies check
    that model scores are probabilities.
    """
    proba = np.asarray(model.scorer(customers, arm_params, allowed=allowed))
    return np.where(allowed, proba, 0.0)


def _static_arm(allowed: np.ndarray, default_idx: int) -> np.ndarray:
    """The control group's arm: the default arm, or, without consent for its channel, the first
    allowed arm in the campaign's order — static per customer, so the holdout stays a fair baseline."""
    if allowed.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    first_allowed = np.argmax(allowed, axis=1)
    return np.where(allowed[:, default_idx], default_idx, first_allowed).astype(np.int64)
