"""Retrain the response model from the training_examples mart, register it, gate it, promote it.

Six steps, each one function, so the retraining DAG can run them as separate tasks and
the CLI (``campaignopt model retrain``) or a test can run them all with :func:`retrain`:

1. :func:`build_training_set` — read ``analytics.training_examples`` (and the campaigns'
   arms), check there is enough matured data, write a snapshot to the work folder;
   returns ``status="skipped"`` with a reason, not an exception, when there is too little.
2. :func:`train_step` — time split, fit :class:`ml.features.FeatureSpec` and XGBoost.
3. :func:`evaluate_step` — metrics, PNG charts, off-policy value on the validation days.
4. :func:`register_step` — MLflow run + registered version with alias ``challenger``.
5. :func:`gate_step` — evaluate the champion on the same validation days and compare.
6. :func:`promote_step` — move alias ``champion`` when the gate passed (and auto-promotion
   is on).

Steps hand each other a work folder (XCom carries its path, never data): snapshot
parquet, model, evaluation, and a JSON file per step. MLflow lives by default in a
database ``mlflow`` on the project's PostgreSQL (created when missing), artifacts under
``<home>/mlartifacts``; ``MLFLOW_TRACKING_URI`` overrides.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ml.evaluate import Evaluation, evaluate
from ml.features import ARM_COLUMNS
from ml.registry import (
    GateConfig,
    RegistryTarget,
    RegistryUnavailable,
    UnknownModelVersion,
    champion_version,
    decide_promotion,
    load_champion,
    load_version,
    log_and_register,
    promote,
    record_gate,
)
from ml.scoring import ResponseModel
from ml.train import TrainConfig, TrainResult, split_by_time, train_model, training_rows
from pipelines.db import check_connection, database_url, get_engine, normalize_url
from pipelines.errors import NotFound, ServiceUnavailable
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

TRAINING_EXAMPLES_TABLE = "analytics.training_examples"
MLFLOW_DATABASE = "mlflow"

SKIPPED = "skipped"
READY = "ready"


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainConfig:
    """What a retraining run needs besides the settings.

    Parameters
    ----------
    min_examples : int
        Fewest matured treatment examples worth training on; fewer -> skipped.
    min_days : int
        Fewest distinct decision dates (the time split needs at least 2).
    lookback_days : int or None
        Train on decisions of the last this many days up to ``as_of``; None: all.
    train : TrainConfig
    gate : GateConfig
    """

    min_examples: int = 1_000
    min_days: int = 3
    lookback_days: int | None = 180
    train: TrainConfig = field(default_factory=TrainConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        if self.min_examples < 2:
            raise ValueError(f"min_examples must be >= 2, got {self.min_examples}")
        if self.min_days < 2:
            raise ValueError(f"min_days must be >= 2 (a time split needs two dates), got {self.min_days}")
        if self.lookback_days is not None and self.lookback_days < self.min_days:
            raise ValueError(f"lookback_days must be >= min_days, got {self.lookback_days}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> RetrainConfig:
        """Build from a flat or nested mapping (e.g. Airflow params); unknown keys are an error.

        Flat keys of :class:`TrainConfig` and :class:`GateConfig` (``auto_promote``,
        ``validation_days``, ...) are accepted next to the nested ``train``/``gate`` dicts.
        """
        data = dict(data or {})
        train_names = {f.name for f in fields(TrainConfig)}
        gate_names = {f.name for f in fields(GateConfig)}
        own_names = {f.name for f in fields(cls)} - {"train", "gate"}
        train = dict(data.pop("train", None) or {})
        gate = dict(data.pop("gate", None) or {})
        own = {}
        for key, value in data.items():
            if key in own_names:
                own[key] = value
            elif key in train_names:
                train[key] = value
            elif key in gate_names:
                gate[key] = value
            else:
                raise ValueError(f"unknown retraining option {key!r}")
        return cls(train=TrainConfig(**train), gate=GateConfig(**gate), **own)


def model_name(settings: Settings | None = None) -> str:
    """The registered model name of this environment."""
    settings = settings or get_settings()
    return f"campaignopt-response-{settings.campaignopt_env}"


def artifact_root(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.home / "mlartifacts"


def tracking_uri(settings: Settings | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set; else the ``mlflow`` database next to the project's database."""
    settings = settings or get_settings()
    if settings.mlflow_tracking_uri:
        uri = settings.mlflow_tracking_uri
        return normalize_url(uri) if uri.startswith(("postgres", "postgresql")) else uri
    url = make_url(database_url(settings)).set(database=MLFLOW_DATABASE)
    return url.render_as_string(hide_password=False)


