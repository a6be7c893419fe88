"""The closed loop: daily batches of decisions, delayed feedback, daily policy updates.

Each day ``d``: the world draws the day's customers; every runner chooses an arm per
customer; outcomes are drawn from the truth with the same random numbers for every
runner. Feedback of the sends made on day ``d`` matures at the end of day
``d + feedback_lag_days`` — that is when the runner learns from it, so with a lag of 2 a
send of Monday first informs Thursday's decisions.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.retrain.config import RetrainConfig
from pipelines.simulator.runners import BASELINES, FixedRankingRunner, Runner, make_runner
from pipelines.simulator.scenario import Scenario
from pipelines.simulator.world import World

Progress = Callable[[int], None]  # called with the number of days just completed (1)


@dataclass(frozen=True)
class RunResult:
    """One seed's run; ``r`` runners, ``D`` days.

    Attributes
    ----------
    seed : int
    labels : tuple of str, length r
        Runner labels, baselines included.
    sends : int array of shape (D,)
        Sends per day (the same for every runner).
    expected : float array of shape (r, D)
        Sum of the true probabilities of the chosen arms, per day.
    realised : float array of shape (r, D)
        Conversions actually drawn, per day.
    best_arm : str
        Key of the best single arm in hindsight.
    diagnostics : dict of str to dict
        Per runner that reports any (see :meth:`Runner.diagnostics`), e.g. its model's retrainings.
    """

    seed: int
    labels: tuple[str, ...]
    sends: np.ndarray
    expected: np.ndarray
    realised: np.ndarray
    best_arm: str
    diagnostics: dict[str, dict[str, float]] = field(default_factory=dict)

    def row(self, label: str) -> int:
        return self.labels.index(label)


def runner_labels(policies: Sequence[str]) -> list[str]:
    """Policies in the given order, then the baselines; duplicates dropped."""
    labels: list[str] = []
    for name in (*policies, *BASELINES):
        name = name.strip()
        if name and name not in labels:
            labels.append(name)
    return labels


def simulate_run(
    scenario: Scenario,
    policies: Sequence[str],
    seed: int,
    *,
    days: int | None = None,
    sends_per_day: int | None = None,
    progress: Progress | None = None,
    retrain: RetrainConfig | None = None,
) -> RunResult:
    """Run every policy and baseline through ``days`` days of one seeded world.

    Parameters
    ----------
    scenario : Scenario
    policies : sequence of str
        Policy names (see :func:`make_runner`); the baselines are always added.
    seed : int
    days, sends_per_day : int, optional
        Override the scenario's loop settings.
    progress : callable, optional
        Called with 1 after every simulated day.
    retrain : RetrainConfig, optional
        The product's retraining, for model kind ``trained`` (default: production's).

    Returns
    -------
    RunResult
    """
    days = days or scenario.loop.days
    sends = sends_per_day or scenario.loop.sends_per_day
    lag = scenario.loop.feedback_lag_days
    world = World(scenario, seed)
    labels = runner_labels(policies)
    runners: list[Runner] = [make_runner(name, world, days, retrain) for name in labels]
    # One generator per runner, keyed by its label: adding a policy changes no other's draws.
    rngs = [np.random.default_rng([seed, zlib.crc32(label.encode())]) for label in labels]
    pending: list[deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = [deque() for _ in runners]
    expected = np.zeros((len(runners), days))
    realised = np.zeros((len(runners), days))
    sent = np.zeros(days, dtype=np.int64)
    for day in range(days):
        batch = world.day_batch(day, sends)
        sent[day] = len(batch)
        rows = np.arange(len(batch))
        for r, runner in enumerate(runners):
            arms = np.asarray(runner.choose(batch, rngs[r]), dtype=np.int64)
            if arms.shape != rows.shape or not batch.allowed[rows, arms].all():
                raise RuntimeError(f"policy {runner.label!r} chose an arm a customer may not receive")
            p = batch.probabilities[rows, arms]
            rewards = (batch.uniforms < p).astype(np.float64)
            expected[r, day] = p.sum()
            realised[r, day] = rewards.sum()
            pending[r].append((day, batch.segments, arms, rewards))
            while pending[r] and pending[r][0][0] <= day - lag:
                runner.learn(*pending[r].popleft())
        if progress is not None:
            progress(1)
    best = runners[labels.index("best_arm")]
    assert isinstance(best, FixedRankingRunner)
    best_key = world.arms.keys[int(np.argmax(best.scores))]
    diagnostics = {runner.label: runner.diagnostics() for runner in runners if runner.diagnostics()}
    return RunResult(seed, tuple(labels), sent, expected, realised, best_key, diagnostics)
