"""The gate end to end on MLflow (PostgreSQL): decisions known by construction, recorded on the version.

- labels shuffled over every day: the model cannot beat chance -> refused, even without a champion;
- a champion that learned nothing (forced in by a person) and a challenger trained on the truth:
  clearly better -> promoted;
- the same data with another XGBoost seed: a difference of noise (here in the challenger's favour by
  the point estimate) -> the champion stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.registry import CHAMPION, Actor, client_for, promote
from pipelines.retrain import registry_target, retrain
from pipelines.scoring import champion_summary

pytestmark = pytest.mark.slow

# A week validates (the default is the newest day): _shuffled leaves that week's labels true.
FAST = {"n_estimators": 60, "early_stopping_rounds": 10, "validation_days": 7}


def _shuffled(examples, only_training_days: bool):
    out = examples.copy()
    rows = np.ones(len(out), dtype=bool)
    if only_training_days:  # the validation days keep the truth: the gate judges on real labels
        rows = (out["decision_date"] < sorted(out["decision_date"].unique())[-7]).to_numpy()
    rng = np.random.default_rng(11)
    out.loc[rows, "converted"] = rng.permutation(out.loc[rows, "converted"].to_numpy())
    return out


def test_a_random_model_is_refused_without_a_champion(settings_for, examples, arms):
    result = retrain(settings=settings_for, examples=_shuffled(examples, False), arms=arms, config=FAST)
    assert result["status"] == "done" and not result["gate_passed"] and not result["promoted"]
    assert result["champion"] is None
    assert 0.44 < result["metrics"]["auc"] < 0.56
    assert result["gate"].startswith("no champion yet; AUC")
    assert "lower bound not above the floor 0.520" in result["gate"]

    target = registry_target(settings_for)
    client = client_for(target.tracking_uri)
    assert CHAMPION not in client.get_registered_model(target.model_name).aliases
    version = client.get_model_version(target.model_name, result["version"])
    assert version.tags["gate_passed"] == "false" and version.tags["validation_status"] == "failed"
    low, high = (float(version.tags[f"gate_challenger_auc_{end}"]) for end in ("low", "high"))
    assert low < 0.52 and low < float(version.tags["gate_challenger_auc"]) < high
    assert version.description.startswith("Gate REFUSED: no champion yet; AUC")
    folder = settings_for.home / "download"
    folder.mkdir(parents=True)
    recorded = json.loads(Path(client.download_artifacts(result["run_id"], "gate/decision.json", str(folder)))
                          .read_text())
    assert recorded["passed"] is False and recorded["challenger_auc"]["low"] == pytest.approx(low, abs=1e-5)
    # The demo's summary says why there is no model in use.
    assert champion_summary(settings_for) == {
        "error": f"version {result['version']} refused by the gate: {version.tags['gate_reason'][:300]}"
    }


def test_a_clearly_better_challenger_is_promoted(settings_for, examples, arms):
    target = registry_target(settings_for)
    weak = _shuffled(examples, True)
    learned_nothing = retrain(settings=settings_for, examples=weak, arms=arms, config=FAST)
    assert not learned_nothing["gate_passed"]  # refused by the floor; a person forces it in
    promote(target, learned_nothing["version"], force=True, actor=Actor("test", "a weak champion to beat"))

    better = retrain(settings=settings_for, examples=examples, arms=arms, config=FAST)
    assert better["gate_passed"] and better["promoted"] and better["champion"] == better["version"]
    assert f"log-loss gain over champion v{learned_nothing['version']}" in better["gate"]
    assert "significantly better" in better["gate"]
    tags = client_for(target.tracking_uri).get_model_version(target.model_name, better["version"]).tags
    assert float(tags["gate_log_loss_gain_low"]) > 0 and float(tags["gate_auc_gain_low"]) > 0
    assert tags["gate_champion_version"] == learned_nothing["version"]
    assert tags["promoted_by"] == f"retraining gate (run {better['run_id']})"


def test_a_challenger_that_differs_by_noise_is_not_promoted(settings_for, examples, arms):
    first = retrain(settings=settings_for, examples=examples, arms=arms, config=FAST)
    assert first["promoted"]
    # The strict rule (a significant gain); the default promotes a fresher level model (test_gate.py).
    strict = {**FAST, "seed": 7, "refresh_when_not_worse": False}
    reseeded = retrain(settings=settings_for, examples=examples, arms=arms, config=strict)
    assert reseeded["metrics"]["auc"] != first["metrics"]["auc"]  # a different model ...
    assert not reseeded["gate_passed"] and not reseeded["promoted"]  # ... but not a better one
    assert reseeded["champion"] == first["version"]
    target = registry_target(settings_for)
    tags = client_for(target.tracking_uri).get_model_version(target.model_name, reseeded["version"]).tags
    gain, low, high = (float(tags[f"gate_log_loss_gain{end}"]) for end in ("", "_low", "_high"))
    assert 0 < gain and low < 0 < high  # better by the point estimate; the interval straddles zero
