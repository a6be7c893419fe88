"""Campaign lifecycle: initialization -> learning -> optimization, per segment.

The phase of a segment follows from the statistics alone (so a rerun from the same
statistics decides the same way; a discount can move a segment back). With
``pooled=True`` (the default) the tests read the segment's *pooled* posterior: its
own evidence plus what the empirical-Bayes prior borrows from the other segments
(:func:`bandits.thompson.pooled_posterior`, Thompson sampling's ``"pooled"``
prior). Its effective pulls are own pulls plus borrowed pseudo-observations, so
where segments do not differ a small segment inherits the population's progress
instead of exploring uniformly on its own; where they do differ, the borrowing is
capped and the segment needs its own data. With ``pooled=False`` (or one segment)
only the segment's own pulls count.

* ``initialization`` while the segment has fewer than ``learning_min_pulls``
  effective pulls per arm on average. More exploration and conservative: with
  probability ``init_uniform`` a uniformly random allowed arm, otherwise the
  wrapped policy *without* the model's scores (the model has not yet been checked
  against this campaign's feedback). Propensity: the mixture of both.
* ``optimization`` once the segment has at least ``optimization_min_pulls``
  effective pulls per arm on average *and* the mean posterior standard deviation
  over its arms is at most ``optimization_max_std``: exploit with the model and
  minimal exploration -- contextual epsilon-greedy with ``optimization_epsilon``
  and ``top_k`` (:mod:`bandits.epsilon_greedy`, pooled like the phase tests).
* ``learning`` in between: the wrapped policy, with the model's scores.

The phase is recorded on every decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import beta_std
from bandits._composite import CompositePolicy, mixture_plan, partition_plan
from bandits._params import flag, interval, non_negative, positive, positive_int
from bandits.base import (
    PHASE_INITIALIZATION,
    PHASE_LEARNING,
    PHASE_OPTIMIZATION,
    Choice,
    ChunkedPolicy,
    Plan,
)
from bandits.epsilon_greedy import EpsilonGreedy, EpsilonGreedyParams
from bandits.thompson import pooled_posterior
from bandits.uniform import UniformRandom

PHASES = (PHASE_INITIALIZATION, PHASE_LEARNING, PHASE_OPTIMIZATION)


@dataclass(frozen=True)
class LifecycleParams:
    """Hyperparameters of :class:`Lifecycle`.

    Attributes
    ----------
    init_uniform : float in [0, 1]
        Share of uniformly random decisions during initialization.
    learning_min_pulls : float >= 0
        Average effective pulls per arm in a segment that end initialization.
    optimization_min_pulls : float >= learning_min_pulls
        Average effective pulls per arm needed for optimization.
    optimization_max_std : float in (0, 0.5]
        Mean posterior standard deviation (over arms) needed for optimization.
    optimization_epsilon : float in [0, 1]
        Exploration rate during optimization.
    top_k : int >= 1
        Arms by posterior mean the model chooses among during optimization.
    prior_alpha, prior_beta : float > 0
        Beta prior of the posterior used for the phase test and the optimizer.
    pooled : bool
        Phase tests and optimizer read the pooled posterior (own plus borrowed
        evidence, see the module docstring); False: the segment's own evidence only.
    prior_strength : float >= 0, inf, or None
        Cap on the pseudo-observations borrowed from other segments; None estimates
        it from the data (empirical Bayes), inf borrows everything.
    """

    init_uniform: float = 0.5
    learning_min_pulls: float = 20.0
    optimization_min_pulls: float = 200.0
    optimization_max_std: float = 0.02
    optimization_epsilon: float = 0.02
    top_k: int = 3
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    pooled: bool = True
    prior_strength: float | None = None

    def __post_init__(self) -> None:
        interval("init_uniform", self.init_uniform, 0.0, 1.0)
        non_negative("learning_min_pulls", self.learning_min_pulls)
        non_negative("optimization_min_pulls", self.optimization_min_pulls)
        if self.optimization_min_pulls < self.learning_min_pulls:
            raise ValueError(
                f"optimization_min_pulls must be >= learning_min_pulls ({self.learning_min_pulls}), "
                f"got {self.optimization_min_pulls}"
            )
        interval("optimization_max_std", self.optimization_max_std, 0.0, 0.5, lo_open=True)
        interval("optimization_epsilon", self.optimization_epsilon, 0.0, 1.0)
        positive_int("top_k", self.top_k)
        positive("prior_alpha", self.prior_alpha)
        positive("prior_beta", self.prior_beta)
        flag("pooled", self.pooled)
        if self.prior_strength is not None:
            non_negative("prior_strength", self.prior_strength, allow_inf=True)


class Lifecycle(CompositePolicy):
    """Wrap a policy with initialization, learning and optimization phases per segment.

    Parameters
    ----------
    base : ChunkedPolicy
        The policy of the learning phase (and, without the model, of initialization).
        It owns the statistics; the uniform explorer and the optimizer read copies.
    params : LifecycleParams, optional

    Attributes
    ----------
    phase_ : int array of shape (n_segments,)
        Index into :data:`PHASES` of each segment's current phase.
    effective_pulls_ : float64 array of shape (n_segments,)
        Average effective pulls per arm of each segment (own plus borrowed).
    posterior_std_ : float64 array of shape (n_segments,)
        Mean posterior standard deviation over each segment's arms.
    """

    name = "lifecycle"

    def __init__(self, base: ChunkedPolicy, params: LifecycleParams | None = None) -> None:
        self.params = LifecycleParams() if params is None else params
        p = self.params
        uniform = UniformRandom(base.n_arms, base.n_segments)
        optimizer = EpsilonGreedy(
            base.n_arms,
            base.n_segments,
            EpsilonGreedyParams(
                epsilon=p.optimization_epsilon,
                top_k=p.top_k,
                prior_alpha=p.prior_alpha,
                prior_beta=p.prior_beta,
                pooled=p.pooled,
                prior_strength=p.prior_strength,
            ),
        )
        super().__init__([base, uniform, optimizer], share_stats=True)

    @property
    def base(self) -> ChunkedPolicy:
        return self.children[0]

    def _after_update(self) -> None:
        p = self.params
        alpha, beta, _ = pooled_posterior(
            self.pulls_,
            self.rewards_,
            p.prior_alpha,
            p.prior_beta,
            pooled=p.pooled,
            strength=p.prior_strength,
        )
        per_arm = (alpha + beta - (p.prior_alpha + p.prior_beta)).mean(axis=1)
        std = beta_std(alpha, beta).mean(axis=1)
        self.effective_pulls_, self.posterior_std_ = per_arm, std
        optimize = (per_arm >= p.optimization_min_pulls) & (std <= p.optimization_max_std)
        self.phase_ = np.where(per_arm < p.learning_min_pulls, 0, np.where(optimize, 2, 1))

    def segment_phases(self) -> list[str]:
        """Current phase name of each segment."""
        return [PHASES[i] for i in self.phase_]

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        base, uniform, optimizer = self.children
        phase = self.phase_[segments]
        parts: list[tuple[np.ndarray, Plan]] = []
        for j in range(len(PHASES)):
            rows = np.flatnonzero(phase == j)
            if not rows.size:
                continue
            seg, allow = segments[rows], allowed[rows]
            model = None if model_proba is None else model_proba[rows]
            if j == 0:
                u = float(self.params.init_uniform)
                plans, weights = [], []
                if u > 0:
                    plans.append(uniform._plan(seg, allow, None, rng, start))
                    weights.append(u)
                if u < 1:
                    plans.append(base._plan(seg, allow, None, rng, start))
                    weights.append(1.0 - u)
                plan = mixture_plan(plans, weights)
            elif j == 1:
                plan = base._plan(seg, allow, model, rng, start)
            else:
                plan = optimizer._plan(seg, allow, model, rng, start)
            parts.append((rows, plan))
        inner = partition_plan(segments.shape[0], self.n_arms, parts)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            out = inner.sample(rows, rng)
            out.phase = np.asarray(PHASES, dtype=object)[phase[rows]]
            if model_proba is not None:  # initialization ignores the model but logs its score
                out.model_score = model_proba[rows, out.arm].astype(np.float64)
            return out

        return Plan(inner.probs, sample)
