"""The dashboard's algorithm diagnostics: per decision day of a window, how much the optimizer
explored, how it allocated the treatment sends between arms, how wide its posteriors were and what
its choices cost; when its allocation settled; and what candidate policies would have earned on
the logged decisions (pipelines/policy_estimates.py).

Every decision comes from :func:`pipelines.performance.decision_outcomes` (its attribution rule,
not a copy); posteriors use the policy's prior as /parameters/performance does.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.campaign_spec import arm_key
from pipelines.campaign_store import Campaign
from pipelines.dashboard_data import MAX_DAILY_DAYS
from pipelines.errors import UserError
from pipelines.performance import Window, decision_outcomes, policy_prior, regret_estimate
from pipelines.policy_estimates import policy_estimates

CONVERGE_SHARE = 0.5  # the top arm takes at least this share of a day's treatment sends ...
CONVERGE_MIN_DAYS = 3  # ... on this many decision days in a row through the last one


def diagnostics(
    engine: sa.Engine,
    campaign: Campaign,
    window: Window,
    pulls: np.ndarray,
    rewards: np.ndarray,
    statistics: dict,
    *,
    now: datetime,
) -> dict:
    """Per decision day: treatment decisions, exploration rate, allocation per arm, mean
    propensity of the chosen arm, allocation entropy, mean posterior width and the regret of the
    day's choices; convergence; the regret estimate of pipelines.monitor; off-policy estimates.
    ``pulls``/``rewards``: the learning statistics (pipelines.performance.learning_statistics)."""
    if window.days > MAX_DAILY_DAYS:
        raise UserError(f"since: the daily view spans at most {MAX_DAILY_DAYS} days, got {window.days}")
    decisions = decision_outcomes(engine, campaign, window, now=now)
    with engine.connect() as conn:
        regret = regret_estimate(conn, campaign.campaign_id)
    days = daily_figures(campaign, decisions, window, pulls, rewards)
    treatment = decisions[decisions["treatment_group"] == "treatment"]
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.spec.name,
        "policy": campaign.spec.policy.name,
        "window": {"since": window.since, "until": window.until, "days": window.days},
        "as_of": now,
        "statistics": statistics,
        "arms": [
            {"arm_id": int(a), "arm_key": arm_key(p)}
            for a, p in zip(campaign.arm_ids, campaign.arm_params, strict=True)
        ],
        "treatment_decisions": len(treatment),
        "exploration_rate": float(treatment["explored"].mean()) if len(treatment) else None,
        "days": days,
        "convergence": convergence(
            [d["date"] for d in days], [d["top_arm_id"] for d in days], [d["top_share"] for d in days]
        ),  # fmt: skip
        "regret": regret,
        "window_regret": days[-1]["cumulative_regret"] if days else 0.0,
        "off_policy": policy_estimates(campaign, decisions, pulls, rewards),
    }


def daily_figures(
    campaign: Campaign, decisions: pd.DataFrame, window: Window, pulls: np.ndarray, rewards: np.ndarray
) -> list[dict]:
    """One row per day of ``window`` (see :func:`diagnostics`); a day without a treatment decision
    has null rates and shares."""
    from scipy import stats

    n_days, n_arms = window.days, len(campaign.arm_ids)
    arm_of = {int(a): k for k, a in enumerate(campaign.arm_ids)}
    day = np.array([(d - window.since).days for d in decisions["decision_date"]], dtype=np.int64)
    arm = np.array([arm_of.get(int(a), -1) for a in decisions["arm_id"]], dtype=np.int64)
    active = arm >= 0  # a retired arm's decisions are in no arm's column
    treated = (decisions["treatment_group"] == "treatment").to_numpy() & active
    sends, explored, propensity = np.zeros((n_days, n_arms)), np.zeros(n_days), np.zeros(n_days)
    np.add.at(sends, (day[treated], arm[treated]), 1.0)
    np.add.at(explored, day[treated], decisions["explored"].to_numpy(dtype=float)[treated])
    np.add.at(propensity, day[treated], decisions["propensity"].to_numpy(dtype=float)[treated])
    # Posterior width: each arm's evidence from the window's matured decisions of that day and
    # before (both groups, outcomes as known now), on top of the policy's prior.
    matured = decisions["matured"].to_numpy(dtype=bool) & active
    evidence, success = np.zeros((n_days, n_arms)), np.zeros((n_days, n_arms))
    np.add.at(evidence, (day[matured], arm[matured]), 1.0)
    np.add.at(success, (day[matured], arm[matured]), decisions["converted"].to_numpy(dtype=float)[matured])
    prior = policy_prior(campaign)
    alpha = prior[0] + success.cumsum(axis=0)
    beta = prior[1] + (evidence - success).cumsum(axis=0)
    width = (stats.beta.ppf(0.975, alpha, beta) - stats.beta.ppf(0.025, alpha, beta)).mean(axis=1)
    lost = arm_regret(campaign, pulls, rewards)
    regret = (sends * lost).sum(axis=1)
    total = sends.sum(axis=1)
    rows = []
    for k in range(n_days):
        n = total[k]
        share = sends[k] / n if n else None
        top = int(np.argmax(sends[k])) if n else None
        rows.append(
            {
                "date": window.since + timedelta(days=k),
                "treatment_decisions": int(n),
                "explored": int(explored[k]),
                "exploration_rate": explored[k] / n if n else None,
                "allocation": None if share is None else [float(x) for x in share],
                "top_arm_id": None if top is None else int(campaign.arm_ids[top]),
                "top_share": None if share is None else float(share[top]),
                "mean_propensity": propensity[k] / n if n else None,
                "allocation_entropy": None if share is None else _normalised_entropy(share),
                "mean_posterior_width": float(width[k]),
                "regret": float(regret[k]),
                "cumulative_regret": float(regret[: k + 1].sum()),
            }
        )
    return rows


def arm_regret(campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Per arm, the posterior mean it falls short of the best arm by, pooled over segments — the
    rule of pipelines.monitor's estimate (the best among arms tried; an untried arm sits at its
    prior, which says nothing), under the policy's prior."""
    prior = policy_prior(campaign)
    matured, success = pulls.sum(axis=0), np.minimum(rewards, pulls).sum(axis=0)
    mean = (prior[0] + success) / (prior[0] + prior[1] + matured)
    best = mean[matured > 0].max() if (matured > 0).any() else mean.max()
    return np.maximum(best - mean, 0.0)


