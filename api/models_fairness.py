"""Response body of the fair-lending endpoint (pipelines.fairness computes it)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FairnessGroupOut(BaseModel):
    group: str
    eligible: int
    eligible_share: float
    recipients: int
    recipient_share: float
    recipient_share_low: float = Field(description="Wilson 95% interval of the share among recipients.")
    recipient_share_high: float
    share_ratio: float | None = Field(description="Share among recipients / share among the eligible.")


class FairnessOfferOut(BaseModel):
    parameter: str = Field(description="The offer parameter: offer_type, or its terms (discount).")
    value: str
    attribute: str = Field(description="The protected attribute: gender, age_band, or a configured proxy.")
    recipients: int = Field(description="Treatment customers whose arm carries the offer.")
    variance: float = Field(
        description="Total variation distance between the recipients' and the eligible audience's "
        "group distributions: the share of recipients that would have to change group."
    )
    variance_low: float = Field(description="Seeded bootstrap 95% interval of the variance.")
    variance_high: float
    over_variance: bool
    under_represented: list[str]
    flagged: bool
    groups: list[FairnessGroupOut]


class FairnessThresholdsOut(BaseModel):
    max_variance: float
    min_share_ratio: float
    min_recipients: int


class FairnessOut(BaseModel):
    campaign_id: int
    date: str
    eligible: int = Field(description="Customers the day's batch list decided (treatment and holdout).")
    treatment: int
    thresholds: FairnessThresholdsOut
    offers: list[FairnessOfferOut]
