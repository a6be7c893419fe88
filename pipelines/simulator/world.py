"""One simulated world per seed: customers, their hidden effects, consent, and the truth.

:meth:`World.day_batch` draws the day's customers and everything every policy sees
that day — the same customers and the same outcome draws for every policy (common
random numbers), so differences between policies are not sampling luck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.domain import SEGMENTS, segment_of
from pipelines.simulator.arms import ArmEncoding, arm_grid, encode_arms
from pipelines.simulator.population import channel_consent, generate_customers, latent_effects
from pipelines.simulator.scenario import Scenario
from pipelines.simulator.truth import GroundTruth, calibrated_intercept, response_features

_CHUNK = 20_000  # rows per chunk when scoring the whole population (bounds memory)


@dataclass(frozen=True)
class DayBatch:
    """One day's sends; ``n`` customers, ``k`` arms.

    Attributes
    ----------
    day : int
    customers : int array of shape (n,)
        Row of each customer in :attr:`World.customers`.
    segments : int array of shape (n,)
        Index into :data:`pipelines.domain.SEGMENTS`.
    allowed : bool array of shape (n, k)
        Arms whose channel the customer consented to.
    probabilities : float array of shape (n, k)
        True P(conversion). Only the oracle and the evaluation read it.
    model_proba : float array of shape (n, k) or None
        The scenario's model, handed to policies that use one.
    uniforms : float array of shape (n,)
        Outcome draws: a send converts when ``uniforms < probabilities[i, arm]``.
    """

    day: int
    customers: np.ndarray
    segments: np.ndarray
    allowed: np.ndarray
    probabilities: np.ndarray
    model_proba: np.ndarray | None
    uniforms: np.ndarray

    def __len__(self) -> int:
        return int(self.customers.shape[0])


class World:
    """The simulated bank for one seed.

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Seeds the population, consent, hidden effects, drift, daily noise and draws.
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        self.arms_frame = arm_grid(scenario.arms)
        self.arms: ArmEncoding = encode_arms(self.arms_frame)
        self.customers: pd.DataFrame = generate_customers(scenario.customers, seed)
        self.features = response_features(self.customers)
        self.segments = segment_of(self.customers["age"].to_numpy(), self.customers["income"].to_numpy())
        response = scenario.response
        self.latent_level, self.latent_channel = latent_effects(
            self.customers["customer_id"], seed, response.latent_sd, response.latent_channel_sd
        )
        self.consent = channel_consent(self.customers, scenario.consent, seed)
        self.truth = GroundTruth(response, self.arms, scenario.drift, world_seed=seed)
        # Customers with no consented channel among the arms are never addressed.
        self.eligible = np.flatnonzero(self.allowed(np.arange(len(self.customers))).any(axis=1))
        # A calibrated model of observed features predicts the latent-averaged rate.
        total_latent_sd = float(np.hypot(response.latent_sd, response.latent_channel_sd))
        self._model_shift = calibrated_intercept(response.base_rate, 0.0) - calibrated_intercept(
            response.base_rate, total_latent_sd
        )

    @property
    def n_arms(self) -> int:
        return self.arms.n_arms

    def allowed(self, rows: np.ndarray) -> np.ndarray:
        """Arms each customer may receive, shape (len(rows), n_arms)."""
        has_channel = self.arms.channel >= 0
        by_channel = self.consent[rows][:, np.maximum(self.arms.channel, 0)]
        return np.where(has_channel[None, :], by_channel, True)

    def probabilities(self, rows: np.ndarray, day: int) -> np.ndarray:
        """True P(conversion) of customers ``rows`` on ``day``, shape (len(rows), n_arms)."""
        return self.truth.probabilities(
            self.features[rows], self.latent_level[rows], self.latent_channel[rows], day
        )

    def model_proba(self, rows: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray | None:
        """The scenario's model (see :class:`ModelSettings`), shape (len(rows), n_arms) or None."""
        settings = self.scenario.model
        if settings.kind != "noisy_truth":  # none, or trained: the runner brings its own model
            return None
        logits = self.truth.observable_logits(self.features[rows], day) + self._model_shift
        if settings.noise_sd > 0:
            logits += settings.noise_sd * rng.standard_normal(logits.shape, dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-logits))

    def day_batch(self, day: int, sends: int) -> DayBatch:
        """The customers addressed on ``day`` and all they need (seeded by world seed and day)."""
        rng = np.random.default_rng([self.seed, 0xBA7C4, day])
        n = min(sends, self.eligible.size)
        rows = np.sort(rng.choice(self.eligible, size=n, replace=False))
        uniforms = rng.random(n)  # drawn before the model's noise: outcomes do not depend on the model
        return DayBatch(
            day=day,
            customers=rows,
            segments=self.segments[rows],
            allowed=self.allowed(rows),
            probabilities=self.probabilities(rows, day),
            model_proba=self.model_proba(rows, day, rng),
            uniforms=uniforms,
        )

    def population_arm_rates(self, days: int) -> np.ndarray:
        """Mean true P(conversion) of each arm over eligible customers and ``days``, shape (n_arms,).

        What "the best single arm in hindsight" is ranked by. Daily noise is left out (it
        averages away); a drift inside the horizon weighs each regime by its days.
        """
        return self._mean_rates(days, np.zeros(len(self.customers), dtype=np.int64), 1)[0]

    def segment_arm_rates(self, days: int) -> np.ndarray:
        """Mean true P(conversion) per segment and arm, shape (n_segments, n_arms)."""
        return self._mean_rates(days, self.segments, len(SEGMENTS))

    def _mean_rates(self, days: int, groups: np.ndarray, n_groups: int) -> np.ndarray:
        drift_day = self.scenario.drift.day if self.scenario.drift is not None else days
        regimes = [(0, min(drift_day, days))]
        if drift_day < days:
            regimes.append((drift_day, days - drift_day))
        counts = np.bincount(groups[self.eligible], minlength=n_groups).astype(np.float64)
        total = np.zeros((n_groups, self.n_arms))
        for first_day, n_days in regimes:
            sums = np.zeros((n_groups, self.n_arms))
            for start in range(0, self.eligible.size, _CHUNK):
                rows = self.eligible[start : start + _CHUNK]
                logits = self.truth.observable_logits(self.features[rows], first_day)
                logits += self.truth.latent_logits(self.latent_level[rows], self.latent_channel[rows])
                membership = groups[rows][None, :] == np.arange(n_groups)[:, None]
                sums += membership.astype(np.float64) @ (1.0 / (1.0 + np.exp(-logits)))
            total += n_days * sums / np.maximum(counts, 1.0)[:, None]
        return total / days
