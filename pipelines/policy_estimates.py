"""What candidate policies would have earned on a window's logged decisions: IPS, SNIPS and doubly
robust estimates (bandits/off_policy.py) with 95% CIs, as ml/evaluate.py's greedy_policy_value
uses them on logged decisions.

The logged rows are the window's matured treatment decisions on active arms with a known segment
(control rows got the default arm by design); the reward is the attributed conversion, as
pipelines/performance.py counts it. The candidates act per segment on today's statistics (what
they would choose now, replayed on the logs), without the model's scores:

- ``logging``: the logged propensities themselves (weights 1: IPS is the observed mean, the
  sanity check); its DR takes the window's allocation per segment as its distribution;
- ``uniform``: every active arm alike;
- ``greedy_posterior_mean``: per segment the arm of highest posterior mean (ties split evenly);
- ``campaign_policy``: the campaign's policy as it is configured, and for a rotation or
  interleaved policy each of its strategies, for a lifecycle its base policy.

DR's reward model is the (segment, arm) posterior mean of the same statistics (in sample: the
logged rewards feed it too). Weights are not clipped; the effective sample size says how far a
candidate strays from the logging policy.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from bandits.off_policy import doubly_robust_estimate, ips_estimate, snips_estimate
from bandits.registry import DEFAULT_LIFECYCLE_BASE, DEFAULT_STRATEGIES, make_policy
from pipelines.campaign_store import Campaign
from pipelines.decide import build_policy
from pipelines.domain import SEGMENTS
from pipelines.performance import policy_prior
from pipelines.segments_view import TIE

CONFIDENCE = 0.95
MONTE_CARLO_SEED = 20_261_202  # Thompson-style candidates: the same statistics, the same answer


def policy_estimates(
    campaign: Campaign, decisions: pd.DataFrame, pulls: np.ndarray, rewards: np.ndarray
) -> dict:
    """Estimates per candidate policy from ``decisions`` (pipelines.performance.decision_outcomes
    of the window) and the (segment x arm) statistics ``pulls``/``rewards``."""
    arm_of = {int(a): k for k, a in enumerate(campaign.arm_ids)}
    seg = pd.Index(SEGMENTS).get_indexer(
        decisions["segment"].astype(object).where(decisions["segment"].notna(), "")
    )
    arm = decisions["arm_id"].map(lambda a: arm_of.get(int(a), -1)).to_numpy(dtype=np.int64)
    treated = (decisions["treatment_group"] == "treatment").to_numpy()
    matured = decisions["matured"].to_numpy(dtype=bool)
    usable = treated & matured & (seg >= 0) & (arm >= 0)
    seg, arm = seg[usable], arm[usable]
    reward = decisions["converted"].to_numpy(dtype=float)[usable]
    propensity = decisions["propensity"].to_numpy(dtype=float)[usable]
    out = {
        "logged_decisions": int(usable.sum()),
        "left_out": {
            "control": int((~treated).sum()),
            "pending": int((treated & ~matured).sum()),
            "unknown_segment_or_retired_arm": int((treated & matured & ~usable).sum()),
        },
        "observed_value": float(reward.mean()) if reward.size else None,
        "confidence": CONFIDENCE,
        "reward_model": "posterior mean per (segment, arm) of the learning statistics",
        "policies": [],
        "reason": None,
    }
    if reward.size < 2:
        return out | {
            "reason": f"{reward.size} matured treatment decision(s) in the window: at least 2 needed"
        }
    prior = policy_prior(campaign)
    q = (prior[0] + np.minimum(rewards, pulls)) / (prior[0] + prior[1] + pulls)  # (n_segments, n_arms)
    logging_probs = _allocation(seg, arm, q.shape)
    candidates = [
        ("logging", "the logged propensities (what was done)", None),
        ("uniform", "every active arm alike", np.full(q.shape, 1.0 / q.shape[1])),
        ("greedy_posterior_mean", "per segment the arm of highest posterior mean", greedy(q)),
        *_campaign_candidates(campaign, pulls, rewards),
    ]
    for name, description, probs in candidates:
        row = {"policy": name, "description": description}
        if isinstance(probs, str):  # the policy could not give its probabilities: say why
            out["policies"].append(row | _no_estimates(probs))
            continue
        target = propensity if probs is None else probs[seg, arm]
        q_target = ((logging_probs if probs is None else probs) * q)[seg].sum(axis=1)
        row |= _estimates(reward, propensity, target, q[seg, arm], q_target)
        out["policies"].append(row)
    return out


def greedy(q: np.ndarray) -> np.ndarray:
    """Per row probability 1 on the largest entry of ``q``, split evenly between ties."""
    best = q >= q.max(axis=1, keepdims=True) - TIE
    return best / best.sum(axis=1, keepdims=True)


def _allocation(seg: np.ndarray, arm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The logged decisions' share per arm in each segment (zero rows where there is none)."""
    counts = np.zeros(shape)
    np.add.at(counts, (seg, arm), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(shape), where=totals > 0)


