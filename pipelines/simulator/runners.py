"""What the closed loop runs: bandit policies and the baselines they are measured against.

Every runner chooses one arm per customer of a :class:`DayBatch` and may learn from
matured feedback. Baselines:

- ``uniform`` — a random allowed arm.
- ``static_ab`` — uniform for ``ab_test_days``, waits for that test's feedback to
  mature, then sends every customer the test's winner (pooled over segments; the
  customer's best-ranked allowed arm when the winner is not allowed).
- ``best_arm`` — the one arm with the highest true conversion over the population and
  the horizon, known from the truth (next-best allowed arm where not allowed).
- ``oracle`` — each customer's truly best allowed arm that day; zero regret by definition.

Two optional ceilings tell what limits a policy (name them to run them):

- ``segment_oracle`` — knows the true mean of every segment x arm and sends each
  customer its segment's best allowed arm: the best any segment-level bandit can do.
- ``feature_oracle`` — knows the true response to observed features (a perfect model,
  blind to the hidden per-customer effects and the daily noise).

A learner that is not a product policy: ``gb_greedy`` (see :mod:`pipelines.simulator.learners`).

Bandit policies come from :func:`bandits.make_policy`; the suffix ``_global`` runs a
policy without context (one segment), e.g. ``thompson_global``. With the scenario's model
kind ``trained``, the policies that use a model run as production runs them, with their
own retrained champion (:class:`pipelines.simulator.learners.ProductModelRunner`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from bandits import POLICY_NAMES, make_policy
from bandits.base import Policy
from pipelines.domain import SEGMENTS
from pipelines.errors import UserError
from pipelines.retrain.config import RetrainConfig
from pipelines.simulator.world import DayBatch, World

BASELINES = ("uniform", "static_ab", "best_arm", "oracle")
CEILINGS = ("segment_oracle", "feature_oracle")
LEARNERS = ("gb_greedy",)  # not product policies: see pipelines.simulator.learners
# Policies that read the model's scores: with model kind "trained" each retrains its own.
MODEL_POLICIES = tuple(name for name in POLICY_NAMES if name not in ("thompson", "ucb", "uniform"))
GLOBAL_SUFFIX = "_global"


def best_allowed(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the allowed arm with the highest score; ``scores`` (k,) or (n, k), ``allowed`` (n, k)."""
    return np.where(allowed, scores, -np.inf).argmax(axis=1)


