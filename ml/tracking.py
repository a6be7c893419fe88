"""One MLflow run per retraining: what each step logs, and what the next step reads back.

The run is the hand-over between the retraining steps, which may run on different machines:
step 1 creates the run and logs the training snapshot under ``handover/``; each later step
downloads what it needs from the run's artifacts into a temporary folder, works, and logs
its results to the same run. Nothing but the run id travels between steps (Airflow XCom).
On a deployment with several workers the artifact store must be shared by them (an MLflow
server with ``--serve-artifacts`` as the tracking URI, or an object store as artifact root).

This module never reads project settings: the caller passes a :class:`RegistryTarget`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ml.evaluate import Evaluation
from ml.gate import GateDecision
from ml.registry import (
    CHALLENGER,
    GATE_TAG,
    KEY_METRICS,
    MODEL_ARTIFACT,
    STATUS_TAG,
    RegisteredVersion,
    RegistryTarget,
    _is_number,
    _mlflow_errors,
    client_for,
    ensure_experiment,
)
from ml.train import TrainResult, booster_feature_names

HANDOVER = "handover"


class HandoverMissing(LookupError):
    """A step's input is not among the run's artifacts (an earlier step did not finish)."""


def start_run(target: RegistryTarget, *, run_name: str, tags: Mapping[str, str] | None = None) -> str:
    """Create the retraining run (status RUNNING) and return its id."""
    experiment_id = ensure_experiment(target)
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        run = client.create_run(
            experiment_id, run_name=run_name, tags={"model_name": target.model_name, **(tags or {})}
        )
    return run.info.run_id


def end_run(target: RegistryTarget, run_id: str, status: str = "FINISHED") -> None:
    with _mlflow_errors():
        client_for(target.tracking_uri).set_terminated(run_id, status)


def put_files(target: RegistryTarget, run_id: str, folder: Path, names: list[str]) -> None:
    """Log ``folder/name`` (files or folders) under ``handover/`` for the next steps."""
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        for name in names:
            path = folder / name
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=f"{HANDOVER}/{name}")
            else:
                client.log_artifact(run_id, str(path), artifact_path=HANDOVER)


@contextmanager
def step_folder(target: RegistryTarget, run_id: str, names: list[str]) -> Iterator[Path]:
    """A fresh temporary folder holding ``handover/<name>`` of the run for each name; removed after."""
    import mlflow

    tmp = Path(tempfile.mkdtemp(prefix="campaignopt-retrain-"))
    work = tmp / HANDOVER  # a file artifact lands under its base name in dst_path
    work.mkdir()
    try:
        for name in names:
            try:
                with _mlflow_errors():
                    mlflow.artifacts.download_artifacts(
                        run_id=run_id, artifact_path=f"{HANDOVER}/{name}", dst_path=str(work),
                        tracking_uri=target.tracking_uri,
                    )
            except (OSError, mlflow.exceptions.MlflowException) as exc:
                raise HandoverMissing(
                    f"run {run_id} has no artifact {HANDOVER}/{name}: did the previous step finish? "
                    f"({str(exc).splitlines()[0][:200]})"
                ) from None
        yield work
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log_params(target: RegistryTarget, run_id: str, params: Mapping[str, object]) -> None:
    from mlflow.entities import Param

    client = client_for(target.tracking_uri)
    items = [Param(k, "None" if v is None else str(v)) for k, v in params.items()]
    with _mlflow_errors():
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=items[start:start + 100])


def log_metrics(target: RegistryTarget, run_id: str, metrics: Mapping[str, float]) -> None:
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        for key, value in metrics.items():
            if _is_number(value):
                client.log_metric(run_id, key, float(value))


def log_training(target: RegistryTarget, run_id: str, result: TrainResult) -> None:
    """Hyperparameters, split facts and training time of the run."""
    params = {f"train.{k}": v for k, v in result.config.to_params().items()}
    params.update({f"split.{k}": v for k, v in result.split.describe().items()})
    params["split.cutoff"] = str(result.split.cutoff)
    params["features.n"] = result.spec.n_features
    log_params(target, run_id, params)
    log_metrics(target, run_id, {"best_iteration": float(result.best_iteration),
                                 "train_seconds": result.train_seconds})


def log_evaluation(target: RegistryTarget, run_id: str, result: TrainResult, evaluation: Evaluation) -> None:
    """Validation metrics (``val_*``), the tables (``evaluation/``) and the PNG charts (``charts/``)."""
    log_metrics(target, run_id, {f"val_{k}": v for k, v in evaluation.metrics.items()})
    client = client_for(target.tracking_uri)
    with _mlflow_errors(), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        evaluation.calibration.to_csv(folder / "calibration.csv", index=False)
        evaluation.lift.to_csv(folder / "lift_gain.csv", index=False)
        evaluation.importance.to_csv(folder / "feature_importance.csv", index=False)
        metrics = json.dumps(_finite(evaluation.metrics), indent=2, sort_keys=True)
        (folder / "metrics.json").write_text(metrics)
        (folder / "feature_spec.json").write_text(json.dumps(result.spec.to_dict(), indent=2))
        client.log_artifacts(run_id, tmp, artifact_path="evaluation")
        for path in evaluation.charts.values():
            client.log_artifact(run_id, str(path), artifact_path="charts")


def register_run_model(
    target: RegistryTarget, run_id: str, result: TrainResult, metrics: Mapping[str, float]
) -> RegisteredVersion:
    """Log the model into the run and register it: a new version with alias ``challenger``.

    The fitted :class:`FeatureSpec` rides in the model's MLmodel metadata, so the two can
    never be separated.
    """
    import mlflow
    import xgboost
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.tracking_uri)
    example = result.split.valid.head(5)
    example_x = pd.DataFrame(
        result.spec.transform(example), columns=booster_feature_names(result.spec.feature_names)
    )
    signature = infer_signature(example_x, result.model.predict_proba(example_x.to_numpy()))
    with _mlflow_errors(), mlflow.start_run(run_id=run_id):
        info = mlflow.xgboost.log_model(
            result.model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example_x,
            registered_model_name=target.model_name,
            metadata={"feature_spec": result.spec.to_dict()},
            # Explicit requirements: inferring them imports and inspects the environment (~10 s).
            pip_requirements=[f"xgboost-cpu=={xgboost.__version__}", "scikit-learn", "pandas"],
            model_format="ubj",
        )
        version = str(info.registered_model_version)
        client = client_for(target.tracking_uri)
        client.set_registered_model_alias(target.model_name, CHALLENGER, version)
        client.set_model_version_tag(target.model_name, version, STATUS_TAG, "pending")
        for key in KEY_METRICS:
            value = metrics.get(key)
            if _is_number(value):
                client.set_model_version_tag(target.model_name, version, f"val_{key}", f"{value:.6g}")
        describe = result.split.describe()
        client.set_model_version_tag(target.model_name, version, "valid_window",
                                     f"{describe['valid_date_from']}..{describe['valid_date_to']}")
    return RegisteredVersion(run_id, version, f"models:/{target.model_name}/{version}")


def record_gate(target: RegistryTarget, run_id: str, version: str, decision: GateDecision) -> None:
    """The gate's full decision on the version (tags + description) and in the run (``gate/``)."""
    client = client_for(target.tracking_uri)
    tags = {
        STATUS_TAG: "passed" if decision.passed else "failed",
        GATE_TAG: "true" if decision.passed else "false",
        "gate_reason": decision.reason[:4000],
        "gate_rows": str(decision.n_rows),
        "gate_champion_version": decision.champion_version or "",
    }
    for name in ("challenger_auc", "auc_gain", "log_loss_gain", "value_gain"):
        interval = getattr(decision, name)
        if interval is not None:
            tags[f"gate_{name}"] = f"{interval.value:.6g}"
            tags[f"gate_{name}_low"] = f"{interval.low:.6g}"
            tags[f"gate_{name}_high"] = f"{interval.high:.6g}"
    verdict = "PASSED" if decision.passed else "REFUSED"
    with _mlflow_errors():
        for key, value in tags.items():
            client.set_model_version_tag(target.model_name, version, key, value)
        client.update_model_version(
            target.model_name, version, description=f"Gate {verdict}: {decision.reason}"[:5000]
        )
        client.log_dict(run_id, decision.to_dict(), "gate/decision.json")
        client.set_tag(run_id, GATE_TAG, tags[GATE_TAG])


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if _is_number(v) else None) for k, v in metrics.items()}
