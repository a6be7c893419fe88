"""MLflow tracking and model registry: log a run, register a version, gate, promote, load.

Conventions (MLflow 3 aliases, not stages):

- one registered model per environment (the caller names it, e.g.
  ``campaignopt-response-dev``), one experiment of the same name;
- every trained model is registered and gets the alias ``challenger``;
- the alias ``champion`` is what scorers load (``models:/NAME@champion``); each promotion
  appends the version to the registered model's tag ``champion_history`` so
  :func:`rollback` can restore the previous champion;
- each version carries tags: ``validation_status`` (``pending`` -> ``passed``/``failed``,
  ``promoted``, ``rolled_back``), the gate's reason, and its key validation metrics, so a
  listing needs no run lookups.

The model is logged with MLflow's xgboost flavour (an ``XGBClassifier``: scorers call
``predict_proba`` on the numpy feature matrix) and the fitted :class:`FeatureSpec` rides
in the model's MLmodel metadata, so the two can never be separated. This module never
reads project settings: the caller passes the tracking URI and artifact location.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ml.evaluate import Evaluation
from ml.features import FeatureSpec
from ml.scoring import ResponseModel
from ml.train import TrainResult, booster_feature_names

CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "champion_history"
STATUS_TAG = "validation_status"
QUALITY_METRIC = "auc"
MODEL_ARTIFACT = "model"
# Metrics copied onto each version as tags (prefix "val_"), shown by `model list`.
KEY_METRICS = ("auc", "log_loss", "brier", "top_decile_lift", "ope_dr_value", "ope_snips_value")
_HISTORY_KEEP = 100
_GATE_METRICS = ("log_loss", "auc", "ope_dr_value", "ope_snips_value")

# No network here and no wish to phone home: MLflow's telemetry stays off unless asked.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class RegistryUnavailable(RuntimeError):
    """The tracking/registry backend cannot be reached."""


class UnknownModelVersion(LookupError):
    """No such registered model or version."""


@dataclass(frozen=True)
class RegistryTarget:
    """Where runs and versions go.

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking and registry URI (e.g. ``postgresql+psycopg://.../mlflow``).
    model_name : str
        Registered model name, one per environment.
    artifact_location : str, optional
        Artifact root of the experiment (a folder path or URI), used when the experiment
        is created; ``None`` leaves MLflow's default.
    experiment_name : str, optional
        Default: ``model_name``.
    """

    tracking_uri: str
    model_name: str
    artifact_location: str | None = None
    experiment_name: str | None = None

    @property
    def experiment(self) -> str:
        return self.experiment_name or self.model_name


class RegisteredVersion(NamedTuple):
    run_id: str
    version: str
    model_uri: str


class Champion(NamedTuple):
    """What a scorer needs: the model (with its spec), its version and a quality in [0, 1].

    ``quality`` is the validation AUC (NaN when unknown): the confidence hybrid can lean
    on the model more when it ranks well (0.5 = no better than chance).
    """

    model: ResponseModel
    version: str
    quality: float


@dataclass(frozen=True)
class GateConfig:
    """When a challenger replaces the champion.

    Parameters
    ----------
    min_log_loss_gain : float
        The challenger's validation log loss must be at least this much lower than the
        champion's on the same window (0: no worse).
    min_value_gain : float
        The challenger's off-policy value (``value_metric``) must exceed the champion's by at
        least this much (0: no worse). Skipped when either value is unknown (no arms or
        no propensities on the window).
    value_metric : str
        ``ope_dr_value`` (doubly robust) or ``ope_snips_value``.
    auto_promote : bool
        False: the gate still runs and tags the version, but promotion is left to a person
        (``campaignopt model promote VERSION``).
    """

    min_log_loss_gain: float = 0.0
    min_value_gain: float = 0.0
    value_metric: str = "ope_dr_value"
    auto_promote: bool = True

    def __post_init__(self) -> None:
        if self.value_metric not in ("ope_dr_value", "ope_snips_value"):
            raise ValueError(
                f"value_metric must be ope_dr_value or ope_snips_value, got {self.value_metric!r}"
            )


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict, with the numbers it compared."""

    passed: bool
    reason: str
    champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "champion_version": self.champion_version,
            "challenger": _finite(self.challenger_metrics, _GATE_METRICS),
            "champion": _finite(self.champion_metrics or {}, _GATE_METRICS),
        }