def _campaign_candidates(campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray) -> list[tuple]:
    """The campaign's policy on these statistics, and the policies it is made of."""
    spec = campaign.spec.policy
    out = [
        (
            f"campaign_policy:{spec.name}",
            "the campaign's policy as configured",
            lambda: build_policy(campaign, pulls, rewards, None),
        )
    ]
    if spec.name in ("rotation", "interleaved"):
        for name in spec.params.get("strategies", DEFAULT_STRATEGIES):
            out.append(
                (
                    f"strategy:{name}",
                    f"the {spec.name} policy's {name} strategy",
                    _leaf(campaign, name, pulls, rewards),
                )
            )
    elif spec.name == "lifecycle":
        name = spec.params.get("base", DEFAULT_LIFECYCLE_BASE)
        out.append(
            (
                f"base:{name}",
                "the lifecycle's base policy in every phase",
                _leaf(campaign, name, pulls, rewards),
            )
        )
    return [(name, description, _probabilities(build)) for name, description, build in out]


def _leaf(campaign: Campaign, name: str, pulls: np.ndarray, rewards: np.ndarray):
    def build():
        params = campaign.spec.policy.params.get(name, {})
        policy = make_policy(name, n_arms=len(campaign.arm_ids), n_segments=len(SEGMENTS), **params)
        return policy.set_stats(pulls, rewards)

    return build


def _probabilities(build) -> np.ndarray | str:
    """(n_segments, n_arms) probabilities of the built policy for one customer of each segment,
    every arm allowed; or the reason it cannot give them."""
    try:
        policy = build()
        return policy.arm_probabilities(np.arange(len(SEGMENTS)), rng=np.random.default_rng(MONTE_CARLO_SEED))
    except (ValueError, NotImplementedError) as exc:
        return str(exc)


def _estimates(reward, propensity, target, q_logged, q_target) -> dict:
    weights = target / propensity
    out = {
        "mean_target_probability": float(target.mean()),
        "max_weight": float(weights.max()),
        "reason": None,
    }
    out["ips"] = _fields(ips_estimate(reward, propensity, target, confidence=CONFIDENCE))
    try:
        out["snips"] = _fields(snips_estimate(reward, propensity, target, confidence=CONFIDENCE))
    except ValueError:  # the candidate never picks a logged arm: nothing to normalise by
        out["snips"] = None
        out["reason"] = "the policy gives no logged decision's arm any probability: SNIPS is undefined"
    out["dr"] = _fields(
        doubly_robust_estimate(reward, propensity, target, q_logged, q_target, confidence=CONFIDENCE)
    )
    return out


def _no_estimates(reason: str) -> dict:
    return {"mean_target_probability": None, "max_weight": None, "ips": None, "snips": None, "dr": None,
            "reason": reason}  # fmt: skip


def _fields(estimate) -> dict:
    return {k: v for k, v in asdict(estimate).items() if k not in ("estimator", "confidence")}
