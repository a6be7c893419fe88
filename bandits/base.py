"""The one interface every policy implements, and what a decision carries.

A policy keeps sufficient statistics per (segment, arm): how many rewards were
observed (``pulls_``) and their sum (``rewards_``, in [0, 1] per pull, so weighted
engagement works as well as conversion). The daily batch loads them from the
``segment_arm_stats`` mart with :meth:`Policy.set_stats`; the simulator and the API
learn online with :meth:`Policy.partial_fit`.

Arms and segments are integer indices ``0..n_arms-1`` and ``0..n_segments-1``;
mapping them to database ids is the caller's job, so this package stays pure numpy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from bandits._arrays import all_allowed, check_inputs, seed_of, split_rng

# Selection methods recorded on each decision.
SELECTED_BY_BANDIT = "bandit"
SELECTED_BY_MODEL = "model"
SELECTED_BY_BLEND = "blend"

# Base strategies recorded on each decision.
STRATEGY_THOMPSON = "thompson"
STRATEGY_UCB = "ucb"
STRATEGY_EPSILON_GREEDY = "epsilon_greedy"
STRATEGY_UNIFORM = "uniform"

# Lifecycle phases; decisions of a policy without a lifecycle carry PHASE_NONE.
PHASE_INITIALIZATION = "initialization"
PHASE_LEARNING = "learning"
PHASE_OPTIMIZATION = "optimization"
PHASE_NONE = ""


@dataclass(frozen=True)
class DecisionBatch:
    """Decisions for ``n`` customers; every array has shape ``(n,)``.

    Attributes
    ----------
    arm : int64 array
        Chosen arm index.
    propensity : float64 array
        Probability that the policy picks that arm for that customer, over the
        customer's allowed arms (exact, or Monte Carlo for Thompson sampling).
    explored : bool array
        True when the arm was chosen by exploration rather than exploitation.
    bandit_score, model_score, blend_score : float64 arrays
        The score parts of the chosen arm; ``model_score`` is NaN without a model.
    confidence : float64 array
        Confidence of the selection (e.g. posterior probability the arm is best).
    selected_by : str array
        ``"bandit"``, ``"model"`` or ``"blend"``.
    strategy : str array
        The base strategy that decided (``"thompson"``, ``"ucb"``, ``"epsilon_greedy"``, ...).
    phase : str array
        Lifecycle phase (``"initialization"``, ``"learning"``, ``"optimization"``), or
        ``""`` for a policy without a lifecycle.
    policy : str
        Name of the policy object that produced the batch.
    seed : int or None
        Seed of the generator, when known, for reproduction.
    bandit_confidence, model_confidence : float64 arrays or None
        The two confidences a confidence-based hybrid compares: posterior probability
        that the bandit's own pick is best, and model quality times the model's
        normalised margin. NaN where a part does not apply; None from producers that
        do not fill them.
    runner_up, runner_up_propensity : int64 and float64 arrays or None
        The arm other than the chosen one the policy was most likely to choose for the
        customer (lowest index among ties), and that probability; -1 and 0 when no other
        arm had a chance (one allowed arm, or a deterministic choice).

    The str arrays have dtype ``object`` (8 bytes a row rather than a fixed-width
    unicode copy per row).
    """

    arm: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray
    bandit_score: np.ndarray
    model_score: np.ndarray
    blend_score: np.ndarray
    confidence: np.ndarray
    selected_by: np.ndarray
    strategy: np.ndarray
    phase: np.ndarray
    policy: str
    seed: int | None = None
    bandit_confidence: np.ndarray | None = None
    model_confidence: np.ndarray | None = None
    runner_up: np.ndarray | None = None
    runner_up_propensity: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.arm.shape[0])


class Policy(ABC):
    """A bandit policy over ``n_arms`` arms and ``n_segments`` customer segments.

    Subclasses set ``name`` and implement :meth:`decide` and, when they need more than
    the counts, :meth:`_after_update`.
    """

    name: str = "policy"

    def __init__(self, n_arms: int, n_segments: int = 1) -> None:
        if n_arms < 1:
            raise ValueError(f"n_arms must be >= 1, got {n_arms}")
        if n_segments < 1:
            raise ValueError(f"n_segments must be >= 1, got {n_segments}")
        self.n_arms = int(n_arms)
        self.n_segments = int(n_segments)
        self.pulls_ = np.zeros((self.n_segments, self.n_arms))
        self.rewards_ = np.zeros((self.n_segments, self.n_arms))
        self.pending_ = np.zeros((self.n_segments, self.n_arms))

    # -- learning -------------------------------------------------------------------
    def set_stats(self, pulls: np.ndarray, rewards: np.ndarray) -> Policy:
        """Replace the learned state with sufficient statistics.

        Parameters
        ----------
        pulls, rewards : arrays of shape (n_segments, n_arms)
            Matured sends and the sum of their rewards.
        """
        pulls = np.asarray(pulls, dtype=np.float64)
        rewards = np.asarray(rewards, dtype=np.float64)
        expected = (self.n_segments, self.n_arms)
        if pulls.shape != expected or rewards.shape != expected:
            raise ValueError(
                f"stats must have shape {expected}, got pulls {pulls.shape} and rewards {rewards.shape}"
            )
        if (pulls < 0).any() or (rewards < 0).any() or (rewards > pulls + 1e-9).any():
            raise ValueError("stats must satisfy 0 <= rewards <= pulls")
        self.pulls_ = pulls.copy()
        self.rewards_ = rewards.copy()
        self._after_update()
        return self

    def set_pending(self, pending: np.ndarray) -> Policy:
        """Sends made whose outcome has not matured yet, shape (n_segments, n_arms).

        Feedback arrives days late, so yesterday's sends are not in the pulls yet. Policies
        that plan by counts (UCB) count them as pulls at the arm's current mean, so an arm
        is not explored again for sends already on their way; the others ignore them.
        """
        pending = np.asarray(pending, dtype=np.float64)
        if pending.shape != (self.n_segments, self.n_arms):
            raise ValueError(f"pending must have shape {(self.n_segments, self.n_arms)}, got {pending.shape}")
        if (pending < 0).any():
            raise ValueError("pending sends must be >= 0")
        self.pending_ = pending.copy()
        self._after_update()
        return self

    def partial_fit(self, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> Policy:
        """Add observed rewards; arrays of shape (m,)."""
        segments = np.asarray(segments, dtype=np.int64)
        arms = np.asarray(arms, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        self._before_update()
        np.add.at(self.pulls_, (segments, arms), 1.0)
        np.add.at(self.rewards_, (segments, arms), rewards)
        self._after_update()
        return self

    def _before_update(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Hook for policies that discount old evidence before new evidence arrives."""

    def _after_update(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Hook for policies that cache derived state."""

    def _discount(self, gamma: float) -> None:
        """Multiply the counts by ``gamma`` so old evidence fades (gamma = 1: no-op)."""
        if gamma < 1.0:
            self.pulls_ *= gamma
            self.rewards_ *= gamma

    # -- deciding -------------------------------------------------------------------
    @abstractmethod
    def decide(
        self,
        segments: np.ndarray,
        rng: np.random.Generator,
        allowed: np.ndarray | None = None,
        model_proba: np.ndarray | None = None,
    ) -> DecisionBatch:
        """Choose one arm per customer.

        Parameters
        ----------
        segments : int array of shape (n,)
            Segment index of each customer.
        rng : numpy.random.Generator
            The only source of randomness.
        allowed : bool array of shape (n, n_arms), optional
            Arms each customer may receive; every row needs at least one True.
        model_proba : float array of shape (n, n_arms), optional
            The predictive model's P(conversion) for each customer and arm.
        """

    def arm_probabilities(
        self,
        segments: np.ndarray,
        allowed: np.ndarray | None = None,
        model_proba: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Probability that :meth:`decide` picks each arm, for each customer.

        Parameters are those of :meth:`decide`; ``rng`` is needed by policies that
        estimate probabilities by Monte Carlo.

        Returns
        -------
        float64 array of shape (n, n_arms)
            Zero on disallowed arms; each row sums to 1.
        """
        raise NotImplementedError(f"{type(self).__name__} does not expose arm probabilities")


# -- the machinery the policies of this package share ---------------------------------
@dataclass
class Choice:
    """Per-row outcome of sampling a :class:`Plan`; every array has shape (r,)."""

    arm: np.ndarray
    explored: np.ndarray
    bandit_score: np.ndarray
    model_score: np.ndarray
    blend_score: np.ndarray
    confidence: np.ndarray
    selected_by: np.ndarray
    strategy: np.ndarray
    phase: np.ndarray
    bandit_confidence: np.ndarray
    model_confidence: np.ndarray

    @classmethod
    def empty(cls, r: int) -> Choice:
        """A choice of ``r`` rows to be filled with :meth:`put` (every row, by the caller)."""
        nan = np.full(r, np.nan)
        return cls(
            arm=np.zeros(r, dtype=np.int64),
            explored=np.zeros(r, dtype=bool),
            bandit_score=nan.copy(),
            model_score=nan.copy(),
            blend_score=nan.copy(),
            confidence=nan.copy(),
            # Filled by put(); np.empty avoids a slow per-element fill of object arrays.
            selected_by=np.empty(r, dtype=object),
            strategy=np.empty(r, dtype=object),
            phase=np.empty(r, dtype=object),
            bandit_confidence=nan.copy(),
            model_confidence=nan,
        )

    @classmethod
    def build(
        cls,
        arm: np.ndarray,
        *,
        strategy: str,
        explored: np.ndarray,
        bandit_score: np.ndarray | None = None,
        model_score: np.ndarray | None = None,
        blend_score: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        selected_by: str | np.ndarray = SELECTED_BY_BANDIT,
        bandit_confidence: np.ndarray | None = None,
        model_confidence: np.ndarray | None = None,
    ) -> Choice:
        """A choice for ``len(arm)`` rows; missing score parts are NaN."""
        r = arm.shape[0]

        def floats(x: np.ndarray | None) -> np.ndarray:
            return np.full(r, np.nan) if x is None else np.asarray(x, dtype=np.float64)

        return cls(
            arm=arm.astype(np.int64, copy=False),
            explored=np.asarray(explored, dtype=bool),
            bandit_score=floats(bandit_score),
            model_score=floats(model_score),
            blend_score=floats(blend_score),
            confidence=floats(confidence),
            selected_by=(
                np.full(r, selected_by, dtype=object)
                if isinstance(selected_by, str)
                else np.asarray(selected_by, dtype=object)
            ),
            strategy=np.full(r, strategy, dtype=object),
            phase=np.full(r, PHASE_NONE, dtype=object),
            bandit_confidence=floats(bandit_confidence),
            model_confidence=floats(model_confidence),
        )

    def put(self, positions: np.ndarray, other: Choice) -> None:
        """Write ``other`` (len(positions) rows) into rows ``positions`` of this choice."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[positions] = getattr(other, name)


@dataclass
class Plan:
    """What a policy will do for a chunk of ``m`` customers.

    Attributes
    ----------
    probs : float64 array of shape (m, n_arms)
        The exact distribution :attr:`sample` draws from, row by row: the logged
        propensity of a sampled arm is read from here.
    sample : callable (rows, rng) -> Choice
        Draws one arm for each row index in ``rows`` (int array of shape (r,)).
    """

    probs: np.ndarray
    sample: Callable[[np.ndarray, np.random.Generator], Choice]


class ChunkedPolicy(Policy):
    """A policy that plans chunks of customers and samples from the plan.

    Subclasses implement :meth:`_plan`; :meth:`decide` and :meth:`arm_probabilities`
    share it, so the logged propensity is the probability the arm was drawn with.
    Customers are processed ``chunk_size`` at a time to bound memory.
    """

    #: Customers planned at once; (chunk_size x n_arms) float64 temporaries are ~25 MB.
    chunk_size: int = 65_536

    @abstractmethod
    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        """Plan a chunk.

        Parameters
        ----------
        segments : int64 array of shape (m,)
        allowed : bool array of shape (m, n_arms)
        model_proba : float array of shape (m, n_arms) or None
        rng : numpy.random.Generator
        start : int
            Position of the chunk's first row within the batch (for rotation).
        """

    def _after_decide(self, n: int) -> None:
        """Hook for policies that count decisions."""

    def start_block(self, index: int) -> None:  # noqa: B027 -- optional hook, empty by design
        """The decisions that follow form block ``index``, decided apart from every other block
        (one customer shard of a partitioned decide list): a policy that counts decisions starts
        the block from a position that depends on ``index`` alone, never on earlier blocks."""

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is None:
            raise ValueError(f"{self.name} estimates probabilities by Monte Carlo: pass rng")
        return rng

    def _begin_batch(self) -> None:
        """Hook: a decide/arm_probabilities call starts (e.g. open per-call caches)."""

    def _end_batch(self) -> None:
        """Hook: the call has ended, normally or not (e.g. drop per-call caches)."""

    def _plans(
        self,
        segments: np.ndarray,
        allowed: np.ndarray | None,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
    ) -> Iterator[tuple[int, int, Plan]]:
        """Plan the batch chunk by chunk: yields (lo, hi, plan) for rows lo:hi."""
        self._begin_batch()
        try:
            n = segments.shape[0]
            for lo in range(0, n, self.chunk_size):
                hi = min(n, lo + self.chunk_size)
                plan = self._plan(
                    segments[lo:hi],
                    all_allowed(hi - lo, self.n_arms) if allowed is None else allowed[lo:hi],
                    None if model_proba is None else model_proba[lo:hi],
                    rng,
                    lo,
                )
                yield lo, hi, plan
        finally:
            self._end_batch()

    def arm_probabilities(
        self,
        segments: np.ndarray,
        allowed: np.ndarray | None = None,
        model_proba: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        segments, allowed, model_proba = check_inputs(
            segments, allowed, model_proba, self.n_arms, self.n_segments
        )
        # The plan stream of decide() with the same rng: same plans, same probabilities.
        plan_rng = split_rng(self._rng_for_probabilities(rng))[0]
        out = np.empty((segments.shape[0], self.n_arms))
        for lo, hi, plan in self._plans(segments, allowed, model_proba, plan_rng):
            out[lo:hi] = plan.probs
        return out

    def decide(
        self,
        segments: np.ndarray,
        rng: np.random.Generator,
        allowed: np.ndarray | None = None,
        model_proba: np.ndarray | None = None,
    ) -> DecisionBatch:
        segments, allowed, model_proba = check_inputs(
            segments, allowed, model_proba, self.n_arms, self.n_segments
        )
        # Planning and sampling use separate streams, so arm_probabilities() with an
        # identically seeded rng reproduces exactly the probabilities sampled from.
        plan_rng, draw_rng = split_rng(rng)
        n = segments.shape[0]
        out = Choice.empty(n)
        propensity = np.empty(n)
        runner_up = np.empty(n, dtype=np.int64)
        runner_up_propensity = np.empty(n)
        for lo, hi, plan in self._plans(segments, allowed, model_proba, plan_rng):
            rows = np.arange(hi - lo)
            choice = plan.sample(rows, draw_rng)
            propensity[lo:hi] = plan.probs[rows, choice.arm]
            others = plan.probs.copy()
            others[rows, choice.arm] = -1.0
            best = others.argmax(axis=1)
            p_best = others[rows, best]
            runner_up[lo:hi] = np.where(p_best > 0, best, -1)
            runner_up_propensity[lo:hi] = np.maximum(p_best, 0.0)
            out.put(np.arange(lo, hi), choice)
        self._after_decide(n)
        return DecisionBatch(
            arm=out.arm,
            propensity=propensity,
            explored=out.explored,
            bandit_score=out.bandit_score,
            model_score=out.model_score,
            blend_score=out.blend_score,
            confidence=out.confidence,
            selected_by=out.selected_by,
            strategy=out.strategy,
            phase=out.phase,
            policy=self.name,
            seed=seed_of(rng),
            bandit_confidence=out.bandit_confidence,
            model_confidence=out.model_confidence,
            runner_up=runner_up,
            runner_up_propensity=runner_up_propensity,
        )
