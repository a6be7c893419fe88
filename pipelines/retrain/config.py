"""Retraining configuration and where MLflow lives for this environment.

MLflow lives by default in a database ``mlflow`` on the project's PostgreSQL (created when
missing), artifacts under ``<home>/mlartifacts``; ``MLFLOW_TRACKING_URI`` overrides (with
workers on several machines, point it at an MLflow server that serves the artifacts).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ml.gate import GateConfig
from ml.registry import RegistryTarget
from ml.train import TrainConfig
from pipelines.db import check_connection, database_url, normalize_url
from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

MLFLOW_DATABASE = "mlflow"
MLFLOW_DATABASE_LOCK = 0x6D6C666C6F64  # the advisory lock around creating the tracking database
MLFLOW_TABLES_LOCK = 0x6D6C666C6F77  # "mlflow": the advisory lock around MLflow's table creation


@dataclass(frozen=True)
class RetrainConfig:
    """What a retraining run needs besides the settings.

    Parameters
    ----------
    min_examples : int
        Fewest matured treatment examples worth training on; fewer -> skipped.
    min_days : int
        Fewest distinct decision dates (the time split needs at least 2: one trains, the
        newest validates; the gate's floor judges whether that was enough).
    lookback_days : int or None
        Train on decisions of the last this many days up to ``as_of``; None: all.
    train : TrainConfig
    gate : GateConfig
    """

    min_examples: int = 1_000
    min_days: int = 2
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
            # Two processes creating the same database at once fail on pg_database's unique index
            # (23505, not 42P04): one process at a time looks and creates.
            conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": MLFLOW_DATABASE_LOCK})
            try:
                exists = conn.execute(
                    sa.text("select 1 from pg_database where datname = :n"), {"n": url.database}
                ).scalar()
                if not exists:
                    log.info("creating the MLflow tracking database %s", url.database)
                    conn.execute(sa.text(f'create database "{url.database}"'))
            finally:
                conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": MLFLOW_DATABASE_LOCK})
        _ensure_mlflow_tables(uri)
    except sa.exc.ProgrammingError as exc:
        raise ServiceUnavailable(
            f"cannot create the MLflow database {url.database!r}: {str(exc.orig).splitlines()[0]}"
        ) from None
    finally:
        admin.dispose()


def _ensure_mlflow_tables(uri: str) -> None:
    """MLflow's tables, created by one process at a time. Each MLflow store creates missing tables
    when it opens, and two tasks opening a fresh database at once (two Celery workers' decide
    tasks) raced: one failed on a duplicate ``alembic_version`` row. An advisory lock in that
    database serialises the creation; later opens find the tables and create nothing."""
    from mlflow.store.db import utils as mlflow_db

    lock = sa.create_engine(uri, connect_args={"connect_timeout": 5})
    try:
        with lock.connect() as conn:
            conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": MLFLOW_TABLES_LOCK})
            try:
                engine = mlflow_db.create_sqlalchemy_engine_with_retry(uri)
                try:
                    if not mlflow_db._all_tables_exist(engine):
                        mlflow_db._initialize_tables(engine)
                finally:
                    engine.dispose()
            finally:
                conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": MLFLOW_TABLES_LOCK})
    finally:
        lock.dispose()


def _check_http(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the MLflow server at {uri}: {exc}") from None
