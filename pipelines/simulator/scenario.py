"""Scenario files: the simulated world and the closed loop, validated by pydantic.

A scenario YAML names the arms (a parameter grid), the response model's knobs, the
consent rates, the model offered to hybrid policies, an optional drift, and the loop
(days, sends per day, feedback lag, A/B test length). Every error ends in one line
naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.campaign_spec import ParamName
from pipelines.domain import CHANNELS, PARAMETERS
from pipelines.yaml_files import load_yaml_model

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseSettings(_Strict):
    """Knobs of the ground-truth response model (logit scale unless stated)."""

    base_rate: float = Field(
        default=0.025, gt=0.0, lt=0.5, description="Conversion rate of an average customer and arm."
    )
    heterogeneity: float = Field(
        default=1.0,
        ge=0.0,
        description="Scale of customer x arm interactions; 0 = context carries no signal.",
    )
    main_effects: float = Field(default=1.0, ge=0.0, description="Scale of the arm main effects.")
    feature_weights: dict[Literal["youth", "wealth", "loyalty", "digital", "visits"], float] = Field(
        default_factory=lambda: {"youth": 1.0, "wealth": 1.0, "loyalty": 1.0, "digital": 1.0, "visits": 0.0},
        description="Scale of each feature's interactions (times heterogeneity); a feature left out: 0.",
    )
    latent_sd: float = Field(default=0.6, ge=0.0, description="Unobserved per-customer propensity.")
    latent_channel_sd: float = Field(
        default=0.35, ge=0.0, description="Unobserved per-customer channel liking."
    )
    daily_noise_sd: float = Field(default=0.05, ge=0.0, description="Day-to-day wobble of each arm.")


class ModelSettings(_Strict):
    """The P(conversion) model handed to hybrid policies.

    ``trained`` is the product's own model: each model-assisted policy retrains it on its own
    matured feedback with the product's retraining code and gate (see
    :mod:`pipelines.simulator.learners`). ``noisy_truth`` is a stand-in for a trained model:
    the true response on observed features (no latent effects) plus N(0, ``noise_sd``) on
    the logit of every customer x arm. ``none`` hands no model to the policies.
    """

    kind: Literal["trained", "noisy_truth", "none"] = "noisy_truth"
    noise_sd: float = Field(default=0.3, ge=0.0)
    retrain_every_days: int = Field(
        default=1,
        ge=1,
        description="trained: days between retrainings (the retraining DAG follows each daily build).",
    )


class DriftSettings(_Strict):
    """From ``day`` on, the arm effects change: random shifts and/or given ones."""

    day: int = Field(ge=1)
    shift_sd: float = Field(default=0.3, ge=0.0, description="Random shift of every arm main effect.")
    effects: dict[ParamName, dict[str, float]] = Field(
        default_factory=dict, description="Explicit shifts {parameter: {value: logit shift}}."
    )

    @field_validator("effects")
    @classmethod
    def _values_known(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, values in v.items():
            unknown = [x for x in values if x not in PARAMETERS[name]]
            if unknown:
                raise ValueError(
                    f"{name}: unknown value {unknown[0]!r}; allowed: {', '.join(PARAMETERS[name])}"
                )
        return v


class LoopSettings(_Strict):
    days: int = Field(default=30, ge=1, le=3650)
    sends_per_day: int = Field(default=20_000, ge=10)
    feedback_lag_days: int = Field(
        default=2, ge=0, le=60, description="Sends of day d are learned from at the end of day d + lag."
    )
    ab_test_days: int = Field(default=7, ge=1, description="Uniform test period of the static A/B baseline.")
    converge_tolerance: float = Field(
        default=0.03,
        gt=0.0,
        lt=1.0,
        description="Band around the final share of the oracle, for convergence.",
    )


class PolicySettings(_Strict):
    names: list[str] = Field(default_factory=lambda: ["thompson", "ucb", "epsilon_greedy"])
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Scenario(_Strict):
    name: str
    description: str = ""
    customers: int = Field(default=100_000, ge=100, description="Size of the simulated customer base.")
    arms: dict[ParamName, list[str]]
    consent: dict[str, float] = Field(default_factory=dict, description="Consent rate per channel.")
    response: ResponseSettings = Field(default_factory=ResponseSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    drift: DriftSettings | None = None
    loop: LoopSettings = Field(default_factory=LoopSettings)
    policies: PolicySettings = Field(default_factory=PolicySettings)

    @field_validator("arms")
    @classmethod
    def _arms_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("no arm parameters given")
        for name, values in v.items():
            if not values or len(set(values)) != len(values):
                raise ValueError(f"{name}: give distinct values")
            unknown = [x for x in values if x not in PARAMETERS[name]]
            if unknown:
                raise ValueError(
                    f"{name}: unknown value {unknown[0]!r}; allowed: {', '.join(PARAMETERS[name])}"
                )
        return v

    @field_validator("consent")
    @classmethod
    def _consent_known(cls, v: dict[str, float]) -> dict[str, float]:
        for channel, rate in v.items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; allowed: {', '.join(CHANNELS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{channel}: rate must lie in [0, 1], got {rate}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        channels = self.arms.get("channel", [])
        if channels and all(self.consent.get(c, 1.0) == 0.0 for c in channels):
            raise ValueError("consent: no customer may receive any of the arms' channels")
        return self

    @property
    def n_arms(self) -> int:
        n = 1
        for values in self.arms.values():
            n *= len(values)
        return n


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file (default: ``benchmarks/scenarios/default.yaml``).

    Raises
    ------
    UserError
        One line naming the file and the field.
    """
    return load_yaml_model(path if path is not None else DEFAULT_SCENARIO, Scenario, "scenario")
