"""Response bodies of the customer-segment and algorithm-diagnostics endpoints
(pipelines.segments_view and pipelines.diagnostics compute them)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from api.models_performance import PosteriorOut, PriorOut, RegretOut, StatisticsOut, WindowOut


class SegmentArmOut(PosteriorOut):
    arm_id: int
    arm_key: str
    ci_width: float = Field(description="Width of the 95% credible interval: how unsure the posterior is.")


class SegmentOut(BaseModel):
    segment: str
    sends: int = Field(description="Logged decisions of the segment (both groups, pending too).")
    matured: float = Field(description="Matured sends the statistics count.")
    rewards: float
    reward_rate: float | None = Field(description="rewards / matured; null without a matured send.")
    ci_low: float | None = Field(description="Wilson 95% interval of the rate.")
    ci_high: float | None
    best: SegmentArmOut | None = Field(
        description="The arm of highest posterior mean (ties: more matured evidence, then arm order), "
        "with P(best) among the segment's arms; null without matured evidence."
    )
    runner_up: SegmentArmOut | None
    gap: float | None = Field(description="Best minus runner-up posterior mean.")
    tied_arms: int | None = Field(description="Arms whose posterior mean equals the best's (1: no tie).")


class SegmentsOut(BaseModel):
    campaign_id: int
    campaign: str
    reward_kind: str
    prior: PriorOut
    prob_best_method: str
    statistics: StatisticsOut
    segments: list[SegmentOut]


class ArmLabelOut(BaseModel):
    arm_id: int
    arm_key: str


class DiagnosticDayOut(BaseModel):
    date: date
    treatment_decisions: int
    explored: int
    exploration_rate: float | None = Field(
        description="Share of the day's treatment decisions flagged explored."
    )
    allocation: list[float] | None = Field(
        description="Share of the day's treatment sends per arm, in arms' order."
    )
    top_arm_id: int | None
    top_share: float | None
    mean_propensity: float | None = Field(description="Mean logged probability of the chosen arm.")
    allocation_entropy: float | None = Field(
        description="Entropy of the allocation / log(arms): 0 one arm, 1 even."
    )
    mean_posterior_width: float = Field(
        description="Mean over arms of the 95% credible-interval width from the window's matured decisions "
        "of this day and before (outcomes as known now) plus the prior."
    )
    regret: float = Field(
        description="Posterior-mean shortfall of the day's treatment choices vs the best arm."
    )
    cumulative_regret: float


class ConvergenceOut(BaseModel):
    share: float = Field(description="The share of a day's sends the top arm must take.")
    min_days: int = Field(description="Decision days in a row, through the last one, it must hold.")
    converged: bool
    since: date | None
    arm_id: int | None
    days_to_converge: int | None = Field(description="Decision days from the window's first decision day.")
    reason: str | None


class EstimateOut(BaseModel):
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    n: int
    effective_sample_size: float
    n_clipped: int


class PolicyEstimateOut(BaseModel):
    policy: str
    description: str
    mean_target_probability: float | None = Field(description="Mean probability it gives the logged arm.")
    max_weight: float | None
    ips: EstimateOut | None
    snips: EstimateOut | None
    dr: EstimateOut | None
    reason: str | None


class LeftOutOut(BaseModel):
    control: int
    pending: int
    unknown_segment_or_retired_arm: int


class OffPolicyOut(BaseModel):
    logged_decisions: int = Field(description="Matured treatment decisions the estimates use.")
    left_out: LeftOutOut
    observed_value: float | None = Field(description="Mean reward of those decisions.")
    confidence: float
    reward_model: str = Field(description="DR's reward model.")
    policies: list[PolicyEstimateOut]
    reason: str | None


class DiagnosticsOut(BaseModel):
    campaign_id: int
    campaign: str
    policy: str
    window: WindowOut
    as_of: datetime
    statistics: StatisticsOut
    arms: list[ArmLabelOut]
    treatment_decisions: int
    exploration_rate: float | None
    days: list[DiagnosticDayOut]
    convergence: ConvergenceOut
    regret: RegretOut
    window_regret: float = Field(description="Cumulative regret of the window's treatment decisions.")
    off_policy: OffPolicyOut
