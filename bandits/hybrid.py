"""Bandit + predictive model hybrids.

Weighted blends
---------------
``value = weight * bandit value + (1 - weight) * model P(conversion)`` per customer
and arm, and the arm with the highest value is chosen.

* :class:`ThompsonBlend` (default weight 0.7): the bandit value is the posterior
  sample, so the choice stays random; propensities by Monte Carlo per customer
  (``blend_draws`` samples, see :mod:`bandits.thompson`).
* :class:`UCBBlend` (default weight 0.6): the bandit value is the UCB index (KL-UCB by
  default, see :mod:`bandits.ucb`) capped at 1. The KL index is already a rate in
  [0, 1]; the cap matters for UCB1 and for untried arms (infinite index), which all
  get 1 and are ranked by the model. Both terms stay on the probability scale the
  model speaks (a min-max rescaling per customer would not: it would make a 0.1-point
  gap between arms look as large as a 50-point one). In a batch of more than one
  customer (``allocation="fill"``) the bandit value is the index *after the batch's
  hallucinated pulls* (the allocation of :mod:`bandits.ucb`, computed without the
  model): the arms the batch would explore all sit at about the common water level
  (to within one pull), so among them the model decides per customer, and an arm
  below the level needs a model advantage of ``weight / (1 - weight)`` times its gap
  to be chosen. Without that every customer of a segment would see the same dominant
  index and the whole batch would go to one arm. With one customer it is the current
  index. The choice is the argmax of the value per customer, deterministic but for
  ties: exact propensities (``1 / #tied-best``). With ``weight=1`` the model is
  ignored and the batch is allocated exactly as :class:`~bandits.ucb.UCB` does.

Without ``model_proba`` both behave exactly as the bandit alone.

Confidence-based hybrid
-----------------------
:class:`ConfidenceHybrid` lets the bandit (Thompson sampling) and the model each pick
an arm with a confidence, and keeps the more confident pick (the bandit wins ties):

* bandit confidence: posterior probability that its (sampled) arm is best, by
  Monte Carlo;
* model confidence: ``model_quality`` (a number in [0, 1], e.g.
  :func:`quality_from_auc` of the validation AUC) times the model's relative margin
  ``(p1 - p2) / p1`` between its top two allowed arms.

Its propensity is exact given the Monte Carlo vector ``pi`` the bandit samples from::

    P(a) = pi[a] * 1[pi[a] >= c_model] + 1[a = model arm] * sum_{j: pi[j] < c_model} pi[j]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._params import interval, number
from bandits.base import (
    SELECTED_BY_BANDIT,
    SELECTED_BY_MODEL,
    STRATEGY_THOMPSON,
    Choice,
    Plan,
)
from bandits.thompson import ThompsonParams, ThompsonSampling
from bandits.ucb import UCB, UCBParams


@dataclass(frozen=True)
class ThompsonBlendParams(ThompsonParams):
    """:class:`~bandits.thompson.ThompsonParams` plus ``weight`` in [0, 1] (default 0.7)."""

    weight: float = 0.7

    def __post_init__(self) -> None:
        super().__post_init__()
        interval("weight", self.weight, 0.0, 1.0)


class ThompsonBlend(ThompsonSampling):
    """Thompson sampling on ``weight * posterior sample + (1 - weight) * model proba``.

    Parameters
    ----------
    n_arms, n_segments : int
    params : ThompsonBlendParams, optional
    """

    name = "thompson_blend"
    params: ThompsonBlendParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: ThompsonBlendParams | None = None) -> None:
        params = ThompsonBlendParams() if params is None else params
        if not isinstance(params, ThompsonBlendParams):
            raise TypeError(f"params must be ThompsonBlendParams, got {type(params).__name__}")
        super().__init__(n_arms, n_segments, params)

    def _blend_weight(self, model_proba: np.ndarray | None) -> float | None:
        # weight 1 ignores the model: take the cheaper grouped path, same distribution.
        if model_proba is None or self.params.weight == 1.0:
            return None
        return float(self.params.weight)


@dataclass(frozen=True)
class UCBBlendParams(UCBParams):
    """:class:`~bandits.ucb.UCBParams` plus ``weight`` in [0, 1] (default 0.6)."""

    weight: float = 0.6

    def __post_init__(self) -> None:
        super().__post_init__()
        interval("weight", self.weight, 0.0, 1.0)


class UCBBlend(UCB):
    """UCB on ``weight * min(index, 1) + (1 - weight) * model proba``.

    Parameters
    ----------
    n_arms, n_segments : int
    params : UCBBlendParams, optional
    """

    name = "ucb_blend"
    params: UCBBlendParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: UCBBlendParams | None = None) -> None:
        params = UCBBlendParams() if params is None else params
        if not isinstance(params, UCBBlendParams):
            raise TypeError(f"params must be UCBBlendParams, got {type(params).__name__}")
        super().__init__(n_arms, n_segments, params)

    def _blend_weight(self, model_proba: np.ndarray | None) -> float | None:
        return None if model_proba is None else float(self.params.weight)


def quality_from_auc(auc: float) -> float:
    """Map a validation AUC to a model quality in [0, 1]: ``clip(2 * auc - 1, 0, 1)``.

    0 for a model no better than chance, 1 for a perfect ranking (the Gini coefficient).
    """
    x = number("auc", auc)
    return float(min(max(2.0 * x - 1.0, 0.0), 1.0))


@dataclass(frozen=True)
class ConfidenceHybridParams(ThompsonParams):
    """:class:`~bandits.thompson.ThompsonParams` plus ``model_quality`` in [0, 1] (default 0.5)."""

    model_quality: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        interval("model_quality", self.model_quality, 0.0, 1.0)


def model_confidence(
    model_proba: np.ndarray, allowed: np.ndarray, quality: float
) -> tuple[np.ndarray, np.ndarray]:
    """The model's pick and confidence per customer.

    Parameters
    ----------
    model_proba : float array of shape (m, n_arms)
    allowed : bool array of shape (m, n_arms)
    quality : float in [0, 1]

    Returns
    -------
    arm : int64 array of shape (m,)
        Top allowed arm by model probability (first on ties -- a tie has margin 0,
        so the model never wins with it).
    confidence : float64 array of shape (m,)
        ``quality * (p1 - p2) / p1``; a single allowed arm has margin 1.
    """
    masked = np.where(allowed, model_proba, -np.inf).astype(np.float64)
    arm = masked.argmax(axis=1).astype(np.int64)
    if masked.shape[1] == 1:
        top1, top2 = masked[:, 0], np.zeros(masked.shape[0])
    else:
        top = -np.partition(-masked, 1, axis=1)[:, :2]
        top1, top2 = top[:, 0], np.where(np.isfinite(top[:, 1]), top[:, 1], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(top1 > 0, (top1 - top2) / top1, 0.0)
    return arm, quality * margin


class ConfidenceHybrid(ThompsonSampling):
    """Thompson sampling or the model, whichever is more confident, per customer.

    Decisions record ``selected_by`` (``"bandit"``/``"model"``), ``confidence`` (of the
    selection) and both ``bandit_confidence`` and ``model_confidence``.

    Parameters
    ----------
    n_arms, n_segments : int
    params : ConfidenceHybridParams, optional
    """

    name = "confidence_hybrid"
    params: ConfidenceHybridParams

    def __init__(
        self, n_arms: int, n_segments: int = 1, params: ConfidenceHybridParams | None = None
    ) -> None:
        params = ConfidenceHybridParams() if params is None else params
        if not isinstance(params, ConfidenceHybridParams):
            raise TypeError(f"params must be ConfidenceHybridParams, got {type(params).__name__}")
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
        gd = self.group_draws(segments, allowed, rng)
        pi = gd.probs[gd.inverse]  # (m, n_arms): the bandit's pick distribution
        model_arm, c_model = model_confidence(model_proba, allowed, float(self.params.model_quality))
        keep = pi >= c_model[:, None]  # bandit picks that beat the model
        probs = np.where(keep, pi, 0.0)
        probs[np.arange(pi.shape[0]), model_arm] += np.where(keep, 0.0, pi).sum(axis=1)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            group, d, bandit_arm = gd.draw(rows, rng)
            c_bandit = gd.probs[group, bandit_arm]
            by_bandit = c_bandit >= c_model[rows]
            arm = np.where(by_bandit, bandit_arm, model_arm[rows])
            return Choice.build(
                arm,
                strategy=STRATEGY_THOMPSON,
                explored=by_bandit & ~gd.greedy[group, arm],
                bandit_score=gd.theta[gd.pool[group], d, arm],
                model_score=model_proba[rows, arm],
                confidence=np.where(by_bandit, c_bandit, c_model[rows]),
                selected_by=np.where(by_bandit, SELECTED_BY_BANDIT, SELECTED_BY_MODEL),
                bandit_confidence=c_bandit,
                model_confidence=c_model[rows],
            )

        return Plan(probs, sample)
