"""Runners that learn a model of the response from their own feedback.

- :class:`ProductModelRunner` — a product policy as production runs it: every morning the
  decide step builds the policy afresh from the segment x arm statistics of the matured
  feedback (:func:`pipelines.decide.build_policy` does the same) and scores the day's
  customers with the champion model. The champion comes from the product's own retraining
  code (:class:`pipelines.retrain.in_memory.InMemoryRetrainer`: the enough-data check,
  ``ml.train.train_model``, the gate, promotion), trained on the policy's own matured sends,
  at the product's cadence (the retraining DAG runs after every daily build, ``model.
  retrain_every_days`` in the scenario). The retraining of day ``d``'s build runs beside the
  decide of day ``d + 1``, so a champion promoted on the evening of ``d`` serves from ``d + 2``.
- :class:`GreedyGBRunner` — the strong simple learner the product is measured against: one
  scikit-learn ``HistGradientBoostingClassifier`` of P(convert | customer features, arm),
  refit every morning on all matured feedback, greedy with ``epsilon`` uniform exploration
  and exact propensities.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from bandits import make_policy
from bandits.base import DecisionBatch
from ml.features import ARM_COLUMNS, FeatureSpec
from pipelines.domain import CUSTOMER_COLUMNS, SEGMENTS
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.in_memory import InMemoryRetrainer
from pipelines.simulator.population import GENDERS
from pipelines.simulator.runners import Runner, best_allowed, uniform_allowed
from pipelines.simulator.world import DayBatch, World

FIRST_DATE = dt.date(2026, 1, 5)  # the decision date of simulated day 0 (a Monday)
_MIN_PROPENSITY = 1e-6  # as the decide step clips


def arm_table(world: World) -> pd.DataFrame:
    """The world's arms as the retraining reads ``ops.arms``: ``arm_id`` and every arm column."""
    frame = world.arms_frame.rename(columns={"arm_index": "arm_id"})
    for column in ARM_COLUMNS:
        if column not in frame.columns:
            frame[column] = None  # a parameter the campaign does not vary
    return frame[["arm_id", *ARM_COLUMNS]]


class SendLog:
    """One runner's sends, and the outcomes of those whose feedback has matured."""

    def __init__(self) -> None:
        self._sent: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._matured: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.version = 0  # bumped on every matured day: a learner refits only on new data

    def record(self, day: int, customers: np.ndarray, arms: np.ndarray, propensity: np.ndarray) -> None:
        self._sent[day] = (customers, np.asarray(arms, dtype=np.int64), np.asarray(propensity, dtype=float))

    def mature(self, day: int, arms: np.ndarray, rewards: np.ndarray) -> None:
        customers, sent_arms, propensity = self._sent.pop(day)
        if not np.array_equal(sent_arms, arms):
            raise RuntimeError(f"day {day}: matured arms differ from the arms sent")
        self._matured.append((day, customers, sent_arms, propensity, np.asarray(rewards, dtype=float)))
        self.version += 1

    @property
    def n_matured(self) -> int:
        return sum(part[1].size for part in self._matured)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(day, customer row, arm, propensity, reward)`` of every matured send, each (m,)."""
        if not self._matured:
            return tuple(np.zeros(0, dtype=kind) for kind in (np.int64, np.int64, np.int64, float, float))
        days = np.concatenate([np.full(part[1].size, part[0]) for part in self._matured])
        return (days, *(np.concatenate([part[j] for part in self._matured]) for j in range(1, 5)))


def training_examples(world: World, log: SendLog, arms: pd.DataFrame) -> pd.DataFrame:
    """The matured sends as rows of ``analytics.training_examples`` (customer, arm, label, propensity)."""
    days, customers, arm, propensity, reward = log.arrays()
    frame = world.customers.iloc[customers][list(CUSTOMER_COLUMNS)].reset_index(drop=True)
    frame = pd.concat([frame, arms.iloc[arm].reset_index(drop=True)], axis=1)
    frame["decision_date"] = pd.to_datetime(FIRST_DATE) + pd.to_timedelta(days, unit="D")
    frame["treatment_group"] = "treatment"
    frame["campaign_id"] = 1
    frame["propensity"] = propensity
    frame["converted"] = reward.astype(np.int64)
    return frame


class ProductModelRunner(Runner):
    """A product policy rebuilt daily from its statistics, with its own retrained champion model."""

    def __init__(
        self,
        label: str,
        policy_name: str,
        params: dict,
        world: World,
        retrain: RetrainConfig | None = None,
        spec: FeatureSpec | None = None,
    ) -> None:
        self.label = label
        self.policy_name = policy_name
        self.params = dict(params)
        self.world = world
        self.arms = arm_table(world)
        self.retrainer = InMemoryRetrainer(retrain, spec)
        self.every = world.scenario.model.retrain_every_days
        self.pulls = np.zeros((len(SEGMENTS), world.n_arms))
        self.rewards = np.zeros_like(self.pulls)
        self.pending = np.zeros_like(self.pulls)  # sent, feedback not matured yet (the mart's pending)
        self.log = SendLog()
        self._trained_on = -1  # SendLog.version of the last retraining
        self.first_model_day: int | None = None  # first day decided with a champion model
        self.days = 0
        self.sends = 0
        self.model_selected = 0  # sends whose arm the model chose (selected_by "model")

    def _retrain(self, day: int) -> None:
        if day % self.every == 0 and self.log.version != self._trained_on:
            self._trained_on = self.log.version
            self.retrainer.retrain(training_examples(self.world, self.log, self.arms), self.arms)

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        # This morning's decide uses the champion as it stood before today's retraining.
        champion, quality = self.retrainer.champion, self.retrainer.quality
        self._retrain(batch.day)
        params = dict(self.params)
        if self.policy_name == "confidence_hybrid" and champion is not None:
            params.setdefault("model_quality", quality)
        policy = make_policy(self.policy_name, self.world.n_arms, len(SEGMENTS), **params)
        policy.set_stats(self.pulls, self.rewards)
        policy.set_pending(self.pending)
        proba = None
        if champion is not None:
            customers = self.world.customers.iloc[batch.customers]
            scores = champion.score_matrix(customers, self.arms, allowed=batch.allowed)
            proba = np.where(batch.allowed, scores, 0.0)
            if self.first_model_day is None:
                self.first_model_day = batch.day
        decisions: DecisionBatch = policy.decide(
            batch.segments, rng, allowed=batch.allowed, model_proba=proba
        )
        self.days, self.sends = self.days + 1, self.sends + len(batch)
        self.model_selected += int(np.count_nonzero(decisions.selected_by == "model"))
        np.add.at(self.pending, (batch.segments, decisions.arm), 1.0)
        propensity = np.clip(decisions.propensity, _MIN_PROPENSITY, 1.0)
        self.log.record(batch.day, batch.customers, decisions.arm, propensity)
        return decisions.arm

    def diagnostics(self) -> dict[str, float]:
        """First day with a model, retrainings, promotions, the champion's AUC, model-chosen share."""
        done = [h for h in self.retrainer.history if h.status == "done"]
        return {
            "first_model_day": float(self.first_model_day if self.first_model_day is not None else self.days),
            "retrainings": float(len(done)),
            "promotions": float(sum(h.promoted for h in done)),
            "champion_auc": self.retrainer.champion_auc,
            "model_selected_share": self.model_selected / max(self.sends, 1),
        }

    def learn(self, sent_day: int, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.pulls, (segments, arms), 1.0)
        np.add.at(self.rewards, (segments, arms), rewards)
        np.subtract.at(self.pending, (segments, arms), 1.0)
        self.log.mature(sent_day, arms, rewards)