def _normalised_entropy(share: np.ndarray) -> float:
    """Entropy of the allocation over log(arms): 0 all on one arm, 1 spread evenly."""
    p = share[share > 0]
    return float(-(p * np.log(p)).sum() / np.log(len(share))) if len(share) > 1 else 0.0


def convergence(
    dates: list[date],
    top_arms: list[int | None],
    top_shares: list[float | None],
    share: float = CONVERGE_SHARE,
    min_days: int = CONVERGE_MIN_DAYS,
) -> dict:
    """The first decision day from which the day's top arm stayed the same and took at least
    ``share`` of the sends, through the last decision day, when that run covers at least
    ``min_days`` decision days ('not yet' otherwise). Days without a decision are skipped."""
    out = {"share": share, "min_days": min_days, "converged": False, "since": None, "arm_id": None,
           "days_to_converge": None, "reason": None}  # fmt: skip
    days = [(d, a, s) for d, a, s in zip(dates, top_arms, top_shares, strict=True) if a is not None]
    if not days:
        return out | {"reason": "no treatment decision in the window"}
    last = days[-1][1]
    start = len(days)
    while start > 0 and days[start - 1][1] == last and days[start - 1][2] >= share:
        start -= 1
    held = len(days) - start
    if held < min_days:
        return out | {
            "reason": f"not yet: the last {held} decision day(s) had one top arm with at least "
            f"{share:.0%} of the sends, {min_days} needed"
        }
    since = days[start][0]
    return out | {
        "converged": True,
        "since": since,
        "arm_id": last,
        "days_to_converge": (since - days[0][0]).days + 1,  # from the window's first decision day
    }
