"""Model-led exploration: inverse-gap weighting over the model's scores (SquareCB).

With a model, each customer's arm is drawn from the inverse-gap-weighted distribution of
Abe & Long (1999) / Foster & Rakhlin's SquareCB (2020) over the customer's ``K`` allowed
arms, ``b`` the model's best allowed arm::

    P(a) = 1 / (K + igw_gamma * gap(a))           for a != b
    P(b) = 1 - sum of the others              (split evenly among tied best arms)

    gap(a) = (p_b - p_a) / p_b                 the model's *relative* shortfall of arm a

So the model decides, and explores where it is unsure: an arm the model scores close to
the best is tried nearly as often as the best, an arm far below it rarely, and each
customer's exploration follows its own scores instead of a segment average. The gap is
relative to the best arm's probability so that one ``igw_gamma`` means the same at a 1 % and
a 20 % base rate (the absolute gaps of a 1 % campaign would all be below 0.01). The
distribution is a closed form of the scores: the logged propensities are exact.
``igw_gamma = 0`` is uniform over the allowed arms; a large one approaches greedy.

Without a model (no champion promoted yet, or the campaign has none) it *is* segment
Thompson sampling (the :class:`~bandits.thompson.ThompsonSampling` it extends, with its
pooled prior): the segment bandit explores until a model has passed the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import sample_categorical, tie_mask
from bandits._params import non_negative
from bandits.base import SELECTED_BY_MODEL, Choice, Plan
from bandits.thompson import ThompsonParams, ThompsonSampling

STRATEGY_IGW = "igw"


@dataclass(frozen=True)
class IGWParams(ThompsonParams):
    """:class:`~bandits.thompson.ThompsonParams` (the fallback without a model) plus ``igw_gamma``.

    Attributes
    ----------
    igw_gamma : float >= 0
        Exploitation strength (SquareCB's gamma; ``gamma`` is the fallback's discount):
        an arm whose model score is a share ``g`` below the best's gets probability
        ``1 / (K + igw_gamma * g)``.
    """

    igw_gamma: float = 5000.0

    def __post_init__(self) -> None:
        super().__post_init__()
        non_negative("igw_gamma", self.igw_gamma)


def igw_probabilities(model_proba: np.ndarray, allowed: np.ndarray, gamma: float) -> np.ndarray:
    """The inverse-gap-weighted distribution of every row, shape (m, n_arms).

    Parameters
    ----------
    model_proba : float array of shape (m, n_arms)
    allowed : bool array of shape (m, n_arms)
    gamma : float >= 0

    Returns
    -------
    float64 array of shape (m, n_arms)
        Zero on disallowed arms; rows sum to 1.
    """
    scores = np.where(allowed, model_proba, -np.inf).astype(np.float64)
    best = scores.max(axis=1, keepdims=True)
    k = allowed.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(best > 0, (best - scores) / best, 0.0)
    tied = tie_mask(model_proba, allowed)  # a zero best ties every allowed arm
    others = np.where(allowed & ~tied, 1.0 / (k + gamma * np.maximum(gap, 0.0)), 0.0)
    rest = 1.0 - others.sum(axis=1, keepdims=True)  # >= |tied| / K: each other arm has <= 1/K
    return others + tied * (rest / tied.sum(axis=1, keepdims=True))


class InverseGapWeighting(ThompsonSampling):
    """SquareCB over the champion's scores; segment Thompson sampling without a model.

    Decisions with a model record ``selected_by = "model"``, ``strategy = "igw"``,
    ``explored`` when the arm is not the model's best, and the chosen arm's model score
    (``model_score``, ``blend_score``) and segment posterior mean (``bandit_score``).

    Parameters
    ----------
    n_arms, n_segments : int
    params : IGWParams, optional
    """

    name = "igw"
    params: IGWParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: IGWParams | None = None) -> None:
        params = IGWParams() if params is None else params
        if not isinstance(params, IGWParams):
            raise TypeError(f"params must be IGWParams, got {type(params).__name__}")
        super().__init__(n_arms, n_segments, params)

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        if model_proba is None:
            return self._plan_bandit(segments, allowed, None, rng)
        probs = igw_probabilities(model_proba, allowed, float(self.params.igw_gamma))
        greedy = tie_mask(model_proba, allowed)
        mean = self.posterior_mean()[segments]

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            arm = sample_categorical(probs[rows], rng)
            score = model_proba[rows, arm]
            return Choice.build(
                arm,
                strategy=STRATEGY_IGW,
                explored=~greedy[rows, arm],
                bandit_score=mean[rows, arm],
                model_score=score,
                blend_score=score,
                confidence=probs[rows, arm],
                selected_by=SELECTED_BY_MODEL,
            )

        return Plan(probs, sample)
