"""Steps 5 and 6 of retraining — gate and promote — and :func:`retrain`, all steps in one call.

The gate (rules in :mod:`ml.gate`) scores the challenger and the champion on the same
validation rows of the run's snapshot, so every comparison is paired. A champion whose
artifact cannot be loaded cannot be compared: the challenger is then judged by the quality
floor alone (and the reason says so), since the daily decide already runs without that
champion.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping

import pandas as pd

from ml import gate as rules
from ml import tracking
from ml.features import FeatureSpec
from ml.registry import (
    Actor,
    ModelUnavailable,
    RegistryUnavailable,
    UnknownModelVersion,
    champion_version,
    load_champion,
    load_version,
    promote,
)
from ml.scoring import ResponseModel
from pipelines.errors import NotFound, ServiceUnavailable
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.in_memory import validation_scores
from pipelines.retrain.steps import (
    SKIPPED,
    build_training_set,
    evaluate_step,
    read_arms,
    read_config,
    register_step,
    target_for,
    train_step,
    validation_rows,
    write_json,
)
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

# -- step 5: gate ------------------------------------------------------------------------------


def gate_step(run_id: str, *, settings: Settings | None = None) -> dict[str, object]:
    """Step 5: the quality floor, and the paired comparison with the champion; recorded on the version."""
    target = target_for(settings)
    names = ["config.json", "examples.parquet", "arms.parquet", "model.ubj", "feature_spec.json",
             "registered.json", "metrics.json"]
    with tracking.step_folder(target, run_id, names) as work:
        config = read_config(work)
        version = json.loads((work / "registered.json").read_text())["version"]
        challenger_metrics = json.loads((work / "metrics.json").read_text())
        valid = validation_rows(work, config)
        arms = read_arms(work)
        challenger = _scores(_local_model(work), valid, arms, config, challenger_metrics)

        current = champion_version(target)
        champion, note = None, ""
        if current is not None and current != version:
            try:
                model, tags = load_version(target, current)
                champion = _scores(model, valid, arms, config, None)
            except ModelUnavailable as exc:
                note = f"champion v{current} cannot be loaded ({exc}): judged by the floor alone"
                log.warning(note)
        decision = rules.decide(
            valid[config.train.label].to_numpy(),
            challenger,
            champion,
            config.gate,
            champion_version=current if champion is not None else None,
            champion_note=note,
        )
        tracking.record_gate(target, run_id, version, decision)
        info = {"run_id": run_id, "version": version, **decision.to_dict()}
        write_json(work / "gate.json", info)
        tracking.put_files(target, run_id, work, ["gate.json"])
    return info


def _local_model(work) -> ResponseModel:
    from xgboost import XGBClassifier

    classifier = XGBClassifier()
    classifier.load_model(work / "model.ubj")
    return ResponseModel(classifier, FeatureSpec.from_json((work / "feature_spec.json").read_text()))


def _scores(
    model: ResponseModel,
    valid: pd.DataFrame,
    arms: pd.DataFrame | None,
    config: RetrainConfig,
    metrics: Mapping[str, float] | None,
) -> rules.ValidationScores:
    """One model's predictions and per-row off-policy terms on the validation rows."""
    return validation_scores(model, valid, arms, config.train.label, metrics)


# -- step 6: promote ---------------------------------------------------------------------------


def promote_step(
    run_id: str, *, settings: Settings | None = None, by: str | None = None
) -> dict[str, object]:
    """Step 6: make the challenger champion when the gate passed and auto-promotion is on."""
    target = target_for(settings)
    with tracking.step_folder(target, run_id, ["config.json", "gate.json"]) as work:
        config = read_config(work)
        gate = json.loads((work / "gate.json").read_text())
    version = gate["version"]
    info: dict[str, object] = {"run_id": run_id, "version": version, "promoted": False,
                               "previous_champion": None}
    if not gate["passed"]:
        info["reason"] = f"gate refused: {gate['reason']}"
    elif not config.gate.auto_promote:
        info["reason"] = f"gate passed; auto-promotion is off: run `campaignopt model promote {version}`"
    else:
        actor = Actor(by=by or f"retraining gate (run {run_id})", reason=f"gate passed: {gate['reason']}")
        info["previous_champion"] = promote(target, version, actor=actor)
        info["promoted"] = True
        info["reason"] = actor.reason
    tracking.end_run(target, run_id)
    return info


# -- all steps ---------------------------------------------------------------------------------


def retrain(
    *,
    settings: Settings | None = None,
    config: RetrainConfig | Mapping[str, object] | None = None,
    as_of: dt.date | str | None = None,
    examples: pd.DataFrame | None = None,
    arms: pd.DataFrame | None = None,
    run_tags: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Train -> evaluate -> register -> gate -> promote, in one process (the same hand-over).

    Returns
    -------
    dict
        ``status`` (``skipped`` or ``done``), ``reason`` when skipped; else ``run_id``,
        ``version``, ``promoted`` (bool), ``champion`` (version after the run), ``gate``
        (reason), ``gate_passed``, ``metrics`` (key validation metrics). Small and
        JSON-ready, for XCom or ``--json``.
    """
    settings = settings or get_settings()
    dataset = build_training_set(
        settings=settings, config=config, as_of=as_of, examples=examples, arms=arms, run_tags=run_tags
    )
    if dataset["status"] == SKIPPED:
        return {"status": SKIPPED, "reason": dataset["reason"], "rows": dataset["rows"]}
    run_id = str(dataset["run_id"])
    train_step(run_id, settings=settings)
    metrics = evaluate_step(run_id, settings=settings)
    metrics.pop("run_id")
    registered = register_step(run_id, settings=settings)
    gate = gate_step(run_id, settings=settings)
    promoted = promote_step(run_id, settings=settings)
    return {
        "status": "done",
        "run_id": run_id,
        "model_name": registered["model_name"],
        "version": registered["version"],
        "promoted": promoted["promoted"],
        "champion": registered["version"] if promoted["promoted"] else champion_version(target_for(settings)),
        "gate": gate["reason"],
        "gate_passed": gate["passed"],
        "metrics": metrics,
        "rows": dataset["rows"],
        "date_from": dataset["date_from"],
        "date_to": dataset["date_to"],
    }


def load_champion_model(settings: Settings | None = None):
    """The environment's champion for scorers: ``(model, version, quality)`` or None.

    Raises
    ------
    ServiceUnavailable
        When the registry cannot be reached.
    ml.registry.ModelUnavailable
        When the champion's artifact cannot be loaded (deleted or corrupt).
    """
    target = target_for(settings)
    try:
        return load_champion(target.model_name, tracking_uri=target.tracking_uri)
    except RegistryUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except UnknownModelVersion as exc:
        raise NotFound(str(exc)) from None
