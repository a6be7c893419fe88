"""The ground-truth response model: P(conversion) for every customer x arm.

On the logit scale, for customer ``i`` and arm ``a``::

    intercept + main[a] + features[i] @ interaction[:, a]       # observable part
              + latent_level[i] + latent_channel[i, channel(a)]  # hidden from policies
              + daily_noise[day, a]                               # the world wobbles

``main`` and ``interaction`` are sums over the parameter values the arm sets, so a
parameter an arm does not set contributes nothing. The customer features
(:data:`FEATURES`) carry the heterogeneity the product expects:

- the young prefer app push and SMS, evening sends and consultative messages; the old
  prefer branch and mornings;
- the wealthy prefer exclusive offers (investment products, fee waivers, loyalty
  rewards) over discounts (cashback, rate reductions);
- loyal customers respond to retention offers (loyalty points, fee waivers, savings);
- digitally engaged customers respond to app push and online-banking alerts;
- frequent web visitors respond to online-banking alerts, credit cards and evening sends
  (weight 0 unless a scenario's ``response.feature_weights`` gives it one).

``response.feature_weights`` scales each feature's interactions: a scenario can put the
heterogeneity into loyalty, engagement and web visits, which no age x income segment holds.

Effects are centred within each parameter, so an average arm sits at ``base_rate``.
The latent terms are individual and independent of every feature: no policy can learn
them, which is what keeps the oracle out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.domain import CHANNELS, PARAMETERS
from pipelines.simulator.arms import PARAMETER_VALUES, ArmEncoding, effects_vector
from pipelines.simulator.scenario import DriftSettings, ResponseSettings

FEATURES = ("youth", "wealth", "loyalty", "digital", "visits")

MAIN_EFFECTS: dict[str, dict[str, float]] = {
    "offer_type": {"credit_card": 0.10, "loan": -0.15, "savings_account": 0.05, "investment_product": -0.20},
    "discount": {"rate_reduction": 0.10, "fee_waiver": 0.0, "cashback": 0.15, "loyalty_points": -0.10},
    "channel": {"email": 0.0, "sms": 0.05, "app_push": 0.10, "online_banking_alert": -0.05, "branch": -0.15},
    "time_of_day": {"morning": 0.0, "afternoon": -0.05, "evening": 0.05},
    "day_of_week": {
        "monday": 0.0,
        "tuesday": 0.05,
        "wednesday": 0.05,
        "thursday": 0.05,
        "friday": -0.05,
        "saturday": -0.10,
        "sunday": -0.15,
    },
    "cta": {"direct": 0.0, "consultative": 0.05, "informational": -0.15},
}

# feature -> parameter -> value -> logit effect per unit of the feature.
INTERACTIONS: dict[str, dict[str, dict[str, float]]] = {
    "youth": {  # +1 at age 30, -1 at age 60
        "channel": {
            "app_push": 0.25,
            "sms": 0.16,
            "email": -0.02,
            "online_banking_alert": 0.05,
            "branch": -0.32,
        },
        "time_of_day": {"evening": 0.18, "afternoon": 0.00, "morning": -0.18},
        "cta": {"consultative": 0.16, "direct": 0.00, "informational": -0.09},
        "offer_type": {
            "credit_card": 0.11,
            "loan": 0.05,
            "savings_account": 0.00,
            "investment_product": -0.09,
        },
    },
    "wealth": {  # +1.2 at 100k income, -0.4 at 40k
        "offer_type": {
            "investment_product": 0.27,
            "savings_account": 0.07,
            "loan": -0.09,
            "credit_card": -0.07,
        },
        "discount": {"fee_waiver": 0.16, "loyalty_points": 0.11, "cashback": -0.16, "rate_reduction": -0.14},
        "channel": {"branch": 0.07},
    },
    "loyalty": {  # about -1.5 outside the loyalty programme, +0.4..+1 inside
        "discount": {"loyalty_points": 0.18, "fee_waiver": 0.11, "cashback": -0.05},
        "offer_type": {"savings_account": 0.14, "investment_product": 0.05, "loan": -0.05},
    },
    "digital": {  # +-2 at engagement 1 / 0
        "channel": {"app_push": 0.14, "online_banking_alert": 0.11, "email": 0.02, "branch": -0.14},
    },
    "visits": {  # about -1.5 at no visit, +1 at 15 visits a month
        "channel": {"online_banking_alert": 0.15, "email": 0.08, "sms": -0.05, "branch": -0.12},
        "offer_type": {
            "credit_card": 0.14,
            "loan": 0.04,
            "savings_account": -0.06,
            "investment_product": -0.10,
        },
        "time_of_day": {"evening": 0.10, "morning": -0.10},
    },
}


def response_features(customers: pd.DataFrame) -> np.ndarray:
    """Standardized features the response depends on, shape (n, len(FEATURES)).

    Fixed constants (not sample statistics) so the truth of a customer never depends
    on who else is in the frame.
    """
    age = customers["age"].to_numpy(dtype=np.float64)
    income = np.maximum(customers["income"].to_numpy(dtype=np.float64), 1.0)
    points = np.maximum(customers["loyalty_points"].to_numpy(dtype=np.float64), 0.0)
    engagement = customers["digital_engagement"].to_numpy(dtype=np.float64)
    # Web visits weigh only where a scenario gives them a weight: a frame without them scores 0 there.
    if "website_visits" in customers.columns:
        visits = np.maximum(customers["website_visits"].to_numpy(dtype=np.float64), 0.0)
    else:
        visits = np.full(len(customers), np.expm1(2.0))
    return np.column_stack(
        [
            np.clip((45.0 - age) / 15.0, -1.5, 1.5),
            np.clip(np.log(income / 50_000.0) / 0.56, -2.0, 2.0),
            np.clip((np.log1p(points) - 4.5) / 3.1, -1.5, 1.5),
            np.clip((engagement - 0.5) / 0.25, -2.0, 2.0),
            np.clip((np.log1p(visits) - 2.0) / 0.75, -2.0, 2.0),
        ]
    )


@dataclass(frozen=True)
class Coefficients:
    """Response coefficients over :data:`PARAMETER_VALUES` (``m`` columns).

    Attributes
    ----------
    intercept : float
    main : float array of shape (m,)
    interaction : float array of shape (len(FEATURES), m)
    """

    intercept: float
    main: np.ndarray
    interaction: np.ndarray


def centred(effects: dict[str, dict[str, float]]) -> np.ndarray:
    """Effects over :data:`PARAMETER_VALUES`, centred within each parameter's vocabulary."""
    full = {name: {v: effects.get(name, {}).get(v, 0.0) for v in PARAMETERS[name]} for name in effects}
    means = {name: float(np.mean(list(vals.values()))) for name, vals in full.items()}
    return effects_vector({n: {v: e - means[n] for v, e in vals.items()} for n, vals in full.items()})