# -- connecting --------------------------------------------------------------------------------


def client_for(tracking_uri: str):
    """An ``MlflowClient`` for tracking and registry at ``tracking_uri``."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(target: RegistryTarget) -> str:
    """The experiment id of ``target``, creating the experiment (with its artifact root) if new."""
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        experiment = client.get_experiment_by_name(target.experiment)
        if experiment is not None:
            return experiment.experiment_id
        location = target.artifact_location
        if location and "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
            location = Path(location).resolve().as_uri()
        return client.create_experiment(target.experiment, artifact_location=location)


# -- logging and registering --------------------------------------------------------------------


def log_and_register(
    target: RegistryTarget,
    result: TrainResult,
    evaluation: Evaluation,
    *,
    dataset: Mapping[str, object] | None = None,
    run_name: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> RegisteredVersion:
    """Log a run (params, metrics, charts, dataset facts, the model) and register a version.

    The new version gets the alias ``challenger`` and ``validation_status=pending``.

    Parameters
    ----------
    target : RegistryTarget
    result : TrainResult
        From :func:`ml.train.train_model`.
    evaluation : Evaluation
        From :func:`ml.evaluate.evaluate` on ``result.split.valid``.
    dataset : mapping, optional
        Facts about the training set (row count, date range, source table), logged as
        ``dataset.*`` params.
    run_name : str, optional
    extra_tags : mapping, optional
        More run tags (e.g. the Airflow run id).

    Returns
    -------
    RegisteredVersion
    """
    import mlflow
    import xgboost
    from mlflow.models import infer_signature

    experiment_id = ensure_experiment(target)
    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.tracking_uri)
    params = {f"train.{k}": v for k, v in result.config.to_params().items()}
    params.update({f"split.{k}": v for k, v in result.split.describe().items()})
    params["split.cutoff"] = str(result.split.cutoff)
    params.update({f"dataset.{k}": v for k, v in (dataset or {}).items()})
    params["features.n"] = result.spec.n_features
    metrics = {f"val_{k}": v for k, v in evaluation.metrics.items() if _is_number(v)}
    metrics.update({"best_iteration": float(result.best_iteration), "train_seconds": result.train_seconds})

    example = result.split.valid.head(5)
    example_x = pd.DataFrame(
        result.spec.transform(example), columns=booster_feature_names(result.spec.feature_names)
    )
    signature = infer_signature(example_x, result.model.predict_proba(example_x.to_numpy()))
    with _mlflow_errors(), mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({k: _param_value(v) for k, v in params.items()})
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"model_name": target.model_name, **(extra_tags or {})})
        with tempfile.TemporaryDirectory() as tmp:
            _write_tables(Path(tmp), result, evaluation)
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        for path in evaluation.charts.values():
            mlflow.log_artifact(str(path), artifact_path="charts")
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
        _tag_version(client, target.model_name, version, evaluation.metrics, status="pending")
        client.set_model_version_tag(target.model_name, version, "valid_window",
                                     f"{params['split.valid_date_from']}..{params['split.valid_date_to']}")
    return RegisteredVersion(run.info.run_id, version, f"models:/{target.model_name}/{version}")


# -- the gate ---------------------------------------------------------------------------------


def decide_promotion(
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    config: GateConfig,
    champion_version: str | None = None,
) -> GateDecision:
    """Compare a challenger with the champion measured on the same validation window.

    Without a champion the challenger passes. Otherwise it must beat the champion's log
    loss by ``min_log_loss_gain`` and its off-policy value by ``min_value_gain`` (the value
    test is skipped, and says so, when either value is unknown).
    """
    challenger = dict(challenger_metrics)
    if champion_metrics is None:
        return GateDecision(True, "no champion yet", None, challenger, None)
    champion = dict(champion_metrics)
    ll_gain = champion["log_loss"] - challenger["log_loss"]
    reasons = []
    passed = ll_gain >= config.min_log_loss_gain
    reasons.append(
        f"log loss {challenger['log_loss']:.5f} vs champion {champion['log_loss']:.5f} "
        f"(gain {ll_gain:+.5f}, need >= {config.min_log_loss_gain:+.5f})"
    )
    c_value, k_value = challenger.get(config.value_metric), champion.get(config.value_metric)
    if _is_number(c_value) and _is_number(k_value):
        value_gain = c_value - k_value
        passed = passed and value_gain >= config.min_value_gain
        reasons.append(
            f"{config.value_metric} {c_value:.5f} vs champion {k_value:.5f} "
            f"(gain {value_gain:+.5f}, need >= {config.min_value_gain:+.5f})"
        )
    else:
        reasons.append(f"{config.value_metric} unknown on this window: not compared")
    return GateDecision(passed, "; ".join(reasons), champion_version, challenger, champion)


def record_gate(target: RegistryTarget, version: str, decision: GateDecision) -> None:
    """Tag ``version`` with the gate's verdict (``validation_status`` passed/failed, reason)."""
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        client.set_model_version_tag(target.model_name, version, STATUS_TAG,
                                     "passed" if decision.passed else "failed")
        client.set_model_version_tag(target.model_name, version, "gate_reason", decision.reason[:4000])
        if decision.champion_version:
            client.set_model_version_tag(target.model_name, version, "gate_champion_version",
                                         decision.champion_version)


