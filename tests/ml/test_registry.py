"""MLflow on a real PostgreSQL: register, alias, gate, promote, roll back, load the champion."""

from __future__ import annotations

import numpy as np
import pytest

from ml.registry import (
    CHALLENGER,
    CHAMPION,
    Actor,
    GateRefused,
    UnknownModelVersion,
    client_for,
    list_versions,
    load_champion,
    promote,
    rollback,
)
from pipelines.retrain import registry_target, retrain

pytestmark = pytest.mark.slow

# A week validates (the default is the newest day): the worse model below learns nothing on the older days.
FAST = {"n_estimators": 80, "early_stopping_rounds": 10, "validation_days": 7}


def _worse(examples):
    """The same days with the labels of the training days shuffled: a model that learned nothing.

    The validation days keep their true labels, so the gate judges both models on the truth.
    """
    worse = examples.copy()
    training_days = worse["decision_date"] < sorted(worse["decision_date"].unique())[-7]
    rng = np.random.default_rng(0)
    worse.loc[training_days, "converted"] = rng.permutation(worse.loc[training_days, "converted"].to_numpy())
    return worse


def test_load_champion_is_none_without_a_registered_model(settings_for):
    target = registry_target(settings_for)
    assert load_champion(target.model_name, tracking_uri=target.tracking_uri) is None


def test_first_training_registers_a_champion_and_a_worse_model_is_refused(settings_for, examples, arms):
    first = retrain(settings=settings_for, examples=examples, arms=arms, config=FAST)
    assert first["status"] == "done" and first["version"] == "1"
    assert first["promoted"] is True and first["champion"] == "1"
    assert first["gate"].startswith("no champion yet; AUC") and "above the floor 0.520" in first["gate"]

    target = registry_target(settings_for)
    client = client_for(target.tracking_uri)
    version = client.get_model_version_by_alias(target.model_name, CHAMPION)
    assert str(version.version) == "1" and set(version.aliases) == {CHALLENGER, CHAMPION}
    assert version.tags["validation_status"] == "promoted"

    run = client.get_run(first["run_id"])
    for metric in ("val_auc", "val_log_loss", "val_brier", "val_ope_dr_value", "val_ope_snips_ci_low"):
        assert metric in run.data.metrics
    assert run.data.params["dataset.rows"] == str(len(examples))
    assert run.data.params["dataset.date_from"] == "2026-01-01"
    assert run.data.params["split.valid_date_to"] == "2026-01-28"
    charts = {a.path for a in client.list_artifacts(first["run_id"], "charts")}
    assert charts == {"charts/calibration.png", "charts/lift_gain.png", "charts/feature_importance.png"}

    champion = load_champion(target.model_name, tracking_uri=target.tracking_uri)
    model, version_id, quality = champion
    assert version_id == "1" and quality == pytest.approx(first["metrics"]["auc"], abs=1e-5)
    scores = model.score_matrix(examples.head(5), arms)
    assert scores.shape == (5, len(arms)) and scores.dtype == np.float32

    second = retrain(settings=settings_for, examples=_worse(examples), arms=arms, config=FAST)
    assert second["version"] == "2"
    assert second["gate_passed"] is False and second["promoted"] is False
    assert second["champion"] == "1"
    assert "not significantly above" in second["gate"]
    aliases = client.get_registered_model(target.model_name).aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {CHAMPION: "1", CHALLENGER: "2"}
    assert client.get_model_version(target.model_name, "2").tags["validation_status"] == "failed"


def test_promote_rollback_and_unknown_versions(settings_for, examples, arms):
    target = registry_target(settings_for)
    retrain(settings=settings_for, examples=examples, arms=arms, config=FAST)
    # The same data and seed give the same model: not significantly better, so the champion stays.
    again = retrain(settings=settings_for, examples=examples, arms=arms, config=FAST)
    assert not again["gate_passed"] and not again["promoted"] and again["champion"] == "1"
    assert "log-loss gain over champion v1 +0.00000 [+0.00000, +0.00000]" in again["gate"]
    with pytest.raises(GateRefused, match="version 2 of .* was not passed by the gate"):
        promote(target, "2")
    assert promote(target, "2", force=True, actor=Actor("ana", "same model, new data snapshot")) == "1"

    assert rollback(target, actor=Actor("ben", "compare in production")) == ("2", "1")
    assert load_champion(target.model_name, tracking_uri=target.tracking_uri).version == "1"
    assert promote(target, "2", force=True) == "1"
    assert rollback(target) == ("2", "1")
    with pytest.raises(UnknownModelVersion, match="no earlier champion"):
        rollback(target)
    with pytest.raises(UnknownModelVersion, match="no version '99'"):
        promote(target, "99")

    listed = list_versions(target)
    assert [row["version"] for row in listed] == ["2", "1"]
    assert listed[0]["status"] == "rolled_back" and CHALLENGER in listed[0]["aliases"]
    assert listed[1]["aliases"] == [CHAMPION] and listed[1]["status"] == "promoted"
    assert listed[0]["gate"]["passed"] is False and listed[1]["gate"]["passed"] is True
    assert listed[0]["audit"]["promote_forced"] == "true"
    assert listed[0]["audit"]["rolled_back_by"] == "unknown"  # the last rollback named nobody


def test_without_auto_promotion_there_is_no_champion(settings_for, examples, arms):
    result = retrain(settings=settings_for, examples=examples, arms=arms,
                     config={**FAST, "auto_promote": False})
    assert result["gate_passed"] and not result["promoted"] and result["champion"] is None
    target = registry_target(settings_for)
    assert load_champion(target.model_name, tracking_uri=target.tracking_uri) is None
    assert list_versions(target)[0]["aliases"] == [CHALLENGER]
