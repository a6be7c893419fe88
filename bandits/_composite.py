"""Policies made of policies: shared learning and plan assembly.

Private to :mod:`bandits`; used by rotation, interleaving and the lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bandits.base import Choice, ChunkedPolicy, Plan


class CompositePolicy(ChunkedPolicy):
    """A policy that delegates decisions to child policies over the same arms and segments.

    Parameters
    ----------
    children : sequence of ChunkedPolicy
        Policies with equal ``n_arms`` and ``n_segments``.
    share_stats : bool
        True: only the first child learns (with its own discount) and the others get
        a copy of its statistics. False: every child learns from every update with
        its own discount.

    ``pulls_`` and ``rewards_`` mirror the first child's.
    """

    def __init__(self, children: Sequence[ChunkedPolicy], share_stats: bool = False) -> None:
        children = list(children)
        if not children:
            raise ValueError("a composite policy needs at least one policy")
        for child in children:
            if not isinstance(child, ChunkedPolicy):
                raise TypeError(f"{type(child).__name__} does not plan decisions; use a policy from bandits")
        first = children[0]
        for child in children[1:]:
            if (child.n_arms, child.n_segments) != (first.n_arms, first.n_segments):
                raise ValueError(
                    f"policies must share n_arms and n_segments, got {(first.n_arms, first.n_segments)} "
                    f"and {(child.n_arms, child.n_segments)}"
                )
        super().__init__(first.n_arms, first.n_segments)
        self.children = children
        self.share_stats = share_stats
        self._sync()

    def _sync(self) -> None:
        first = self.children[0]
        if self.share_stats:
            for child in self.children[1:]:
                child.set_stats(first.pulls_, first.rewards_)
        self.pulls_ = first.pulls_.copy()
        self.rewards_ = first.rewards_.copy()
        self._after_update()

    def set_stats(self, pulls: np.ndarray, rewards: np.ndarray) -> CompositePolicy:
        for child in self.children[:1] if self.share_stats else self.children:
            child.set_stats(pulls, rewards)
        self._sync()
        return self

    def set_pending(self, pending: np.ndarray) -> CompositePolicy:
        super().set_pending(pending)  # checks the shape
        for child in self.children:  # a UCB child counts them, the others ignore them
            child.set_pending(pending)
        return self

    def partial_fit(self, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> CompositePolicy:
        for child in self.children[:1] if self.share_stats else self.children:
            child.partial_fit(segments, arms, rewards)
        self._sync()
        return self

    def _after_decide(self, n: int) -> None:
        for child in self.children:
            child._after_decide(n)

    def start_block(self, index: int) -> None:
        for child in self.children:
            child.start_block(index)

    def _begin_batch(self) -> None:
        for child in self.children:
            child._begin_batch()

    def _end_batch(self) -> None:
        for child in self.children:
            child._end_batch()

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is None:
            for child in self.children:
                child._rng_for_probabilities(None)  # raises for Monte Carlo children
            return np.random.default_rng(0)
        return rng


def partition_plan(n_rows: int, n_arms: int, parts: Sequence[tuple[np.ndarray, Plan]]) -> Plan:
    """A plan whose rows are split between sub-plans.

    Parameters
    ----------
    n_rows, n_arms : int
    parts : sequence of (rows, plan)
        ``rows`` (int array of shape (r,)) of the chunk planned by ``plan``; the rows of
        all parts cover the chunk exactly once.
    """
    probs = np.zeros((n_rows, n_arms))
    owner = np.zeros(n_rows, dtype=np.int64)
    local = np.zeros(n_rows, dtype=np.int64)
    for j, (rows, plan) in enumerate(parts):
        probs[rows] = plan.probs
        owner[rows] = j
        local[rows] = np.arange(rows.shape[0])

    def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
        out = Choice.empty(rows.shape[0])
        for j, (_, plan) in enumerate(parts):
            sel = np.flatnonzero(owner[rows] == j)
            if sel.size:
                out.put(sel, plan.sample(local[rows[sel]], rng))
        return out

    return Plan(probs, sample)


def mixture_plan(plans: Sequence[Plan], weights: Sequence[float]) -> Plan:
    """A plan that picks sub-plan ``j`` with probability ``weights[j]`` for each row.

    Its probabilities are the mixture ``sum_j weights[j] * plans[j].probs``: the
    honest propensity of an arm over the randomness of both steps.
    """
    w = np.asarray(weights, dtype=np.float64)
    probs = sum((wj * plan.probs for wj, plan in zip(w, plans, strict=True)), np.zeros_like(plans[0].probs))

    def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
        which = rng.choice(len(plans), size=rows.shape[0], p=w)
        out = Choice.empty(rows.shape[0])
        for j, plan in enumerate(plans):
            sel = np.flatnonzero(which == j)
            if sel.size:
                out.put(sel, plan.sample(rows[sel], rng))
        return out

    return Plan(probs, sample)