# -- aliases: promote and roll back -------------------------------------------------------------


def champion_version(target: RegistryTarget) -> str | None:
    """The version holding the ``champion`` alias, or None (also when the model is unknown)."""
    aliases = _aliases(target)
    return aliases.get(CHAMPION)


def promote(target: RegistryTarget, version: str) -> str | None:
    """Make ``version`` the champion; returns the previous champion version (or None).

    Raises
    ------
    UnknownModelVersion
        When the version does not exist.
    """
    version = str(version)
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        _get_version(client, target.model_name, version)
        previous = champion_version(target)
        history = _history(client, target.model_name)
        if previous and (not history or history[-1] != previous):
            history.append(previous)  # a champion set by hand (e.g. in the UI) joins the history
        client.set_registered_model_alias(target.model_name, CHAMPION, version)
        if not history or history[-1] != version:
            history.append(version)
        _set_history(client, target.model_name, history)
        client.set_model_version_tag(target.model_name, version, STATUS_TAG, "promoted")
    return previous


def rollback(target: RegistryTarget) -> tuple[str, str]:
    """Give the ``champion`` alias back to the previous champion.

    Returns
    -------
    (from_version, to_version)

    Raises
    ------
    UnknownModelVersion
        When there is no champion or no earlier champion to return to.
    """
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        current = champion_version(target)
        if current is None:
            raise UnknownModelVersion(f"model {target.model_name!r} has no champion to roll back")
        history = _history(client, target.model_name)
        while history and history[-1] == current:
            history.pop()
        if not history:
            raise UnknownModelVersion(
                f"model {target.model_name!r}: no earlier champion than version {current} to roll back to"
            )
        previous = history[-1]
        client.set_registered_model_alias(target.model_name, CHAMPION, previous)
        _set_history(client, target.model_name, history)
        client.set_model_version_tag(target.model_name, current, STATUS_TAG, "rolled_back")
    return current, previous


# -- reading ---------------------------------------------------------------------------------


def list_versions(target: RegistryTarget) -> list[dict[str, object]]:
    """Every version of the model, newest first: version, aliases, status, key metrics, run id."""
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        try:
            aliases = client.get_registered_model(target.model_name).aliases
        except Exception as exc:
            if _is_missing(exc):
                return []
            raise
        versions = client.search_model_versions(f"name = '{target.model_name}'")
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = mv.tags or {}
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(by_version.get(str(mv.version), [])),
                "status": tags.get(STATUS_TAG, ""),
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC").isoformat(),
                "run_id": mv.run_id,
                "valid_window": tags.get("valid_window", ""),
                "metrics": {k: _float(tags.get(f"val_{k}")) for k in KEY_METRICS},
            }
        )
    return rows


