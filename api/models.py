"""Request and response bodies. A campaign definition is pipelines' CampaignSpec itself: the API
and `campaignopt campaign apply` validate with the same model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from pipelines.campaign_spec import CampaignSpec


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