def uniform_allowed(allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row, an allowed arm chosen uniformly at random, shape (n,)."""
    return best_allowed(rng.random(allowed.shape, dtype=np.float32), allowed)


class Runner(ABC):
    """Chooses arms for a day's customers and learns from matured feedback."""

    label: str

    @abstractmethod
    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        """Arm index per customer, shape (n,)."""

    def learn(  # noqa: B027 - an optional hook: baselines that do not learn keep it empty
        self, sent_day: int, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray
    ) -> None:
        """Matured feedback of the sends made on ``sent_day``; arrays of shape (m,)."""

    def diagnostics(self) -> dict[str, float]:
        """Numbers that explain the run (e.g. a model's retrainings); empty for most runners."""
        return {}


class UniformRunner(Runner):
    label = "uniform"

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        return uniform_allowed(batch.allowed, rng)


class OracleRunner(Runner):
    label = "oracle"

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        return best_allowed(batch.probabilities, batch.allowed)


class FixedRankingRunner(Runner):
    """Every customer gets the best-ranked arm they may receive."""

    def __init__(self, label: str, scores: np.ndarray) -> None:
        self.label = label
        self.scores = np.asarray(scores, dtype=np.float64)

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        return best_allowed(self.scores, batch.allowed)


class SegmentRankingRunner(Runner):
    """Every customer gets the best-ranked allowed arm of their segment."""

    def __init__(self, label: str, scores: np.ndarray) -> None:
        self.label = label
        self.scores = np.asarray(scores, dtype=np.float64)  # (n_segments, n_arms)

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        return best_allowed(self.scores[batch.segments], batch.allowed)


class FeatureOracleRunner(Runner):
    """Best allowed arm by the true response to observed features (a perfect model)."""

    label = "feature_oracle"

    def __init__(self, world: World) -> None:
        self.world = world

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        logits = self.world.truth.observable_logits(self.world.features[batch.customers], batch.day)
        return best_allowed(logits, batch.allowed)


class StaticABRunner(Runner):
    """Uniform test for ``test_days``, then commit to the winner once its feedback matured."""

    label = "static_ab"

    def __init__(self, n_arms: int, test_days: int, lag_days: int) -> None:
        self.test_days = test_days
        self.commit_day = test_days + lag_days
        self.pulls = np.zeros(n_arms)
        self.conversions = np.zeros(n_arms)
        self.winner_scores: np.ndarray | None = None

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        if batch.day < self.commit_day:
            return uniform_allowed(batch.allowed, rng)
        if self.winner_scores is None:
            # Observed rate; arms never tried rank last.
            self.winner_scores = np.where(self.pulls > 0, self.conversions / np.maximum(self.pulls, 1), -1.0)
        return best_allowed(self.winner_scores, batch.allowed)

    def learn(self, sent_day: int, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        if sent_day < self.test_days:
            np.add.at(self.pulls, arms, 1.0)
            np.add.at(self.conversions, arms, rewards)


class PolicyRunner(Runner):
    """A bandit policy; context-free policies see every customer in segment 0."""

    def __init__(self, label: str, policy: Policy, contextual: bool) -> None:
        self.label = label
        self.policy = policy
        self.contextual = contextual
        n_segments = policy.n_segments
        self.pending = np.zeros((n_segments, policy.n_arms))  # sent, feedback not matured yet

    def _segments(self, segments: np.ndarray) -> np.ndarray:
        return segments if self.contextual else np.zeros_like(segments)

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        segments = self._segments(batch.segments)
        self.policy.set_pending(self.pending)
        decisions = self.policy.decide(segments, rng, allowed=batch.allowed, model_proba=batch.model_proba)
        np.add.at(self.pending, (segments, decisions.arm), 1.0)
        return decisions.arm

    def learn(self, sent_day: int, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        np.subtract.at(self.pending, (self._segments(segments), arms), 1.0)
        self.policy.partial_fit(self._segments(segments), arms, rewards)


def check_policy_names(names: list[str], where: str = "--policies") -> None:
    """UserError naming ``where`` and the first unknown policy name."""
    for name in names:
        base = name.removesuffix(GLOBAL_SUFFIX)
        if name not in (*BASELINES, *CEILINGS, *LEARNERS) and base not in POLICY_NAMES:
            known = ", ".join(dict.fromkeys((*POLICY_NAMES, *BASELINES, *CEILINGS, *LEARNERS)))
            raise UserError(
                f"{where}: unknown policy {name!r}; known: {known} (add {GLOBAL_SUFFIX} for no context)"
            )


def make_runner(name: str, world: World, days: int, retrain: RetrainConfig | None = None) -> Runner:
    """The runner for a baseline or policy name; UserError naming an unknown one.

    ``retrain`` configures the product's retraining for model kind ``trained`` (default:
    the production defaults).
    """
    from pipelines.simulator import learners  # learners builds on this module's runners

    scenario = world.scenario
    if name == "uniform":
        return UniformRunner()
    if name == "oracle":
        return OracleRunner()
    if name == "static_ab":
        return StaticABRunner(world.n_arms, scenario.loop.ab_test_days, scenario.loop.feedback_lag_days)
    if name == "best_arm":
        return FixedRankingRunner("best_arm", world.population_arm_rates(days))
    if name == "segment_oracle":
        return SegmentRankingRunner("segment_oracle", world.segment_arm_rates(days))
    if name == "feature_oracle":
        return FeatureOracleRunner(world)
    if name == "gb_greedy":
        return learners.GreedyGBRunner(world, seed=world.seed)
    contextual = not name.endswith(GLOBAL_SUFFIX)
    base = name if contextual else name.removesuffix(GLOBAL_SUFFIX)
    check_policy_names([name], where="policies")
    params = scenario.policies.params.get(name, scenario.policies.params.get(base, {}))
    try:
        policy = make_policy(base, world.n_arms, len(SEGMENTS) if contextual else 1, **params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"policies.params.{name}: {exc}") from None
    if scenario.model.kind == "trained" and contextual and base in MODEL_POLICIES:
        return learners.ProductModelRunner(name, base, params, world, retrain)
    return PolicyRunner(name, policy, contextual)
