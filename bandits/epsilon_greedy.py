"""Contextual epsilon-greedy per segment x arm.

With probability ``epsilon`` explore: an arm uniformly among the customer's allowed
arms. Otherwise exploit: take the segment's ``top_k`` allowed arms by posterior
mean and pick the one the predictive model ranks highest for this customer (without
a model, the top arm by mean). Ties are broken uniformly at random, and every arm
tied at the k-th place is admitted, so the exploit step is a known distribution
``q`` and the propensity is exact::

    P(arm) = (1 - epsilon) * q(arm) + epsilon / |allowed|

(``q`` is 1 on the greedy arm when there are no ties).

Pooling (``pooled=True``, the default): the posterior mean that ranks the arms is
shrunk towards the other segments' evidence for the same arm with the empirical-Bayes
prior of Thompson sampling (:mod:`bandits.thompson`, prior ``"pooled"``): each
segment's Beta prior adds the leave-one-out evidence of the other segments, worth at
most ``prior_strength`` pseudo-observations (estimated from the data by
:func:`~bandits.thompson.empirical_bayes_strength` when None). Where segments do not
differ, a small segment ranks arms by the population's evidence instead of exploiting
the noise of its few sends; where they do differ, its own evidence takes over. With one
segment, or ``pooled=False``, the mean is the segment's own Beta posterior mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import TIE_TOL, sample_categorical, tie_mask, uniform_over
from bandits._params import discount, flag, interval, non_negative, positive, positive_int
from bandits.base import (
    SELECTED_BY_BANDIT,
    SELECTED_BY_BLEND,
    STRATEGY_EPSILON_GREEDY,
    Choice,
    ChunkedPolicy,
    Plan,
)
from bandits.thompson import pooled_posterior


@dataclass(frozen=True)
class EpsilonGreedyParams:
    """Hyperparameters of :class:`EpsilonGreedy`.

    Attributes
    ----------
    epsilon : float in [0, 1]
        Probability of exploring.
    top_k : int >= 1
        Arms by posterior mean among which the model chooses.
    prior_alpha, prior_beta : float > 0
        Beta prior of the posterior mean (keeps untried arms at a sensible value).
    gamma : float in (0, 1]
        Discount applied to the counts before each update.
    pooled : bool
        Rank arms by posterior means shrunk towards the other segments' evidence
        (empirical Bayes, see the module docstring); False: each segment's own
        evidence only. No effect with one segment.
    prior_strength : float >= 0, inf, or None
        Cap on the pseudo-observations the pooled prior borrows from other segments;
        None estimates it from the data, inf borrows everything.
    """

    epsilon: float = 0.1
    top_k: int = 3
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    gamma: float = 1.0
    pooled: bool = True
    prior_strength: float | None = None

    def __post_init__(self) -> None:
        interval("epsilon", self.epsilon, 0.0, 1.0)
        positive_int("top_k", self.top_k)
        positive("prior_alpha", self.prior_alpha)
        positive("prior_beta", self.prior_beta)
        discount("gamma", self.gamma)
        flag("pooled", self.pooled)
        if self.prior_strength is not None:
            non_negative("prior_strength", self.prior_strength, allow_inf=True)


class EpsilonGreedy(ChunkedPolicy):
    """Contextual epsilon-greedy with exact propensities.

    Parameters
    ----------
    n_arms, n_segments : int
    params : EpsilonGreedyParams, optional

    Attributes
    ----------
    mean_ : float64 array of shape (n_segments, n_arms)
        Posterior mean reward rate (shrunk towards the other segments when pooled).
    prior_strength_ : float
        Strength the pooled prior used at the last update (NaN without pooling).
    """

    name = "epsilon_greedy"
    params: EpsilonGreedyParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: EpsilonGreedyParams | None = None) -> None:
        super().__init__(n_arms, n_segments)
        params = EpsilonGreedyParams() if params is None else params
        if not isinstance(params, EpsilonGreedyParams):
            raise TypeError(f"params must be EpsilonGreedyParams, got {type(params).__name__}")
        self.params = params
        self._after_update()

    def _before_update(self) -> None:
        self._discount(self.params.gamma)

    def _after_update(self) -> None:
        p = self.params
        alpha, beta, self.prior_strength_ = pooled_posterior(
            self.pulls_,
            self.rewards_,
            p.prior_alpha,
            p.prior_beta,
            pooled=p.pooled,
            strength=p.prior_strength,
        )
        self.mean_ = alpha / (alpha + beta)

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        return np.random.default_rng(0) if rng is None else rng  # exact: rng unused

    def exploit_probabilities(
        self, segments: np.ndarray, allowed: np.ndarray, model_proba: np.ndarray | None
    ) -> np.ndarray:
        """Distribution ``q`` of the exploit step, shape (m, n_arms).

        Parameters
        ----------
        segments : int array of shape (m,)
        allowed : bool array of shape (m, n_arms)
        model_proba : float array of shape (m, n_arms) or None
        """
        mean = self.mean_[segments]
        if model_proba is None:
            return uniform_over(tie_mask(mean, allowed))
        k = min(self.params.top_k, self.n_arms)
        masked = np.where(allowed, mean, -np.inf)
        # k-th largest allowed mean (-inf when fewer than k arms are allowed: all qualify).
        kth = -np.partition(-masked, k - 1, axis=1)[:, k - 1]
        candidates = allowed & (masked >= kth[:, None] - TIE_TOL)
        return uniform_over(tie_mask(model_proba, candidates))

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        eps = float(self.params.epsilon)
        explore = eps / allowed.sum(axis=1)  # (m,) probability of each allowed arm via exploration
        probs = (1.0 - eps) * self.exploit_probabilities(segments, allowed, model_proba)
        probs += allowed * explore[:, None]
        mean = self.mean_[segments]

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            arm = sample_categorical(probs[rows], rng)
            # P(explored | arm) = (eps / |allowed|) / P(arm): the same joint law as
            # flipping the epsilon coin first.
            explored = rng.random(rows.shape[0]) * probs[rows, arm] < explore[rows]
            mean_score = mean[rows, arm]
            if model_proba is None:
                return Choice.build(
                    arm,
                    strategy=STRATEGY_EPSILON_GREEDY,
                    explored=explored,
                    bandit_score=mean_score,
                    blend_score=mean_score,
                )
            model = model_proba[rows, arm]
            return Choice.build(
                arm,
                strategy=STRATEGY_EPSILON_GREEDY,
                explored=explored,
                bandit_score=mean_score,
                model_score=model,
                blend_score=model,
                selected_by=np.where(explored, SELECTED_BY_BANDIT, SELECTED_BY_BLEND),
            )

        return Plan(probs, sample)