def calibrated_intercept(base_rate: float, latent_sd: float) -> float:
    """Intercept at which E[sigmoid(intercept + N(0, latent_sd^2))] equals ``base_rate``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    lo, hi = -20.0, 10.0
    for _ in range(80):  # bisection: the mean rate is increasing in the intercept
        mid = (lo + hi) / 2.0
        if float(weights @ _sigmoid(mid + latent_sd * nodes)) < base_rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


class GroundTruth:
    """True conversion probabilities of one simulated world.

    Parameters
    ----------
    settings : ResponseSettings
        Base rate, heterogeneity scale and noise levels.
    arms : ArmEncoding
        The arms being simulated.
    drift : DriftSettings, optional
        From ``drift.day`` on, the main effects shift.
    world_seed : int
        Seeds the drift shifts and the daily noise; the same seed is the same world.
    """

    def __init__(
        self,
        settings: ResponseSettings,
        arms: ArmEncoding,
        drift: DriftSettings | None = None,
        world_seed: int = 0,
    ) -> None:
        self.settings = settings
        self.arms = arms
        self.drift = drift
        self.world_seed = int(world_seed)
        total_latent_sd = float(np.hypot(settings.latent_sd, settings.latent_channel_sd))
        weights = np.array([settings.feature_weights.get(f, 0.0) for f in FEATURES])
        interaction = weights[:, None] * np.stack([centred(INTERACTIONS.get(f, {})) for f in FEATURES])
        self.before = Coefficients(
            intercept=calibrated_intercept(settings.base_rate, total_latent_sd),
            main=settings.main_effects * centred(MAIN_EFFECTS),
            interaction=settings.heterogeneity * interaction,
        )
        self.after = self._drifted(self.before) if drift is not None else self.before
        self._terms: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def _drifted(self, base: Coefficients) -> Coefficients:
        assert self.drift is not None
        rng = np.random.default_rng([self.world_seed, 0xD21F7])
        shift = rng.normal(0.0, self.drift.shift_sd, len(PARAMETER_VALUES)) + effects_vector(
            self.drift.effects
        )
        return Coefficients(base.intercept, base.main + shift, base.interaction)

    def coefficients(self, day: int) -> Coefficients:
        """The coefficients in force on ``day`` (0-based)."""
        return self.after if self.drift is not None and day >= self.drift.day else self.before

    def _arm_terms(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Intercept plus main effect per arm (k,), and interaction per arm (d, k), on ``day``."""
        drifted = self.drift is not None and day >= self.drift.day
        if drifted not in self._terms:
            c = self.coefficients(day)
            self._terms[drifted] = (
                c.intercept + c.main @ self.arms.onehot.T,
                c.interaction @ self.arms.onehot.T,
            )
        return self._terms[drifted]

    def observable_logits(self, features: np.ndarray, day: int = 0) -> np.ndarray:
        """The part of the logit a perfect model of observed features could know, shape (n, k)."""
        main, interaction = self._arm_terms(day)
        # einsum, not @: with 4 features BLAS threading costs more than the arithmetic.
        return np.einsum("nd,dk->nk", features, interaction) + main

    def daily_noise(self, day: int) -> np.ndarray:
        """Day ``day``'s wobble of each arm, shape (k,): noise on every parameter value, summed."""
        if self.settings.daily_noise_sd == 0.0:
            return np.zeros(self.arms.n_arms)
        rng = np.random.default_rng([self.world_seed, 0xDA1, day])
        per_value = rng.normal(0.0, self.settings.daily_noise_sd, len(PARAMETER_VALUES))
        return self.arms.onehot @ per_value

    def latent_logits(self, latent_level: np.ndarray, latent_channel: np.ndarray) -> np.ndarray:
        """Hidden part of the logit, shape (n, k), from the latent effects of :func:`latent_effects`."""
        has_channel = self.arms.channel >= 0
        per_arm = np.where(has_channel[None, :], latent_channel[:, np.maximum(self.arms.channel, 0)], 0.0)
        return latent_level[:, None] + per_arm

    def probabilities(
        self, features: np.ndarray, latent_level: np.ndarray, latent_channel: np.ndarray, day: int = 0
    ) -> np.ndarray:
        """True P(conversion), shape (n, k).

        Parameters
        ----------
        features : float array of shape (n, len(FEATURES))
        latent_level : float array of shape (n,)
        latent_channel : float array of shape (n, len(CHANNELS))
        day : int
        """
        if latent_channel.shape[1] != len(CHANNELS):
            raise ValueError(
                f"latent_channel must have {len(CHANNELS)} columns, got {latent_channel.shape[1]}"
            )
        logits = self.observable_logits(features, day) + self.latent_logits(latent_level, latent_channel)
        return _sigmoid(logits + self.daily_noise(day)[None, :])

    def pair_probabilities(
        self,
        features: np.ndarray,
        latent_level: np.ndarray,
        latent_channel: np.ndarray,
        arm: np.ndarray,
        day: int = 0,
    ) -> np.ndarray:
        """True P(conversion) of customer ``i`` for its own arm ``arm[i]``, shape (n,).

        The same value as ``probabilities(...)[i, arm[i]]`` without the (n, k) matrix.
        """
        main, interaction = self._arm_terms(day)
        channel = self.arms.channel[arm]
        hidden = latent_level + np.where(channel >= 0, latent_channel[np.arange(arm.size), channel], 0.0)
        observable = main[arm] + np.einsum("nd,dn->n", features, interaction[:, arm])
        return _sigmoid(observable + hidden + self.daily_noise(day)[arm])


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x)))
