"""Uniform random baseline: every allowed arm with probability 1 / |allowed| (exact)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import sample_categorical, uniform_over
from bandits.base import STRATEGY_UNIFORM, Choice, ChunkedPolicy, Plan


@dataclass(frozen=True)
class UniformParams:
    """The uniform baseline has no hyperparameters."""


class UniformRandom(ChunkedPolicy):
    """Pick an allowed arm uniformly at random; every decision counts as exploration.

    Parameters
    ----------
    n_arms, n_segments : int
    params : UniformParams, optional
    """

    name = "uniform"

    def __init__(self, n_arms: int, n_segments: int = 1, params: UniformParams | None = None) -> None:
        super().__init__(n_arms, n_segments)
        self.params = UniformParams() if params is None else params

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        return np.random.default_rng(0) if rng is None else rng  # exact: rng unused

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        probs = uniform_over(allowed)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            arm = sample_categorical(probs[rows], rng)
            return Choice.build(
                arm,
                strategy=STRATEGY_UNIFORM,
                explored=np.ones(rows.shape[0], dtype=bool),
                model_score=None if model_proba is None else model_proba[rows, arm],
            )

        return Plan(probs, sample)