def mlflow_ui_command(settings: Settings | None = None) -> str:
    """The command that serves the MLflow UI on this environment's runs and models."""
    settings = settings or get_settings()
    uri = tracking_uri(settings)
    if uri.startswith(("http://", "https://")):
        return f"open {uri} (an MLflow server already serves the UI)"
    note = ""
    if uri.startswith("postgresql") and make_url(uri).password:
        # Never print a password: psycopg reads it from PGPASSWORD when the URL has none.
        uri = make_url(uri)._replace(password=None).render_as_string(hide_password=False)
        note = "PGPASSWORD=... "
    return (
        f"{note}mlflow ui --backend-store-uri '{uri}' --default-artifact-root '{artifact_root(settings)}' "
        "--host 127.0.0.1 --port 5000 --workers 1"
    )


def registry_target(settings: Settings | None = None) -> RegistryTarget:
    """Where runs and models go, with the tracking database created and reachable.

    Raises
    ------
    ServiceUnavailable
        When the tracking backend cannot be reached (one line).
    """
    settings = settings or get_settings()
    uri = tracking_uri(settings)
    ensure_tracking_backend(uri)
    remote = uri.startswith(("http://", "https://"))
    return RegistryTarget(
        tracking_uri=uri,
        model_name=model_name(settings),
        artifact_location=None if remote else str(artifact_root(settings)),
    )


def ensure_tracking_backend(uri: str) -> None:
    """Check the tracking backend answers; create a missing PostgreSQL database for it."""
    if uri.startswith(("http://", "https://")):
        _check_http(uri)
    elif uri.startswith("postgresql"):
        _ensure_postgres_database(uri)


@lru_cache
def _ensure_postgres_database(uri: str) -> None:
    url = make_url(uri)
    # Connect to the server's maintenance database to look for (and create) ours.
    admin = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        check_connection(admin)
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("select 1 from pg_database where datname = :n"), {"n": url.database}
            ).scalar()
            if not exists:
                log.info("creating the MLflow tracking database %s", url.database)
                conn.execute(sa.text(f'create database "{url.database}"'))
    except sa.exc.ProgrammingError as exc:
        raise ServiceUnavailable(
            f"cannot create the MLflow database {url.database!r}: {str(exc.orig).splitlines()[0]}"
        ) from None
    finally:
        admin.dispose()


