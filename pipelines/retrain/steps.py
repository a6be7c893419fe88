"""The retraining steps up to the registered challenger, handed over through one MLflow run.

1. :func:`build_training_set` — read the mart (and arms), check there is enough matured data;
   ``status="skipped"`` with a reason (and no MLflow run) when there is too little; else
   create the run and log the snapshot to it. Returns the run id.
2. :func:`train_step` — time split, fit :class:`ml.features.FeatureSpec` and XGBoost.
3. :func:`evaluate_step` — metrics, PNG charts, off-policy value on the validation days.
4. :func:`register_step` — log the model into the run; a version with alias ``challenger``.

Each step takes the run id only: it downloads its inputs from the run's ``handover/``
artifacts into a temporary folder and logs its outputs back (:mod:`ml.tracking`), so the
steps may run on different machines. Steps 5 and 6 are in :mod:`pipelines.retrain.gate`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ml import tracking
from ml.evaluate import evaluate
from ml.registry import RegistryTarget
from ml.scoring import ResponseModel
from ml.train import TrainResult, split_by_time, train_model, training_rows
from pipelines.db import get_engine
from pipelines.extra_features import configured_extra_features, deployment_feature_spec
from pipelines.retrain.config import RetrainConfig, registry_target
from pipelines.retrain.data import TRAINING_EXAMPLES_TABLE, enough_data, load_arms, load_training_examples
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

SKIPPED = "skipped"
READY = "ready"

SNAPSHOT = ["config.json", "dataset.json", "examples.parquet", "arms.parquet"]
TRAINED = ["model.ubj", "feature_spec.json", "train.json"]


# -- step 1: the training set ----------------------------------------------------------------


def build_training_set(
    *,
    settings: Settings | None = None,
    config: RetrainConfig | Mapping[str, object] | None = None,
    as_of: dt.date | str | None = None,
    examples: pd.DataFrame | None = None,
    arms: pd.DataFrame | None = None,
    run_tags: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Step 1: snapshot the training examples and arms into a new MLflow run, or skip.

    Parameters
    ----------
    settings : Settings, optional
    config : RetrainConfig or mapping, optional
        Logged to the run for the later steps.
    as_of : date, optional
        Logical date: only decisions up to it (re-running a date gives the same data).
    examples, arms : DataFrame, optional
        Use these instead of reading the database (tests, notebooks).
    run_tags : mapping, optional
        More run tags (e.g. the Airflow run id).

    Returns
    -------
    dict
        ``status`` (``ready`` or ``skipped``), ``reason``, ``rows``, ``days``, ``date_from``,
        ``date_to``, ``as_of`` and ``run_id`` (None when skipped: MLflow is not touched).
    """
    config = as_config(config)
    as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    if examples is None:
        engine = get_engine(settings)
        examples = load_training_examples(engine, as_of=as_of, lookback_days=config.lookback_days)
        if arms is None and not examples.empty:
            arms = load_arms(engine, sorted(examples["campaign_id"].dropna().unique().tolist()))
    summary: dict[str, object] = {"rows": len(examples), "as_of": str(as_of or ""), "run_id": None}
    reason = enough_data(examples, config)
    if reason is not None:
        summary.update(status=SKIPPED, reason=reason, days=0, date_from=None, date_to=None)
        log.info("retraining skipped: %s", reason)
        return summary
    dates = pd.to_datetime(examples["decision_date"])
    summary.update(
        status=READY,
        reason="",
        days=int(dates.dt.normalize().nunique()),
        date_from=str(dates.min().date()),
        date_to=str(dates.max().date()),
        source=TRAINING_EXAMPLES_TABLE,
    )
    target = target_for(settings)
    run_id = tracking.start_run(
        target, run_name=f"retrain-{summary['as_of'] or summary['date_to']}", tags=run_tags
    )
    summary["run_id"] = run_id
    with tempfile.TemporaryDirectory(prefix="campaignopt-retrain-") as tmp:
        work = Path(tmp)
        write_json(work / "config.json", config.to_dict())
        write_json(work / "dataset.json", summary)
        examples.to_parquet(work / "examples.parquet", index=False)
        (arms if arms is not None else pd.DataFrame()).to_parquet(work / "arms.parquet", index=False)
        tracking.put_files(target, run_id, work, SNAPSHOT)
    tracking.log_params(
        target,
        run_id,
        {f"dataset.{k}": summary.get(k) for k in ("source", "rows", "days", "date_from", "date_to", "as_of")},
    )
    return summary


# -- step 2: train -----------------------------------------------------------------------------


