"""Campaign definitions: the YAML file a marketer writes, validated by pydantic.

A campaign's arms are the full factorial of its parameter space minus its
exclusion rules. Every error names the file, the field and the problem.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.attribution import AttributionWindow, parse_window
from pipelines.domain import CHANNELS, PARAMETERS
from pipelines.yaml_files import load_yaml_model

ParamName = Literal["offer_type", "discount", "channel", "time_of_day", "day_of_week", "cta"]
Share = Annotated[float, Field(ge=0.0, le=0.5)]


class _Strict(BaseModel):
    # allow_inf_nan=False: `.nan`/`.inf` fail as "Input should be a finite number" in every float
    # field (JSON has no NaN: they would be stored as null and break the next daily run).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Audience(_Strict):
    """Who may receive the campaign (on top of consent, suppression and caps)."""

    min_age: int = Field(default=18, ge=0, le=120)
    max_age: int = Field(default=120, ge=0, le=120)
    min_income: float = Field(default=0.0, ge=0)
    segments: list[str] | None = None
    max_customers: int | None = Field(default=None, gt=0, le=100_000_000)

    @model_validator(mode="after")
    def _ages_ordered(self) -> Audience:
        if self.min_age > self.max_age:
            raise ValueError(f"min_age ({self.min_age}) is greater than max_age ({self.max_age})")
        return self


class Reward(_Strict):
    """What counts as success: conversion, or weighted engagement capped at 1."""

    kind: Literal["conversion", "weighted_engagement"] = "conversion"
    weights: dict[Literal["open", "click", "view", "dwell", "conversion"], float] = Field(
        default_factory=lambda: {"click": 0.2, "view": 0.1, "dwell": 0.1, "conversion": 1.0}
    )
    conversion_value: float = Field(default=100.0, ge=0, description="Revenue of a conversion without value.")

    @field_validator("weights")
    @classmethod
    def _weights_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if w < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return v


class PolicySpec(_Strict):
    name: str = "thompson"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params_finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Free-form values escape allow_inf_nan: walk them, nested lists and mappings included.
        bad = _first_non_finite(v)
        if bad is not None:
            where, value = bad
            raise ValueError(f"{where}: Input should be a finite number, got {value}")
        return v

    @model_validator(mode="after")
    def _buildable(self) -> PolicySpec:
        _check_policy(self)
        return self


class FrequencyCaps(_Strict):
    """Contact limits across all campaigns, counted from logged decisions, batch and real time."""

    max_per_week: int = Field(default=3, ge=1, le=100)
    min_days_between: int = Field(default=1, ge=0, le=366)


class DriftResponse(_Strict):
    """What the campaign does about an open concept-drift alert on one of its arms.

    ``discount``: the arm's evidence from before the change began counts ``factor`` times (pulls
    and rewards alike, so its mean stays and its certainty drops) and the policy re-explores it.
    """

    response: Literal["none", "discount"] = "none"
    factor: float = Field(default=0.5, ge=0.0, le=1.0)


class WarmStart(_Strict):
    """Start from history instead of uniform exploration (pipelines/warm_start.py): another stored
    campaign's matured statistics, or a CSV file of logged sends and conversions, mapped onto this
    campaign's arms by shared parameter values; each (segment, arm) takes at most ``strength``
    pseudo-observations from it."""

    from_campaign: str | None = None
    file: str | None = Field(default=None, description="Relative paths are from the campaign file.")
    strength: float = Field(default=200.0, ge=0.0)

    @model_validator(mode="after")
    def _one_source(self) -> WarmStart:
        if (self.from_campaign is None) == (self.file is None):
            raise ValueError(
                "give one of from_campaign (a stored campaign's name) or file (a CSV of logged sends)"
            )
        return self


class Objective(_Strict):
    """What the decide step maximises: the reward (as before), or its expected value in money,
    P(convert) x reward.conversion_value - the arm's channel cost; ``exploration`` is the share of
    each customer's choice left to the campaign's policy (pipelines/allocation.py)."""

    kind: Literal["reward", "expected_value"] = "reward"
    exploration: float = Field(default=0.1, ge=0.0, lt=1.0)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data  # `objective: expected_value`


class Capacity(_Strict):
    """A limit on the day's list over the arms matching ``where`` (every given parameter equal):
    at most ``max_sends`` sends, ``max_cost`` in channel cost, or a ``max_share`` of the list."""

    where: dict[ParamName, str]
    max_sends: int | None = Field(default=None, ge=0)
    max_cost: float | None = Field(default=None, ge=0.0)
    max_share: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_limit(self) -> Capacity:
        given = [k for k in ("max_sends", "max_cost", "max_share") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"capacity {self.where}: give exactly one of max_sends, max_cost, max_share, got "
                f"{', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("max_sends", "max_cost", "max_share") if getattr(self, k) is not None)

    @property
    def limit(self) -> float:
        return float(getattr(self, self.kind))


class CampaignSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
    description: str = ""
    start_date: date
    end_date: date | None = None
    audience: Audience = Field(default_factory=Audience)
    parameters: dict[ParamName, list[str]]
    exclusions: list[dict[ParamName, str]] = Field(default_factory=list)
    channel_costs: dict[str, float] = Field(default_factory=dict)
    reward: Reward = Field(default_factory=Reward)
    policy: PolicySpec = Field(default_factory=PolicySpec)
    holdout_share: Share = 0.1
    # One of the two: day windows are stored in attribution_window_days (as before), minute and
    # hour windows in attribution_window; pipelines/attribution.py says what each means.
    attribution_window_days: int | None = Field(default=7, ge=0, le=90)
    attribution_window: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,  # definitions without it dump (and checksum) as before
        description="Duration: 30m, 4h or 2d (1m to 90d); instead of attribution_window_days.",
    )
    default_reward: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        exclude_if=lambda v: v == 0.0,
        description="Reward of a matured decision that got no attributed event.",
    )
    frequency_caps: FrequencyCaps = Field(default_factory=FrequencyCaps)
    default_arm: dict[ParamName, str] | None = None
    drift: DriftResponse | None = Field(default=None, exclude_if=lambda v: v is None)
    # Opt-in (absent: the list is decided as before, same checksum): pipelines/allocation.py.
    objective: Objective | None = Field(default=None, exclude_if=lambda v: v is None)
    capacities: list[Capacity] | None = Field(default=None, exclude_if=lambda v: not v)
    warm_start: WarmStart | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="before")
    @classmethod
    def _one_window(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("attribution_window") is None:  # days; a null number of days: the default
            return {k: v for k, v in data.items() if not (k == "attribution_window_days" and v is None)}
        if data.get("attribution_window_days") is not None:
            raise ValueError(
                "attribution_window and attribution_window_days are both given: give one of them"
            )
        data = dict(data, attribution_window_days=None)
        try:
            window = parse_window(data["attribution_window"])
        except ValueError:
            return data  # the field's validator names the problem
        if window.by_day:  # "2d" is attribution_window_days: 2, so every reader sees it as before
            data.pop("attribution_window")
            data["attribution_window_days"] = window.amount
        return data

    @field_validator("attribution_window", mode="before")
    @classmethod
    def _window_parses(cls, v: Any) -> Any:
        return v if v is None else str(parse_window(v))

    @field_validator("parameters")
    @classmethod
    def _parameters_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("the parameter space is empty: give at least one parameter with values")
        for name, values in v.items():
            if not values:
                raise ValueError(f"{name}: no values given")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: duplicate values in {values}")
            unknown = [x for x in values if x not in PARAMETERS[name]]
            if unknown:
                raise ValueError(
                    f"{name}: unknown value {unknown[0]!r}; allowed: {', '.join(PARAMETERS[name])}"
                )
        return v

    @field_validator("channel_costs")
    @classmethod
    def _costs_known(cls, v: dict[str, float]) -> dict[str, float]:
        for channel, cost in v.items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; allowed: {', '.join(CHANNELS)}")
            if cost < 0:
                raise ValueError(f"{channel}: cost must be >= 0, got {cost}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        for rule in self.exclusions:
            for name, value in rule.items():
                if name not in self.parameters or value not in self.parameters[name]:
                    raise ValueError(f"exclusion {rule}: {name}={value!r} is not in the parameter space")
        if not self.arms():
            raise ValueError("every arm is excluded: the exclusions leave nothing to send")
        if self.default_arm is not None and arm_key(self.default_arm) not in {
            arm_key(a) for a in self.arms()
        }:
            raise ValueError(f"default_arm {self.default_arm} is not one of the campaign's arms")
        self._check_capacities()
        if self.warm_start is not None and self.warm_start.from_campaign == self.name:
            raise ValueError("warm_start.from_campaign: a campaign cannot warm-start from itself")
        return self

    def _check_capacities(self) -> None:
        arms = self.arms()
        for cap in self.capacities or []:
            for name, value in cap.where.items():
                if name not in self.parameters or value not in self.parameters[name]:
                    raise ValueError(f"capacity {cap.where}: {name}={value!r} is not in the parameter space")
            matched = [a for a in arms if _matches(a, cap.where)]
            if cap.kind == "max_cost" and not any(self.arm_cost(a) > 0 for a in matched):
                raise ValueError(f"capacity {cap.where}: max_cost, but channel_costs gives its arms no cost")
        if self.capacities and all(any(_matches(a, c.where) for c in self.capacities) for a in arms):
            # The exact repair moves a list's overflow to arms that use no capacity.
            raise ValueError("capacities cover every arm: leave at least one arm outside all capacities")

    def arm_cost(self, arm: dict[str, str]) -> float:
        """The channel cost of one send of ``arm`` (0 without a channel or a cost for it)."""
        return float(self.channel_costs.get(arm.get("channel", ""), 0.0))

    # -- derived ---------------------------------------------------------------------------
    @property
    def window(self) -> AttributionWindow:
        """The attribution window (pipelines/attribution.py: which events count, when it matures)."""
        if self.attribution_window is not None:
            return parse_window(self.attribution_window)
        assert self.attribution_window_days is not None  # _one_window leaves one of the two
        return AttributionWindow.of_days(self.attribution_window_days)

    def arms(self) -> list[dict[str, str]]:
        """The full factorial of the parameter space minus exclusions, in a stable order."""
        names = [n for n in PARAMETERS if n in self.parameters]  # canonical parameter order
        combos = itertools.product(*(self.parameters[n] for n in names))
        arms = [dict(zip(names, combo, strict=True)) for combo in combos]
        return [a for a in arms if not any(_matches(a, rule) for rule in self.exclusions)]

    def control_arm(self) -> dict[str, str]:
        """The static arm the holdout group receives: `default_arm`, else the first arm."""
        return dict(self.default_arm) if self.default_arm else self.arms()[0]

    def checksum(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())


def arm_key(params: dict[str, str]) -> str:
    """Canonical key of an arm: ``name=value`` pairs in the vocabulary's order."""
    return "|".join(f"{n}={params[n]}" for n in PARAMETERS if n in params)


def _matches(arm: dict[str, str], rule: dict[str, str]) -> bool:
    return all(arm.get(k) == v for k, v in rule.items())


def _first_non_finite(value: Any, where: str = "") -> tuple[str, float] | None:
    """(dotted path, value) of the first NaN or infinity inside ``value``, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where, value
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        items = ()
    for key, item in items:
        found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _check_policy(spec: PolicySpec) -> None:
    """Build the policy once so a bad name or hyperparameter fails at apply time."""
    from bandits import make_policy

    try:
        make_policy(spec.name, n_arms=2, n_segments=1, **spec.params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"policy {spec.name!r}: {exc}") from None


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and validate one campaign file; raise UserError naming the file and field.

    A warm-start file is resolved from the campaign file's folder and read once here, so a bad
    one is refused at apply time, naming its line."""
    spec = load_yaml_model(path, CampaignSpec, "campaign")
    warm = spec.warm_start
    if warm is None or warm.file is None:
        return spec
    from pipelines.warm_start import history_from_file

    history = (Path(path).parent / warm.file).resolve()
    history_from_file(history, list(spec.parameters))
    return spec.model_copy(update={"warm_start": warm.model_copy(update={"file": str(history)})})