class GreedyGBRunner(Runner):
    """One gradient-boosting classifier over (customer, arm), refit daily, epsilon-greedy.

    Attributes
    ----------
    last_propensity, last_explored : arrays of shape (n,)
        The last day's exact propensity of each chosen arm, and whether it was an exploration draw.
    """

    label = "gb_greedy"

    def __init__(self, world: World, epsilon: float = 0.05, seed: int = 0) -> None:
        self.world = world
        self.epsilon = float(epsilon)
        self.seed = int(seed)
        self.log = SendLog()
        self.model: HistGradientBoostingClassifier | None = None
        self._fitted_on = -1
        customers = world.customers
        numeric = [c for c in CUSTOMER_COLUMNS if c != "gender"]
        gender = pd.Categorical(customers["gender"], categories=GENDERS).codes
        self.customer_x = np.column_stack([customers[numeric].to_numpy(dtype=np.float32), gender])
        used = world.arms.onehot.any(axis=0)  # parameter values some arm sets
        self.arm_x = world.arms.onehot[:, used].astype(np.float32)
        self.last_propensity = np.zeros(0)
        self.last_explored = np.zeros(0, dtype=bool)

    def features(self, customers: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Rows ``[customer attributes | arm one-hot]`` of the pairs (customers[i], arms[i])."""
        return np.hstack([self.customer_x[customers], self.arm_x[arms]])

    def _refit(self) -> None:
        if self.log.version == self._fitted_on:
            return
        self._fitted_on = self.log.version
        _, customers, arms, _, rewards = self.log.arrays()
        if np.unique(rewards).size < 2:
            return  # nothing to learn yet: keep exploring uniformly
        model = HistGradientBoostingClassifier(random_state=self.seed)
        self.model = model.fit(self.features(customers, arms), rewards.astype(np.int64))

    def scores(self, customers: np.ndarray) -> np.ndarray:
        """The model's P(convert) of every customer x arm, shape (n, n_arms)."""
        assert self.model is not None
        n, k = customers.size, self.world.n_arms
        x = self.features(np.repeat(customers, k), np.tile(np.arange(k), n))
        return self.model.predict_proba(x)[:, 1].reshape(n, k)

    def choose(self, batch: DayBatch, rng: np.random.Generator) -> np.ndarray:
        self._refit()
        n_allowed = batch.allowed.sum(axis=1)
        explore = rng.random(len(batch)) < self.epsilon
        uniform = uniform_allowed(batch.allowed, rng)
        if self.model is None:
            greedy, explore = uniform, np.ones(len(batch), dtype=bool)
            arms, propensity = uniform, 1.0 / n_allowed
        else:
            greedy = best_allowed(self.scores(batch.customers), batch.allowed)
            arms = np.where(explore, uniform, greedy)
            propensity = self.epsilon / n_allowed + (1.0 - self.epsilon) * (arms == greedy)
        self.last_propensity, self.last_explored = propensity, explore
        self.log.record(batch.day, batch.customers, arms, propensity)
        return arms

    def learn(self, sent_day: int, segments: np.ndarray, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.log.mature(sent_day, arms, rewards)