def train_step(run_id: str, *, settings: Settings | None = None) -> dict[str, object]:
    """Step 2: train on the run's snapshot; logs the model files, params and training time."""
    target = target_for(settings)
    with tracking.step_folder(target, run_id, ["config.json", "examples.parquet"]) as work:
        config = read_config(work)
        # The deployment's feature columns, its CUSTOMER_EXTRA_FEATURES included.
        result = train_model(
            pd.read_parquet(work / "examples.parquet"),
            config.train,
            spec=deployment_feature_spec(configured_extra_features(settings)),
        )
        result.model.save_model(work / "model.ubj")
        (work / "feature_spec.json").write_text(result.spec.to_json())
        info = {
            "best_iteration": result.best_iteration,
            "train_seconds": round(result.train_seconds, 3),
            "cutoff": str(result.split.cutoff),
            "n_features": result.spec.n_features,
            **result.split.describe(),
        }
        write_json(work / "train.json", info)
        tracking.put_files(target, run_id, work, TRAINED)
        tracking.log_training(target, run_id, result)
    return {"run_id": run_id, **info}


# -- step 3: evaluate --------------------------------------------------------------------------


def evaluate_step(run_id: str, *, settings: Settings | None = None) -> dict[str, object]:
    """Step 3: metrics, charts and off-policy value on the validation days; key metrics back."""
    target = target_for(settings)
    needs = ["config.json", "examples.parquet", "arms.parquet", *TRAINED]
    with tracking.step_folder(target, run_id, needs) as work:
        result = load_train_result(work)
        evaluation = evaluate(
            ResponseModel(result.model, result.spec),
            result.split.valid,
            arms=read_arms(work),
            label=result.config.label,
            out_dir=work / "charts",
        )
        write_json(work / "metrics.json", evaluation.metrics)
        tracking.put_files(target, run_id, work, ["metrics.json"])
        tracking.log_evaluation(target, run_id, result, evaluation)
    return {"run_id": run_id, **key_metrics(evaluation.metrics)}


# -- step 4: register --------------------------------------------------------------------------


def register_step(run_id: str, *, settings: Settings | None = None) -> dict[str, str]:
    """Step 4: log the model into the run and register a version (alias ``challenger``)."""
    target = target_for(settings)
    needs = ["config.json", "examples.parquet", "metrics.json", *TRAINED]
    with tracking.step_folder(target, run_id, needs) as work:
        result = load_train_result(work)
        metrics = json.loads((work / "metrics.json").read_text())
        registered = tracking.register_run_model(target, run_id, result, metrics)
        info = {
            "run_id": run_id,
            "version": registered.version,
            "model_uri": registered.model_uri,
            "model_name": target.model_name,
        }
        write_json(work / "registered.json", info)
        tracking.put_files(target, run_id, work, ["registered.json"])
    return info


# -- helpers shared with the gate ---------------------------------------------------------------


def as_config(config: RetrainConfig | Mapping[str, object] | None) -> RetrainConfig:
    if isinstance(config, RetrainConfig):
        return config
    return RetrainConfig.from_mapping(config)


def read_config(work: Path) -> RetrainConfig:
    return RetrainConfig.from_mapping(json.loads((work / "config.json").read_text()))


def read_arms(work: Path) -> pd.DataFrame | None:
    arms = pd.read_parquet(work / "arms.parquet")
    return arms if len(arms) else None


def validation_rows(work: Path, config: RetrainConfig) -> pd.DataFrame:
    """The validation days of the snapshot (the split is deterministic: recomputed, not stored)."""
    examples = pd.read_parquet(work / "examples.parquet")
    return split_by_time(training_rows(examples, config.train), config.train).valid


def load_train_result(work: Path) -> TrainResult:
    """Rebuild the training result from the handed-over files (the split is recomputed)."""
    from xgboost import XGBClassifier

    from ml.features import FeatureSpec

    config = read_config(work)
    info = json.loads((work / "train.json").read_text())
    model = XGBClassifier()
    model.load_model(work / "model.ubj")
    examples = pd.read_parquet(work / "examples.parquet")
    return TrainResult(
        model=model,
        spec=FeatureSpec.from_json((work / "feature_spec.json").read_text()),
        config=config.train,
        split=split_by_time(training_rows(examples, config.train), config.train),
        best_iteration=int(info["best_iteration"]),
        train_seconds=float(info["train_seconds"]),
    )


def key_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    keys = (
        "auc",
        "log_loss",
        "brier",
        "ece",
        "top_decile_lift",
        "ope_dr_value",
        "ope_dr_ci_low",
        "ope_dr_ci_high",
        "ope_snips_value",
        "ope_logged_value",
    )
    out = {}
    for key in keys:
        value = metrics.get(key)
        out[key] = round(float(value), 6) if value is not None and pd.notna(value) else None
    return out


def write_json(path: Path, data: Mapping[str, object]) -> None:
    """JSON with NaN written as null (strict JSON readers reject NaN)."""

    def clean(value):
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items()}
        return value

    path.write_text(json.dumps(clean(dict(data)), indent=2, sort_keys=True, default=str))


def target_for(settings: Settings | None) -> RegistryTarget:
    return registry_target(settings or get_settings())
