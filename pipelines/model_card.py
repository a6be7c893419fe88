"""The model card of the dashboard: the champion next to the challenger, and the gate's history,
read from what retraining logged to MLflow (never recomputed).

Per version: the registry's listing (:func:`ml.registry.list_versions`: aliases, status, when
registered, promotion audit, the gate's verdict), its run's params (``dataset.*``, ``split.*``)
and metrics (``val_*``), and its run's artifacts: the tables ``evaluation/calibration.csv``,
``lift_gain.csv`` and ``feature_importance.csv`` (:func:`ml.tracking.log_evaluation`) and the
gate's full decision ``gate/decision.json`` (:func:`ml.tracking.record_gate`, with the DeLong
interval of the AUC and the off-policy comparison). What a run does not have is None: the page
says "not recorded".
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pandas as pd

from ml.registry import (
    CHALLENGER,
    CHAMPION,
    RegistryTarget,
    RegistryUnavailable,
    _mlflow_errors,
    client_for,
    list_versions,
)
from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings

TOP_FEATURES = 15
HISTORY_LIMIT = 50  # gate decisions shown, newest first
HOLDOUT_METRICS = ("auc", "log_loss", "brier", "ece", "base_rate", "mean_prediction", "top_decile_lift")
OFF_POLICY = ("dr_value", "dr_ci_low", "dr_ci_high", "snips_value", "snips_ci_low", "snips_ci_high",
              "logged_value", "match_rate", "ess", "n")  # fmt: skip
TABLES = {"calibration": "calibration.csv", "lift": "lift_gain.csv", "importance": "feature_importance.csv"}


def read_model_card(settings: Settings) -> dict:
    """The card of this environment's registered model; ServiceUnavailable naming the registry
    when it cannot be reached (probed cheaply first: MLflow's own client retries for minutes)."""
    from pipelines.readiness import registry_problem
    from pipelines.retrain.config import registry_target, tracking_uri

    problem = registry_problem(tracking_uri(settings))
    if problem:
        raise ServiceUnavailable(problem)
    try:
        return model_card(registry_target(settings))
    except RegistryUnavailable as exc:
        raise ServiceUnavailable(f"model registry: {exc}") from None


def model_card(target: RegistryTarget) -> dict:
    """Champion and challenger cards (None when there is none) and the gate history."""
    versions = list_versions(target)
    by_alias = {alias: row for row in versions for alias in row["aliases"]}
    champion, challenger = by_alias.get(CHAMPION), by_alias.get(CHALLENGER)
    if challenger is not None and champion is not None and challenger["version"] == champion["version"]:
        challenger_note = f"the latest challenger, version {challenger['version']}, is the champion"
        challenger = None
    else:
        challenger_note = None if challenger else "no challenger: no model has been trained"
    client = client_for(target.tracking_uri)
    return {
        "model_name": target.model_name,
        "versions": len(versions),
        "champion": _card(client, champion) if champion else None,
        "champion_note": None if champion else "no champion yet: no model has been promoted",
        "challenger": _card(client, challenger) if challenger else None,
        "challenger_note": challenger_note,
        "gate_history": [_gate_row(row) for row in versions if row["gate"]["passed"] is not None][
            :HISTORY_LIMIT
        ],
    }


def _card(client, row: dict) -> dict:
    """One version's card: the registry's listing, its run's params and metrics, its tables."""
    with _mlflow_errors():
        run = client.get_run(row["run_id"])
    params, metrics = run.data.params, run.data.metrics
    audit = row["audit"]
    with tempfile.TemporaryDirectory(prefix="campaignopt-card-") as tmp:
        tables = {name: _table(client, row["run_id"], file, Path(tmp)) for name, file in TABLES.items()}
        gate = _artifact_json(client, row["run_id"], "gate/decision.json", Path(tmp))
    importance = tables["importance"]
    auc = (gate or {}).get("challenger_auc") or {}
    return {
        "version": row["version"],
        "aliases": row["aliases"],
        "status": row["status"],
        "registered_at": row["created"],
        "promoted_at": audit.get("promoted_at"),
        "promoted_by": audit.get("promoted_by"),
        "promote_reason": audit.get("promote_reason"),
        "run_id": row["run_id"],
        "training": {
            **_split(params, "train"),
            "examples": _int(params.get("dataset.rows")),
            "features": _int(params.get("features.n")),
        },
        "holdout": {
            **_split(params, "valid"),
            **{k: _number(metrics.get(f"val_{k}")) for k in HOLDOUT_METRICS},
            "auc_ci_low": _number(auc.get("low")),
            "auc_ci_high": _number(auc.get("high")),
        },
        "off_policy": {k: _number(metrics.get(f"val_ope_{k}")) for k in OFF_POLICY},
        "gate": gate,
        "calibration": tables["calibration"],
        "lift": tables["lift"],
        "importance": importance[:TOP_FEATURES] if importance is not None else None,
        "importance_features": len(importance) if importance is not None else None,
    }


def _split(params: dict, part: str) -> dict:
    """Rows and days of the time split's ``train`` or ``valid`` part (logged by ml.tracking)."""
    return {
        "rows": _int(params.get(f"split.{part}_rows")),
        "date_from": params.get(f"split.{part}_date_from"),
        "date_to": params.get(f"split.{part}_date_to"),
    }


def _gate_row(row: dict) -> dict:
    gate = row["gate"]
    return {
        "version": row["version"],
        "registered_at": row["created"],
        "compared_with": gate["champion_version"],
        "passed": gate["passed"],
        "verdict": "passed" if gate["passed"] else "refused",
        "reason": gate["reason"],
        "auc_ci_low": _number(gate["auc_low"]),
        "log_loss_gain_low": _number(gate["log_loss_gain_low"]),
        "status": row["status"],
    }


def _download(client, run_id: str, path: str, folder: Path) -> Path | None:
    """A run's artifact as a local file, or None when the run never logged it."""
    try:
        with _mlflow_errors():
            local = Path(client.download_artifacts(run_id, path, str(folder)))
    except RegistryUnavailable:
        raise
    except Exception:  # noqa: BLE001 - MLflow raises its own or OSError for a missing artifact
        return None
    return local if local.is_file() else None


def _table(client, run_id: str, file: str, folder: Path) -> list[dict] | None:
    local = _download(client, run_id, f"evaluation/{file}", folder)
    if local is None:
        return None
    frame = pd.read_csv(local)
    return [{k: _clean(v) for k, v in record.items()} for record in frame.to_dict(orient="records")]


def _artifact_json(client, run_id: str, path: str, folder: Path) -> dict | None:
    local = _download(client, run_id, path, folder)
    return json.loads(local.read_text()) if local is not None else None


def _clean(value: object) -> object:
    if isinstance(value, float):
        return _number(value)
    return value.item() if hasattr(value, "item") else value  # numpy scalars


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
