"""Request and response bodies. A campaign definition is pipelines' CampaignSpec itself: the API
and `campaignopt campaign apply` validate with the same model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)

from pipelines.campaign_spec import CampaignSpec
from pipelines.domain import CHANNELS, CUSTOMER_COLUMNS, EVENT_TYPES
from pipelines.extra_features import MAX_EXTRA_FEATURES


class Problem(BaseModel):
    detail: str


class ApplyOut(BaseModel):
    """What storing a definition did (the same figures as `campaign apply --json`)."""

    campaign_id: int
    name: str
    created: bool
    changed: bool
    arms_active: int
    arms_added: int
    arms_retired: int
    arms_reactivated: int


class CampaignSummary(BaseModel):
    campaign_id: int
    name: str
    start_date: date
    end_date: date | None
    policy: str
    holdout_share: float
    arms_active: int
    arms_retired: int


class ArmOut(BaseModel):
    arm_id: int
    arm_key: str
    params: dict[str, str]
    active: bool
    is_default: bool
    retired_at: datetime | None


class CampaignOut(BaseModel):
    campaign_id: int
    name: str
    definition: CampaignSpec
    created_at: datetime
    updated_at: datetime
    arms: list[ArmOut]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "degraded"]
    reasons: list[str]
    schema_head: str
    started_at: datetime


# Texts that become database keys: printable, bounded (the engine's own rule, stated in the schema).
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")
]
Attribute = StrictInt | StrictFloat | StrictStr


class OptimizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: int = Field(ge=1, le=2**31 - 1)
    customer_id: Key
    attributes: dict[str, Attribute] | None = Field(
        default=None,
        max_length=len(CUSTOMER_COLUMNS) + MAX_EXTRA_FEATURES,
        description="For a customer not yet in the snapshot: all of "
        + ", ".join(CUSTOMER_COLUMNS)
        + ", and any of the deployment's CUSTOMER_EXTRA_FEATURES (one left out is null).",
    )
    channels: list[Literal[CHANNELS]] | None = Field(  # type: ignore[valid-type]
        default=None, max_length=len(CHANNELS), description="The channels available at this touchpoint."
    )
    idempotency_key: Key | None = Field(default=None, description="The same key returns the same decision.")


class OptimizeOut(BaseModel):
    decision_id: str
    campaign_id: int
    customer_id: str
    arm_id: int
    parameters: dict[str, str]
    propensity: float
    selected_by: str = Field(
        description="bandit | model | blend | control | priced (chosen under the day's capacity prices) "
        "| capacity (moved to another arm by the capacity repair)"
    )
    confidence: float | None
    explored: bool
    policy: str
    strategy: str | None
    phase: str | None = Field(description="The campaign's lifecycle phase.")
    model_version: str | None
    group: Literal["treatment", "control"]
    fallback_reason: str | None = Field(
        description="Why the model was not used, or the database (the decision was spooled), when not."
    )
    replayed: bool = Field(description="True: an earlier decision of the same idempotency key.")
    decided_at: datetime


class FeedbackEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Key
    decision_id: Key
    event_type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    occurred_at: AwareDatetime
    value: float | None = Field(default=None, ge=0, le=999_999_999_999.99)


class EventResultOut(BaseModel):
    event_id: str
    status: Literal["stored", "duplicate", "conflict", "unknown_decision", "invalid", "spooled"] = Field(
        description="spooled: the database is unavailable; the event is stored locally and recorded "
        "(idempotently, by event_id) when it returns."
    )
    message: str | None
    outside_window: bool = Field(description="Stored, but outside its decision's attribution window.")


class FeedbackOut(BaseModel):
    accepted: bool = Field(description="Every event stored, spooled, or a duplicate of a stored one.")
    counts: dict[str, int]
    results: list[EventResultOut]
