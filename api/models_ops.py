"""Response bodies of the model card, data-quality and alert endpoints (pipelines.model_card,
pipelines.quality and pipelines.alerts compute them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


# -- the model card -----------------------------------------------------------------------------
class TrainingOut(BaseModel):
    rows: int | None = Field(description="Training rows (the days before the validation days).")
    date_from: str | None
    date_to: str | None
    examples: int | None = Field(description="Matured examples in the run's snapshot (train + holdout).")
    features: int | None


class HoldoutOut(BaseModel):
    rows: int | None = Field(description="Validation rows: the newest days, never seen in training.")
    date_from: str | None
    date_to: str | None
    auc: float | None
    auc_ci_low: float | None = Field(description="DeLong interval of the gate; null if never gated.")
    auc_ci_high: float | None
    log_loss: float | None
    brier: float | None
    ece: float | None = Field(description="Expected calibration error over equal-count bins.")
    base_rate: float | None
    mean_prediction: float | None
    top_decile_lift: float | None


class OffPolicyOut(BaseModel):
    """Of the policy "send each customer the arm the model ranks first", on the logged decisions."""

    dr_value: float | None
    dr_ci_low: float | None
    dr_ci_high: float | None
    snips_value: float | None
    snips_ci_low: float | None
    snips_ci_high: float | None
    logged_value: float | None = Field(description="The logging policy's mean reward.")
    match_rate: float | None
    ess: float | None = Field(description="Effective sample size of the importance weights.")
    n: float | None


class CalibrationBinOut(BaseModel):
    bin: int
    count: int
    mean_predicted: float | None
    observed_rate: float | None


class LiftDecileOut(BaseModel):
    decile: int
    count: int
    positives: float
    response_rate: float | None
    lift: float | None
    cumulative_share: float | None
    cumulative_gain: float | None


class ImportanceOut(BaseModel):
    feature: str
    total_gain: float
    share: float | None


class VersionCardOut(BaseModel):
    version: str
    aliases: list[str]
    status: str
    registered_at: str
    promoted_at: str | None
    promoted_by: str | None
    promote_reason: str | None
    run_id: str
    training: TrainingOut
    holdout: HoldoutOut
    off_policy: OffPolicyOut
    gate: dict[str, Any] | None = Field(description="The gate's decision as recorded (gate/decision.json).")
    calibration: list[CalibrationBinOut] | None = Field(description="Null: not recorded by its run.")
    lift: list[LiftDecileOut] | None
    importance: list[ImportanceOut] | None = Field(description="The top 15 features by total gain.")
    importance_features: int | None


class GateRowOut(BaseModel):
    version: str
    registered_at: str
    compared_with: str | None = Field(description="The champion version it was compared with.")
    passed: bool
    verdict: str
    reason: str
    auc_ci_low: float | None
    log_loss_gain_low: float | None
    status: str


class ModelCardOut(BaseModel):
    model_name: str
    versions: int
    champion: VersionCardOut | None
    champion_note: str | None = Field(description="Why there is no champion card.")
    challenger: VersionCardOut | None
    challenger_note: str | None
    gate_history: list[GateRowOut] = Field(description="Each version's gate decision, newest first.")


# -- data quality -------------------------------------------------------------------------------
class DaysOut(BaseModel):
    since: date
    until: date
    days: int


class ReasonCountOut(BaseModel):
    reason: str
    rows: int
    files: int


class DayReasonCountOut(BaseModel):
    date: date
    reason: str
    rows: int


class QuarantineOut(BaseModel):
    rows: int
    by_reason: list[ReasonCountOut]
    by_day: list[DayReasonCountOut]


class RejectedFileOut(BaseModel):
    date: date
    path: str
    kind: str
    reason: str | None
    rows_read: int
    rows_quarantined: int
    loaded_at: datetime


class FeedbackHoldOut(BaseModel):
    channel: str
    landing: str = Field(description="file (the inbox) or realtime (POST /feedback).")
    date: date
    reason: str
    held_at: datetime
    released_at: datetime | None = Field(description="Null: still held out of learning.")
    released_by: str | None


class ValidationOut(BaseModel):
    suite: str
    batch: str
    run_time: datetime
    success: bool
    evaluated: int
    failed: list[str]
    data_docs_page: str | None = Field(description="Under /dashboard/data-docs/; null: no page kept.")


class QualityOut(BaseModel):
    window: DaysOut
    quarantine: QuarantineOut
    rejected_files: list[RejectedFileOut]
    feedback_holds: list[FeedbackHoldOut] = Field(
        description="Feedback source-days held out of learning (pipelines/anomalies.py): the window's, "
        "and any still held."
    )
    validations: list[ValidationOut] = Field(description="The newest results of GX's store first.")
    data_docs_index: str | None


# -- alerts -------------------------------------------------------------------------------------
class AlertOut(BaseModel):
    alert_id: int
    alert_date: date
    campaign: str | None
    kind: str
    severity: str
    status: str = Field(description="open, acknowledged or resolved.")
    message: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    details: dict[str, Any]


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class AlertNoteIn(BaseModel):
    note: str | None = Field(None, max_length=2000, description="Why, for the next person.")
