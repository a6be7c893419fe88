"""MLflow model registry: aliases, promote and roll back (with who, when, why), list, load.

Conventions (MLflow 3 aliases, not stages):

- one registered model per environment (the caller names it, e.g.
  ``campaignopt-response-dev``), one experiment of the same name;
- every trained model is registered and gets the alias ``challenger``;
- the alias ``champion`` is what scorers load (``models:/NAME@champion``); each promotion
  appends the version to the registered model's tag ``champion_history`` so
  :func:`rollback` can restore the previous champion;
- each version carries tags: ``validation_status`` (``pending`` -> ``passed``/``failed``,
  ``promoted``, ``rolled_back``), the gate's verdict (``gate_passed``, its reason and
  intervals, see :mod:`ml.tracking`), its key validation metrics, and the audit of every
  promotion and rollback (``promoted_by``/``_at``/``_reason``, ``rolled_back_by``/...), so
  a listing needs no run lookups;
- a version the gate refused (or never judged) becomes champion only with ``force=True``.

The model is logged with MLflow's xgboost flavour (an ``XGBClassifier``: scorers call
``predict_proba`` on the numpy feature matrix) and the fitted :class:`FeatureSpec` rides
in the model's MLmodel metadata, so the two can never be separated. This module never
reads project settings: the caller passes the tracking URI and artifact location.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ml.features import FeatureSpec
from ml.scoring import ResponseModel

CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "champion_history"
STATUS_TAG = "validation_status"
QUALITY_METRIC = "auc"
MODEL_ARTIFACT = "model"
# Metrics copied onto each version as tags (prefix "val_"), shown by `model list`.
KEY_METRICS = ("auc", "log_loss", "brier", "top_decile_lift", "ope_dr_value", "ope_snips_value")
_HISTORY_KEEP = 100
GATE_TAG = "gate_passed"
# Audit tags written by promote/rollback, shown by `model list --json`.
AUDIT_TAGS = (
    "promoted_by", "promoted_at", "promote_reason", "promote_forced",
    "rolled_back_by", "rolled_back_at", "rollback_reason",
    "restored_by", "restored_at", "restore_reason",
)

# No network here and no wish to phone home: MLflow's telemetry stays off unless asked.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class RegistryUnavailable(RuntimeError):
    """The tracking/registry backend cannot be reached."""


class UnknownModelVersion(LookupError):
    """No such registered model or version."""


class ModelUnavailable(RuntimeError):
    """The version exists but its artifact cannot be loaded (deleted, truncated, corrupt)."""


class GateRefused(ValueError):
    """Promoting a version the gate refused (or never judged) without ``force``."""


@dataclass(frozen=True)
class Actor:
    """Who changes the champion, and why (recorded on the version with the time)."""

    by: str
    reason: str = ""


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


# -- aliases: promote and roll back -------------------------------------------------------------


def champion_version(target: RegistryTarget) -> str | None:
    """The version holding the ``champion`` alias, or None (also when the model is unknown)."""
    aliases = _aliases(target)
    return aliases.get(CHAMPION)


def promote(
    target: RegistryTarget, version: str, *, actor: Actor | None = None, force: bool = False
) -> str | None:
    """Make ``version`` the champion; returns the previous champion version (or None).

    Parameters
    ----------
    actor : Actor, optional
        Who promotes and why; recorded as ``promoted_by``/``promoted_at``/``promote_reason``.
    force : bool
        Promote even when the gate refused the version (or never judged it); recorded as
        ``promote_forced``.

    Raises
    ------
    UnknownModelVersion
        When the version does not exist.
    GateRefused
        When the gate did not pass the version and ``force`` is False.
    """
    version = str(version)
    client = client_for(target.tracking_uri)
    with _mlflow_errors():
        mv = _get_version(client, target.model_name, version)
        verdict = (mv.tags or {}).get(GATE_TAG)
        if verdict != "true" and not force:
            why = (mv.tags or {}).get("gate_reason", "") if verdict == "false" else "the gate never judged it"
            raise GateRefused(
                f"version {version} of {target.model_name} was not passed by the gate ({why[:300]}); "
                "add --force (and --reason) to promote it anyway"
            )
        previous = champion_version(target)
        history = _history(client, target.model_name)
        if previous and (not history or history[-1] != previous):
            history.append(previous)  # a champion set by hand (e.g. in the UI) joins the history
        client.set_registered_model_alias(target.model_name, CHAMPION, version)
        if not history or history[-1] != version:
            history.append(version)
        _set_history(client, target.model_name, history)
        client.set_model_version_tag(target.model_name, version, STATUS_TAG, "promoted")
        _audit(client, target.model_name, version, "promoted", "promote", actor)
        client.set_model_version_tag(target.model_name, version, "promote_forced",
                                     "true" if force and verdict != "true" else "false")
    return previous


def rollback(target: RegistryTarget, *, actor: Actor | None = None) -> tuple[str, str]:
    """Give the ``champion`` alias back to the previous champion.

    The version left gets ``rolled_back_by``/``_at``/``rollback_reason``, the one restored
    ``restored_by``/``_at``/``restore_reason``.

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
        _audit(client, target.model_name, current, "rolled_back", "rollback", actor)
        client.set_model_version_tag(target.model_name, previous, STATUS_TAG, "promoted")
        _audit(client, target.model_name, previous, "restored", "restore", actor)
    return current, previous


def _audit(client, name: str, version: str, done: str, verb: str, actor: Actor | None) -> None:
    actor = actor or Actor(by="unknown")
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(name, version, f"{done}_by", actor.by[:250])
    client.set_model_version_tag(name, version, f"{done}_at", when)
    client.set_model_version_tag(name, version, f"{verb}_reason", actor.reason[:4000])


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
                "gate": {
                    "passed": {"true": True, "false": False}.get(tags.get(GATE_TAG, "")),
                    "reason": tags.get("gate_reason", ""),
                    "champion_version": tags.get("gate_champion_version") or None,
                    "auc_low": _float(tags.get("gate_challenger_auc_low")),
                    "log_loss_gain_low": _float(tags.get("gate_log_loss_gain_low")),
                },
                "audit": {k: tags[k] for k in AUDIT_TAGS if k in tags},
                "description": mv.description or "",
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
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
            metadata = Model.load(local).metadata or {}
            if "feature_spec" not in metadata:
                raise ModelUnavailable(f"{model_uri} has no feature_spec metadata: not a campaignopt model")
            classifier = mlflow.xgboost.load_model(local)
            spec = FeatureSpec.from_dict(metadata["feature_spec"])
        except ModelUnavailable:
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                raise  # the registry is down: _mlflow_errors says so
            # A deleted, truncated or corrupt artifact: the version exists, its model does not load.
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ModelUnavailable(f"{model_uri} cannot be loaded: {type(exc).__name__}: {first}") from exc
    return ResponseModel(classifier=classifier, spec=spec)


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


_OWN_ERRORS = (UnknownModelVersion, RegistryUnavailable, ModelUnavailable, GateRefused)


class _mlflow_errors:
    """Turn MLflow/database connection failures into :class:`RegistryUnavailable`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, _OWN_ERRORS):
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
