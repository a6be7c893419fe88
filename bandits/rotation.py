"""Strategy rotation and randomized interleaving.

:class:`Rotation` hands decisions to its policies in turn, ``period`` decisions each
(Thompson -> UCB -> epsilon-greedy by default). Which policy decides is fixed by
the decision's position, so the propensity is that policy's own.

:class:`Interleaved` assigns every decision to a policy at random with the given
weights. The honest propensity of the chosen arm is then the mixture
``sum_s w_s * p_s(arm)``, not the probability under the policy that happened to
decide.

Both record the deciding strategy per decision. All policies learn from every
update (each with its own discount).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bandits._composite import CompositePolicy, mixture_plan, partition_plan
from bandits._params import non_negative, positive_int
from bandits.base import ChunkedPolicy, Plan


@dataclass(frozen=True)
class RotationParams:
    """Hyperparameters of :class:`Rotation`.

    Attributes
    ----------
    period : int >= 1
        Decisions handed to one policy before the next takes over.
    """

    period: int = 1000

    def __post_init__(self) -> None:
        positive_int("period", self.period)


class Rotation(CompositePolicy):
    """Rotate between policies every ``period`` decisions.

    Parameters
    ----------
    policies : sequence of ChunkedPolicy
        In rotation order.
    params : RotationParams, optional

    Attributes
    ----------
    n_decisions_ : int
        Decisions made so far; the next decision's position. A batch counts row by
        row, so a batch of 2,500 with ``period=1000`` spans three turns.
    """

    name = "rotation"

    def __init__(self, policies: Sequence[ChunkedPolicy], params: RotationParams | None = None) -> None:
        self.params = RotationParams() if params is None else params
        self.n_decisions_ = 0
        super().__init__(policies)

    def current_policy(self) -> ChunkedPolicy:
        """The policy that makes the next decision."""
        return self.children[(self.n_decisions_ // self.params.period) % len(self.children)]

    def _after_decide(self, n: int) -> None:
        self.n_decisions_ += n
        super()._after_decide(n)

    def start_block(self, index: int) -> None:
        # Block k starts at turn k: small blocks (a shard holds few of a day's customers) still
        # reach every strategy, and a block's turns do not depend on which blocks came before.
        self.n_decisions_ = index * self.params.period
        super().start_block(index)

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        m = segments.shape[0]
        position = self.n_decisions_ + start + np.arange(m)
        turn = (position // self.params.period) % len(self.children)
        parts = []
        for j, child in enumerate(self.children):
            rows = np.flatnonzero(turn == j)
            if rows.size:
                sub_model = None if model_proba is None else model_proba[rows]
                parts.append((rows, child._plan(segments[rows], allowed[rows], sub_model, rng, start)))
        return partition_plan(m, self.n_arms, parts)


@dataclass(frozen=True)
class InterleavedParams:
    """Hyperparameters of :class:`Interleaved`.

    Attributes
    ----------
    weights : tuple of float >= 0, or None
        Probability of each policy deciding (normalised to sum to 1); None: equal.
    """

    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.weights is None:
            return
        if isinstance(self.weights, str) or not isinstance(self.weights, Sequence) or not self.weights:
            raise ValueError(f"weights must be a non-empty list of numbers, got {self.weights!r}")
        for i, w in enumerate(self.weights):
            non_negative(f"weights[{i}]", w)
        total = float(sum(self.weights))
        if total <= 0:
            raise ValueError(f"weights must not all be 0, got {list(self.weights)}")
        object.__setattr__(self, "weights", tuple(float(w) / total for w in self.weights))


class Interleaved(CompositePolicy):
    """Give each decision to a policy drawn at random with fixed weights.

    Parameters
    ----------
    policies : sequence of ChunkedPolicy
    params : InterleavedParams, optional
    """

    name = "interleaved"

    def __init__(self, policies: Sequence[ChunkedPolicy], params: InterleavedParams | None = None) -> None:
        self.params = InterleavedParams() if params is None else params
        super().__init__(policies)
        weights = self.params.weights
        if weights is None:
            weights = tuple(1.0 / len(self.children) for _ in self.children)
        elif len(weights) != len(self.children):
            raise ValueError(
                f"weights must have one entry per strategy ({len(self.children)}), got {len(weights)}"
            )
        self.weights = np.asarray(weights)

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        used = np.flatnonzero(self.weights > 0)  # a policy that never decides needs no plan
        plans = [self.children[j]._plan(segments, allowed, model_proba, rng, start) for j in used]
        return mixture_plan(plans, self.weights[used].tolist())
