"""Response bodies of the dashboard's JSON endpoints (pipelines.dashboard_data computes them)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from api.models_performance import LiftOut, StatisticsOut, WindowOut


class DayGroupOut(BaseModel):
    sends: int
    matured: int
    conversions: int
    conversion_rate: float | None = Field(description="conversions / matured; null without a matured one.")
    ci_low: float | None = Field(description="Wilson 95% interval of the rate; null without a matured one.")
    ci_high: float | None
    revenue: float
    cost: float


class DayOut(BaseModel):
    date: date
    treatment: DayGroupOut
    control: DayGroupOut
    cumulative_lift: LiftOut = Field(description="The lift of the window's first day through this one.")


class SampleRatioOut(BaseModel):
    control_sends: int
    sends: int
    observed_share: float | None = Field(description="Control sends / all sends of the window.")
    expected_share: float = Field(description="The campaign's holdout_share.")
    alpha: float = Field(description="A p-value below it is a mismatch.")
    chi2: float | None
    p_value: float | None = Field(description="Chi-square goodness of fit of the control share.")
    mismatch: bool | None
    reason: str | None = Field(description="Why there is no test, when there is none.")


class DailyPerformanceOut(BaseModel):
    campaign_id: int
    campaign: str
    window: WindowOut
    as_of: datetime
    holdout_share: float
    days: list[DayOut]
    sample_ratio: SampleRatioOut


class CellOut(BaseModel):
    row: str
    column: str
    matured: float
    rewards: float
    posterior_mean: float
    ci_low: float = Field(description="95% equal-tailed credible interval.")
    ci_high: float
    prob_best: float = Field(description="Among the cells (segment x arm: among the segment's arms).")


class HeatmapOut(BaseModel):
    rows_parameter: str
    columns_parameter: str
    rows: list[str]
    columns: list[str]
    cells: list[list[CellOut | None]] = Field(description="Row-major; null: no active arm has the pair.")


class HeatmapsOut(BaseModel):
    campaign_id: int
    campaign: str
    reward_kind: str
    statistics: StatisticsOut
    heatmaps: list[HeatmapOut]