def load_version(target: RegistryTarget, version: str) -> tuple[ResponseModel, dict[str, str]]:
    """Load a registered version as a :class:`ResponseModel`, with the version's tags."""
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        mv = _get_version(client, target.model_name, str(version))
        model = _load_model(target.tracking_uri, f"models:/{target.model_name}/{mv.version}")
    return model, dict(mv.tags or {})


def load_champion(name: str, *, tracking_uri: str) -> Champion | None:
    """The champion of registered model ``name`` (``models:/NAME@champion``), or None.

    Returns
    -------
    Champion or None
        ``(model, version, quality)``: a :class:`ResponseModel` (classifier + feature spec,
        ready for :meth:`ResponseModel.score_matrix`), the version string, and the
        validation AUC. None when the model or its champion alias does not exist.
    """
    target = RegistryTarget(tracking_uri=tracking_uri, model_name=name)
    version = champion_version(target)
    if version is None:
        return None
    model, tags = load_version(target, version)
    return Champion(model=model, version=version, quality=_float(tags.get(f"val_{QUALITY_METRIC}")))


# -- helpers ---------------------------------------------------------------------------------


def _load_model(tracking_uri: str, model_uri: str) -> ResponseModel:
    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        metadata = Model.load(local).metadata or {}
        if "feature_spec" not in metadata:
            raise UnknownModelVersion(f"{model_uri} has no feature_spec metadata: not a campaignopt model")
        classifier = mlflow.xgboost.load_model(local)
    return ResponseModel(classifier=classifier, spec=FeatureSpec.from_dict(metadata["feature_spec"]))


def _aliases(target: RegistryTarget) -> dict[str, str]:
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        try:
            model = client.get_registered_model(target.model_name)
        except Exception as exc:
            if _is_missing(exc):
                return {}
            raise
    return {alias: str(version) for alias, version in model.aliases.items()}


def _get_version(client, name: str, version: str):
    try:
        return client.get_model_version(name, version)
    except Exception as exc:
        if _is_missing(exc) or _is_bad_value(exc):
            raise UnknownModelVersion(f"model {name!r} has no version {version!r}") from None
        raise


def _history(client, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags or {}
    raw = tags.get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def _set_history(client, name: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[-_HISTORY_KEEP:]))


def _tag_version(client, name: str, version: str, metrics: Mapping[str, float], status: str) -> None:
    client.set_model_version_tag(name, version, STATUS_TAG, status)
    for key in KEY_METRICS:
        value = metrics.get(key)
        if _is_number(value):
            client.set_model_version_tag(name, version, f"val_{key}", f"{value:.6g}")


def _write_tables(folder: Path, result: TrainResult, evaluation: Evaluation) -> None:
    evaluation.calibration.to_csv(folder / "calibration.csv", index=False)
    evaluation.lift.to_csv(folder / "lift_gain.csv", index=False)
    evaluation.importance.to_csv(folder / "feature_importance.csv", index=False)
    (folder / "metrics.json").write_text(json.dumps(_finite(evaluation.metrics), indent=2, sort_keys=True))
    (folder / "feature_spec.json").write_text(json.dumps(result.spec.to_dict(), indent=2))


class _mlflow_errors:
    """Turn MLflow/database connection failures into :class:`RegistryUnavailable`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, (UnknownModelVersion, RegistryUnavailable)):
            return False
        if _is_connection_error(exc):
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RegistryUnavailable(f"MLflow registry unreachable: {first_line}") from exc
        return False


def _is_connection_error(exc: BaseException) -> bool:
    import sqlalchemy.exc

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (sqlalchemy.exc.OperationalError, ConnectionError)):
            return True
        text = str(seen).lower()
        if "connection refused" in text or "could not connect" in text or "max retries exceeded" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_missing(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _is_bad_value(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _finite(metrics: Mapping[str, float], keys: tuple[str, ...] | None = None) -> dict[str, float | None]:
    keys = keys or tuple(metrics)
    return {k: (float(metrics[k]) if _is_number(metrics.get(k)) else None) for k in keys}


def _param_value(value: object) -> object:
    return "None" if value is None else value
