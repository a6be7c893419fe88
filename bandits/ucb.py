"""UCB1 per segment x arm.

Index of arm ``k`` in segment ``s``::

    mean[s, k] + c * sqrt(2 ln N[s] / n[s, k])

with ``n`` the arm's pulls and ``N`` the segment's total pulls (with ``pooled=True``
the statistics of all segments are added up and every segment shares one index).
Arms never tried in the segment have an infinite index, so they are tried first.
The policy is deterministic except for ties, which are broken uniformly at random:
the propensity of an arm is exactly ``1 / #tied-best`` (1 without ties).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import sample_categorical, tie_mask, uniform_over
from bandits._params import discount, flag, non_negative
from bandits.base import SELECTED_BY_BANDIT, SELECTED_BY_BLEND, STRATEGY_UCB, Choice, ChunkedPolicy, Plan


@dataclass(frozen=True)
class UCBParams:
    """Hyperparameters of :class:`UCB`.

    Attributes
    ----------
    c : float >= 0
        Width of the confidence bonus (1 is UCB1).
    pooled : bool
        Ignore segments: one index from the statistics of all segments.
    gamma : float in (0, 1]
        Discount applied to the counts before each update (discounted UCB).
    """

    c: float = 1.0
    pooled: bool = False
    gamma: float = 1.0

    def __post_init__(self) -> None:
        non_negative("c", self.c)
        flag("pooled", self.pooled)
        discount("gamma", self.gamma)


class UCB(ChunkedPolicy):
    """UCB1 per segment x arm with exact tie-breaking propensities.

    Parameters
    ----------
    n_arms, n_segments : int
    params : UCBParams, optional

    Attributes
    ----------
    index_ : float64 array of shape (n_segments, n_arms)
        UCB index; ``inf`` for untried arms.
    mean_ : float64 array of shape (n_segments, n_arms)
        Empirical mean reward (0 for untried arms).
    tried_ : bool array of shape (n_segments, n_arms)
    """

    name = "ucb"
    params: UCBParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: UCBParams | None = None) -> None:
        super().__init__(n_arms, n_segments)
        params = UCBParams() if params is None else params
        if not isinstance(params, UCBParams):
            raise TypeError(f"params must be UCBParams, got {type(params).__name__}")
        self.params = params
        self._after_update()

    def _before_update(self) -> None:
        self._discount(self.params.gamma)

    def _after_update(self) -> None:
        pulls, rewards = self.pulls_, self.rewards_
        if self.params.pooled:
            pulls = np.broadcast_to(pulls.sum(axis=0), pulls.shape)
            rewards = np.broadcast_to(rewards.sum(axis=0), rewards.shape)
        tried = pulls > 0
        safe = np.where(tried, pulls, 1.0)
        total = pulls.sum(axis=1, keepdims=True)
        # ln N < 0 when discounting leaves fewer than one pull in total: no bonus then.
        log_n = np.log(np.maximum(total, 1.0))
        self.mean_ = np.where(tried, rewards / safe, 0.0)
        self.index_ = np.where(tried, self.mean_ + self.params.c * np.sqrt(2.0 * log_n / safe), np.inf)
        self.tried_ = tried

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        return np.random.default_rng(0) if rng is None else rng  # exact: rng unused

    def _blend_weight(self, model_proba: np.ndarray | None) -> float | None:
        """Weight of the (capped) index in the value, or None for the bandit alone."""
        return None

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        index = self.index_[segments]
        # Reported score: the index is an upper bound on a rate in [0, 1], so cap it at 1.
        capped = np.minimum(index, 1.0)
        weight = self._blend_weight(model_proba)
        if weight is None or model_proba is None:
            value = index
        else:
            value = weight * capped + (1.0 - weight) * model_proba
        probs = uniform_over(tie_mask(value, allowed))
        tried = self.tried_[segments]
        greedy = tie_mask(np.where(tried, self.mean_[segments], -np.inf), allowed & tried)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            arm = sample_categorical(probs[rows], rng)
            model = None if model_proba is None else model_proba[rows, arm]
            blended = weight is not None and model_proba is not None
            return Choice.build(
                arm,
                strategy=STRATEGY_UCB,
                explored=~greedy[rows, arm],
                bandit_score=capped[rows, arm],
                model_score=model,
                blend_score=value[rows, arm] if blended else capped[rows, arm],
                selected_by=SELECTED_BY_BLEND if blended else SELECTED_BY_BANDIT,
            )

        return Plan(probs, sample)
