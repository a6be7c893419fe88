"""Response bodies of the performance endpoints (pipelines.performance computes them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class WindowOut(BaseModel):
    since: date
    until: date
    days: int


class GroupOut(BaseModel):
    sends: int = Field(description="Decisions of the window (batch and real time).")
    matured: int = Field(description="Those whose attribution window has closed.")
    pending: int = Field(description="Those whose attribution window is still open.")
    conversions: int = Field(description="Matured decisions with a conversion in their window.")
    conversion_rate: float | None = Field(description="conversions / matured; null without a matured one.")
    explored: int
    revenue: float = Field(description="Attributed so far (pending decisions included).")
    cost: float = Field(description="sends x the campaign's channel_costs of each arm's channel.")
    opens: int = Field(description="Matured decisions with an open in their window.")
    clicks: int = Field(description="Matured decisions with a click in their window.")
    views: int = Field(description="Matured decisions with a landing-page view in their window.")
    dwell_seconds: float = Field(description="Seconds on the landing page, summed over matured decisions.")
    open_rate: float | None = Field(description="opens / matured.")
    click_through_rate: float | None = Field(description="clicks / matured.")
    click_to_open_rate: float | None = Field(description="clicks / opens.")
    view_rate: float | None = Field(description="views / matured.")
    dwell_seconds_per_send: float | None = Field(description="dwell_seconds / matured.")
    dwell_seconds_per_view: float | None = Field(description="dwell_seconds / views.")


class LiftOut(BaseModel):
    absolute: float | None = Field(description="Treatment minus control conversion rate.")
    ci_low: float | None
    ci_high: float | None
    relative: float | None = Field(description="Treatment rate / control rate - 1 (null if control is 0).")
    method: Literal["newcombe_wilson"] = Field(
        description="95% CI of a difference of proportions: Newcombe's hybrid score interval "
        "built from the two groups' Wilson intervals."
    )
    reason: str | None = Field(description="Why there is no lift (an empty group), when there is none.")


class RegretOut(BaseModel):
    estimate: float | None = Field(
        description="Conversions lost to not always sending the best arm, by posterior means, over all "
        "matured decisions of the last daily build (analytics.arm_stats; not limited to the window)."
    )
    reason: str | None


class CampaignPerformanceOut(BaseModel):
    campaign_id: int
    campaign: str
    window: WindowOut = Field(description="Decision days (UTC), both ends included.")
    as_of: datetime = Field(description="The service clock the maturity is judged by.")
    attribution_window_days: int
    matured_through: date = Field(description="Decisions of this day and before have matured.")
    treatment: GroupOut
    control: GroupOut
    lift: LiftOut
    exploration_share: float | None = Field(description="Explored treatment decisions / treatment sends.")
    revenue: float
    cost: float
    roi: float | None = Field(description="(revenue - cost) / cost; null without cost.")
    regret: RegretOut
    pending: int


class StatisticsOut(BaseModel):
    source: Literal["service_snapshot", "marts"] = Field(
        description="service_snapshot: this worker's in-memory statistics (the mart plus matured "
        "real-time feedback), what it decides from; marts: analytics.segment_arm_stats, for a "
        "campaign the service does not serve today."
    )
    marts_as_of: date | None = Field(description="The daily build the statistics start from.")
    realtime_matured_through: date | None = Field(
        description="Matured real-time decisions of this day and before are folded in."
    )
    refreshed_at: datetime | None = Field(description="When the snapshot was last refreshed.")


class PosteriorOut(BaseModel):
    sends: int = Field(description="Every logged decision (pending ones too).")
    matured: float = Field(description="Matured decisions the posterior counts.")
    rewards: float = Field(description="Their reward sum.")
    posterior_alpha: float
    posterior_beta: float
    posterior_mean: float
    ci_low: float = Field(description="95% equal-tailed credible interval of the Beta posterior.")
    ci_high: float
    prob_best: float


class ArmPerformanceOut(PosteriorOut):
    arm_id: int
    arm_key: str
    parameters: dict[str, str]
    is_default: bool


class ValuePerformanceOut(PosteriorOut):
    parameter: str
    value: str
    arms: int = Field(description="Active arms with this value, whose evidence is summed.")


class PriorOut(BaseModel):
    alpha: float
    beta: float


class ParameterPerformanceOut(BaseModel):
    campaign_id: int
    campaign: str
    reward_kind: str
    prior: PriorOut = Field(description="The base Beta prior of the campaign's policy.")
    prob_best_method: str
    statistics: StatisticsOut
    arms: list[ArmPerformanceOut]
    parameters: list[ValuePerformanceOut] = Field(
        description="Per parameter value, over the arms with it; prob_best among that parameter's values."
    )
