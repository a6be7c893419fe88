"""Response body of GET /campaigns/{id}/suggestions (pipelines.suggest computes it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ChangeOut(BaseModel):
    kind: Literal["add_value", "drop_exclusion"]
    parameter: str | None = Field(description="add_value: the parameter that gets a new value.")
    value: str | None = Field(description="add_value: the value added.")
    rules: list[dict[str, str]] = Field(description="drop_exclusion: the exclusion rules removed.")
    summary: str = Field(description="The change in words, e.g. 'add evening to time_of_day'.")


class SuggestionOut(BaseModel):
    arm: dict[str, str] = Field(description="The untested arm's parameter values.")
    arm_key: str
    change: ChangeOut = Field(description="The edit of the campaign file that brings this arm in.")
    mean: float = Field(description="Predicted conversion (model) or posterior mean (evidence).")
    uncertainty: float = Field(description="Bootstrap sd of the mean (model) or posterior sd (evidence).")
    optimistic: float = Field(description="mean + k x uncertainty, the ranking score.")
    lift_vs_best: float = Field(description="mean minus the current best arm's, by the same basis.")
    reason: str
    model_knows_values: bool | None = Field(
        description="Did the model see every value in training (null when ranked by the evidence)?"
    )
    kept_layout: bool = Field(description="False when the diff had to rewrite the file's layout.")
    diff: str = Field(description="Unified diff of the stored campaign definition.")


class BestArmOut(BaseModel):
    arm: dict[str, str]
    arm_key: str
    mean: float
    uncertainty: float
    by: Literal["model", "evidence"]
    sends: float | None = Field(None, description="Matured sends behind the evidence, when ranked by it.")


class SuggestionsOut(BaseModel):
    campaign: str
    basis: Literal["model", "evidence"]
    note: str = Field(description="Which model ranked them, or why the evidence did.")
    k: float
    sample_size: int = Field(description="Audience customers the model scored (0 by the evidence).")
    file: str = Field(description="The label of the diffs: the stored definition.")
    best_arm: BestArmOut
    suggestions: list[SuggestionOut]
    edges: list[SuggestionOut] = Field(description="Next values beyond an ordered parameter's edge.")
