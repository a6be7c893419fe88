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
from dataclasses import dataclass

import numpy as np

# Selection methods recorded on each decision.
SELECTED_BY_BANDIT = "bandit"
SELECTED_BY_MODEL = "model"
SELECTED_BY_BLEND = "blend"


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
        Lifecycle phase (``"initialization"``, ``"learning"``, ``"optimization"``).
    policy : str
        Name of the policy object that produced the batch.
    seed : int or None
        Seed of the generator, when known, for reproduction.
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

    def _before_update(self) -> None:
        """Hook for policies that discount old evidence before new evidence arrives."""

    def _after_update(self) -> None:
        """Hook for policies that cache derived state."""

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
