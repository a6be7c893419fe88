"""The dashboard's customer segments: per segment what it was sent, how it converted, which arm
the optimizer holds best and how sure it is.

The figures are those of /parameters/performance: matured sends and reward sums per (segment, arm)
from :func:`pipelines.performance.learning_statistics`, posteriors from its :func:`posteriors`
(P(best) among the segment's arms), so the two pages agree.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from pipelines.campaign_spec import arm_key
from pipelines.campaign_store import Campaign
from pipelines.domain import SEGMENTS
from pipelines.performance import policy_prior, posterior_view, posteriors, wilson_interval

TIE = 1e-12  # posterior means this close are equal (e.g. several arms still at the prior mean)


def segment_view(
    engine: sa.Engine, campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray, statistics: dict
) -> dict:
    """Per segment of :data:`~pipelines.domain.SEGMENTS`: logged sends, matured sends, reward sum,
    the reward rate with its Wilson 95% interval, and the best arm by posterior mean (ties: the
    arm with more matured evidence, then the earlier arm) with its P(best), credible interval and
    width, the runner-up and the gap between them. A segment without matured evidence has no best
    arm: the prior alone says nothing about it."""
    prior = policy_prior(campaign)
    rewards = np.minimum(rewards, pulls)
    sends = _sends_per_segment(engine, campaign.campaign_id)
    keys = [arm_key(p) for p in campaign.arm_params]
    segments = []
    for s, name in enumerate(SEGMENTS):
        matured, reward = float(pulls[s].sum()), float(rewards[s].sum())
        low, high = wilson_interval(round(reward), round(matured)) if matured else (None, None)
        row = {
            "segment": name,
            "sends": sends.get(name, 0),
            "matured": matured,
            "rewards": reward,
            "reward_rate": reward / matured if matured else None,
            "ci_low": low,
            "ci_high": high,
            "best": None,
            "runner_up": None,
            "gap": None,
            "tied_arms": None,
        }
        if matured:
            arms = posteriors(pulls[s], pulls[s], rewards[s], prior)
            for k, arm in enumerate(arms):
                arm |= {"arm_id": int(campaign.arm_ids[k]), "arm_key": keys[k]}
                arm["ci_width"] = arm["ci_high"] - arm["ci_low"]
            order = sorted(
                range(len(arms)), key=lambda k: (-arms[k]["posterior_mean"], -arms[k]["matured"], k)
            )
            best = arms[order[0]]
            row["best"] = best
            if len(order) > 1:
                row["runner_up"] = arms[order[1]]
                row["gap"] = best["posterior_mean"] - arms[order[1]]["posterior_mean"]
            row["tied_arms"] = sum(abs(a["posterior_mean"] - best["posterior_mean"]) <= TIE for a in arms)
        segments.append(row)
    return posterior_view(campaign, statistics) | {"segments": segments}


def _sends_per_segment(engine: sa.Engine, campaign_id: int) -> dict[str, int]:
    """Every logged decision per segment at decision time (batch and real time, both groups,
    pending too); decisions logged without a segment are not counted."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select segment, count(*) from ops.decisions where campaign_id = :c "
                "and segment is not null group by segment"
            ),
            {"c": campaign_id},
        ).all()
    return {str(s): int(n) for s, n in rows}