def _check_http(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the MLflow server at {uri}: {exc}") from None


# -- step 1: the training set ----------------------------------------------------------------


def load_training_examples(
    engine: sa.Engine, *, as_of: dt.date | None = None, lookback_days: int | None = None
) -> pd.DataFrame:
    """Rows of ``analytics.training_examples`` with ``decision_date <= as_of`` in the lookback window.

    An empty frame when the mart does not exist yet (dbt has not built it).
    """
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass(:t)"), {"t": TRAINING_EXAMPLES_TABLE}).scalar() is None:
            return pd.DataFrame()
        clauses, params = [], {}
        if as_of is not None:
            clauses.append("decision_date <= :as_of")
            params["as_of"] = as_of
            if lookback_days is not None:
                clauses.append("decision_date > :since")
                params["since"] = as_of - dt.timedelta(days=lookback_days)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        query = f"select * from {TRAINING_EXAMPLES_TABLE} {where} order by decision_date, decision_id"
        return pd.read_sql(sa.text(query), conn, params=params)


def load_arms(engine: sa.Engine, campaign_ids: list[int]) -> pd.DataFrame:
    """Active arms of the campaigns, parameters exploded to columns (as ``stg_ops__arms`` does)."""
    columns = ["arm_id", "campaign_id", *ARM_COLUMNS]
    if not campaign_ids:
        return pd.DataFrame(columns=columns)
    query = sa.text(
        """
        select arm_id, campaign_id,
               params ->> 'offer_type' as offer_type,
               params ->> 'discount' as discount,
               coalesce(params ->> 'channel', channel) as channel,
               params ->> 'time_of_day' as time_of_day,
               params ->> 'day_of_week' as day_of_week,
               params ->> 'cta' as cta
        from ops.arms
        where active and campaign_id = any(:ids)
        order by campaign_id, arm_id
        """
    )
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('ops.arms')")).scalar() is None:
            return pd.DataFrame(columns=columns)  # no arms table: the off-policy estimate is skipped
        return pd.read_sql(query, conn, params={"ids": [int(c) for c in campaign_ids]})


def enough_data(examples: pd.DataFrame, config: RetrainConfig) -> str | None:
    """None when ``examples`` can train a model, else the reason it cannot."""
    if examples.empty:
        return f"{TRAINING_EXAMPLES_TABLE} holds no matured examples"
    rows = training_rows(examples, config.train)
    if len(rows) < config.min_examples:
        return f"{len(rows)} matured treatment examples, fewer than min_examples={config.min_examples}"
    n_days = pd.to_datetime(rows["decision_date"]).dt.normalize().nunique()
    if n_days < config.min_days:
        return f"examples span {n_days} decision date(s), fewer than min_days={config.min_days}"
    if rows[config.train.label].nunique() < 2:
        return f"every example has the same {config.train.label!r}: nothing to learn"
    return None


def build_training_set(
    work_dir: str | Path,
    *,
    settings: Settings | None = None,
    config: RetrainConfig | Mapping[str, object] | None = None,
    as_of: dt.date | str | None = None,
    examples: pd.DataFrame | None = None,
    arms: pd.DataFrame | None = None,
) -> dict[str, object]:
    """Step 1: snapshot the training examples and arms into ``work_dir``, or skip.

    Parameters
    ----------
    work_dir : path
        Folder of this run (created).
    settings : Settings, optional
    config : RetrainConfig or mapping, optional
        Saved to ``work_dir/config.json`` for the later steps.
    as_of : date, optional
        Logical date: only decisions up to it (re-running a date gives the same data).
    examples, arms : DataFrame, optional
        Use these instead of reading the database (tests, notebooks).

    Returns
    -------
    dict
        ``status`` (``ready`` or ``skipped``), ``reason``, ``rows``, ``days``,
        ``date_from``, ``date_to``, ``work_dir``.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    config = _as_config(config)
    as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    if examples is None:
        engine = get_engine(settings)
        examples = load_training_examples(engine, as_of=as_of, lookback_days=config.lookback_days)
        if arms is None and not examples.empty:
            arms = load_arms(engine, sorted(examples["campaign_id"].dropna().unique().tolist()))
    _write_json(work / "config.json", config.to_dict())
    summary: dict[str, object] = {"work_dir": str(work), "rows": len(examples), "as_of": str(as_of or "")}
    reason = enough_data(examples, config)
    if reason is not None:
        summary.update(status=SKIPPED, reason=reason, days=0, date_from=None, date_to=None)
        _write_json(work / "dataset.json", summary)
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
    examples.to_parquet(work / "examples.parquet", index=False)
    (arms if arms is not None else pd.DataFrame()).to_parquet(work / "arms.parquet", index=False)
    _write_json(work / "dataset.json", summary)
    return summary


# -- step 2: train -----------------------------------------------------------------------------


def train_step(work_dir: str | Path) -> dict[str, object]:
    """Step 2: train on the snapshot; saves ``model.ubj`` and ``train.json``."""
    work = Path(work_dir)
    config = _read_config(work)
    result = train_model(_read_examples(work), config.train)
    result.model.save_model(work / "model.ubj")
    (work / "feature_spec.json").write_text(result.spec.to_json())
    info = {
        "best_iteration": result.best_iteration,
        "train_seconds": round(result.train_seconds, 3),
        "cutoff": str(result.split.cutoff),
        "n_features": result.spec.n_features,
        **result.split.describe(),
    }
    _write_json(work / "train.json", info)
    return info


# -- step 3: evaluate --------------------------------------------------------------------------


def evaluate_step(work_dir: str | Path) -> dict[str, float | None]:
    """Step 3: metrics, charts and off-policy value on the validation days; key metrics back."""
    work = Path(work_dir)
    result = _load_train_result(work)
    evaluation = evaluate(
        ResponseModel(result.model, result.spec),
        result.split.valid,
        arms=_read_arms(work),
        label=result.config.label,
        out_dir=work / "evaluation",
    )
    _save_evaluation(work / "evaluation", evaluation)
    return _key_metrics(evaluation.metrics)


# -- step 4: register --------------------------------------------------------------------------


def register_step(
    work_dir: str | Path, *, settings: Settings | None = None, run_tags: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Step 4: log the MLflow run and register a version (alias ``challenger``)."""
    work = Path(work_dir)
    target = _target(settings)
    result = _load_train_result(work)
    evaluation = _load_evaluation(work / "evaluation")
    dataset = json.loads((work / "dataset.json").read_text())
    registered = log_and_register(
        target,
        result,
        evaluation,
        dataset={k: dataset.get(k) for k in ("source", "rows", "days", "date_from", "date_to", "as_of")},
        run_name=f"retrain-{dataset.get('as_of') or dataset.get('date_to')}",
        extra_tags=run_tags,
    )
    info = {
        "run_id": registered.run_id,
        "version": registered.version,
        "model_uri": registered.model_uri,
        "model_name": target.model_name,
    }
    _write_json(work / "registered.json", info)
    return info


# -- step 5: gate ------------------------------------------------------------------------------


def gate_step(work_dir: str | Path, *, settings: Settings | None = None) -> dict[str, object]:
    """Step 5: compare the challenger with the champion on the same validation days; tag the verdict."""
    work = Path(work_dir)
    config = _read_config(work)
    target = _target(settings)
    version = json.loads((work / "registered.json").read_text())["version"]
    challenger_metrics = json.loads((work / "evaluation" / "metrics.json").read_text())
    current = champion_version(target)
    champion_metrics = None
    if current is not None and current != version:
        champion, _ = load_version(target, current)
        split = split_by_time(training_rows(_read_examples(work), config.train), config.train)
        champion_metrics = evaluate(
            champion, split.valid, arms=_read_arms(work), label=config.train.label
        ).metrics
    decision = decide_promotion(
        challenger_metrics,
        champion_metrics,
        config.gate,
        champion_version=current if current != version else None,
    )
    record_gate(target, version, decision)
    info = {"version": version, **decision.to_dict()}
    _write_json(work / "gate.json", info)
    return info


# -- step 6: promote ---------------------------------------------------------------------------


def promote_step(work_dir: str | Path, *, settings: Settings | None = None) -> dict[str, object]:
    """Step 6: make the challenger champion when the gate passed and auto-promotion is on."""
    work = Path(work_dir)
    config = _read_config(work)
    gate = json.loads((work / "gate.json").read_text())
    version = gate["version"]
    info: dict[str, object] = {"version": version, "promoted": False, "previous_champion": None}
    if not gate["passed"]:
        info["reason"] = f"gate refused: {gate['reason']}"
    elif not config.gate.auto_promote:
        info["reason"] = f"gate passed; auto-promotion is off: run `campaignopt model promote {version}`"
    else:
        info["previous_champion"] = promote(_target(settings), version)
        info["promoted"] = True
        info["reason"] = f"gate passed: {gate['reason']}"
    _write_json(work / "promoted.json", info)
    return info


# -- all steps ---------------------------------------------------------------------------------


def retrain(
    work_dir: str | Path | None = None,
    *,
    settings: Settings | None = None,
    config: RetrainConfig | Mapping[str, object] | None = None,
    as_of: dt.date | str | None = None,
    examples: pd.DataFrame | None = None,
    arms: pd.DataFrame | None = None,
    run_tags: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Train -> evaluate -> register -> gate -> promote, in one process.

    Returns
    -------
    dict
        ``status`` (``skipped`` or ``done``), ``reason`` when skipped; else ``run_id``,
        ``version``, ``promoted`` (bool), ``champion`` (version after the run), ``gate``
        (reason), ``metrics`` (key validation metrics) and ``work_dir``. Small and
        JSON-ready, for XCom or ``--json``.
    """
    settings = settings or get_settings()
    if work_dir is None:
        stamp = str(as_of) if as_of else dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        work_dir = settings.home / "retrain" / stamp
    dataset = build_training_set(
        work_dir, settings=settings, config=config, as_of=as_of, examples=examples, arms=arms
    )
    if dataset["status"] == SKIPPED:
        return {
            "status": SKIPPED,
            "reason": dataset["reason"],
            "rows": dataset["rows"],
            "work_dir": dataset["work_dir"],
        }
    train_step(work_dir)
    metrics = evaluate_step(work_dir)
    registered = register_step(work_dir, settings=settings, run_tags=run_tags)
    gate = gate_step(work_dir, settings=settings)
    promoted = promote_step(work_dir, settings=settings)
    return {
        "status": "done",
        "run_id": registered["run_id"],
        "model_name": registered["model_name"],
        "version": registered["version"],
        "promoted": promoted["promoted"],
        "champion": registered["version"] if promoted["promoted"] else gate["champion_version"],
        "gate": gate["reason"],
        "gate_passed": gate["passed"],
        "metrics": metrics,
        "rows": dataset["rows"],
        "date_from": dataset["date_from"],
        "date_to": dataset["date_to"],
        "work_dir": str(work_dir),
    }


def load_champion_model(settings: Settings | None = None):
    """The environment's champion for scorers: ``(model, version, quality)`` or None.

    Raises
    ------
    ServiceUnavailable
        When the registry cannot be reached.
    """
    target = _target(settings)
    try:
        return load_champion(target.model_name, tracking_uri=target.tracking_uri)
    except RegistryUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except UnknownModelVersion as exc:
        raise NotFound(str(exc)) from None


# -- helpers -----------------------------------------------------------------------------------


def _target(settings: Settings | None) -> RegistryTarget:
    return registry_target(settings or get_settings())


def _as_config(config: RetrainConfig | Mapping[str, object] | None) -> RetrainConfig:
    if isinstance(config, RetrainConfig):
        return config
    return RetrainConfig.from_mapping(config)


def _read_config(work: Path) -> RetrainConfig:
    return RetrainConfig.from_mapping(json.loads((work / "config.json").read_text()))


def _read_examples(work: Path) -> pd.DataFrame:
    return pd.read_parquet(work / "examples.parquet")


def _read_arms(work: Path) -> pd.DataFrame | None:
    path = work / "arms.parquet"
    if not path.exists():
        return None
    arms = pd.read_parquet(path)
    return arms if len(arms) else None


def _load_train_result(work: Path) -> TrainResult:
    """Rebuild the training result from files (the split is recomputed: it is deterministic)."""
    from xgboost import XGBClassifier

    from ml.features import FeatureSpec

    config = _read_config(work)
    info = json.loads((work / "train.json").read_text())
    model = XGBClassifier()
    model.load_model(work / "model.ubj")
    split = split_by_time(training_rows(_read_examples(work), config.train), config.train)
    return TrainResult(
        model=model,
        spec=FeatureSpec.from_json((work / "feature_spec.json").read_text()),
        config=config.train,
        split=split,
        best_iteration=int(info["best_iteration"]),
        train_seconds=float(info["train_seconds"]),
    )


def _save_evaluation(folder: Path, evaluation: Evaluation) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "metrics.json", evaluation.metrics)
    evaluation.calibration.to_csv(folder / "calibration.csv", index=False)
    evaluation.lift.to_csv(folder / "lift_gain.csv", index=False)
    evaluation.importance.to_csv(folder / "feature_importance.csv", index=False)


def _load_evaluation(folder: Path) -> Evaluation:
    return Evaluation(
        metrics={
            k: (float("nan") if v is None else v)
            for k, v in json.loads((folder / "metrics.json").read_text()).items()
        },
        calibration=pd.read_csv(folder / "calibration.csv"),
        lift=pd.read_csv(folder / "lift_gain.csv"),
        importance=pd.read_csv(folder / "feature_importance.csv"),
        charts={p.stem: p for p in sorted(folder.glob("*.png"))},
    )


def _key_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
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


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    """JSON with NaN written as null (strict JSON readers reject NaN)."""

    def clean(value):
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items()}
        return value

    path.write_text(json.dumps(clean(dict(data)), indent=2, sort_keys=True, default=str))
