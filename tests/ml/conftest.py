"""Fixtures for the ml tests: synthetic data and a throwaway MLflow database on PostgreSQL.

The MLflow backend is a real PostgreSQL database, ``mlflow_test_<pid>`` on the local server
(``CAMPAIGNOPT_TEST_PG``, default ``postgresql+psycopg://postgres@127.0.0.1:5432``), created
for the session and dropped after it; artifacts go to a temporary folder.
"""

from __future__ import annotations

import itertools
import os

import pytest
import sqlalchemy as sa

from ml.synthetic import make_arms, make_training_examples

PG_SERVER = os.environ.get("CAMPAIGNOPT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
_env_counter = itertools.count()


def _admin_engine() -> sa.Engine:
    return sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@pytest.fixture(scope="session")
def pg_admin() -> sa.Engine:
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER}: {str(exc.orig).splitlines()[0]}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def scratch_database(pg_admin):
    """Factory: create an empty database for the session (dropped at the end); returns its URL."""
    created = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{os.getpid()}_{len(created)}"
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
            conn.execute(sa.text(f'create database "{name}"'))
        created.append(name)
        return f"{PG_SERVER}/{name}"

    yield make
    with pg_admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))


@pytest.fixture(scope="session")
def mlflow_uri(pg_admin) -> str:
    """Tracking URI of the session's MLflow database (created empty: MLflow builds its tables)."""
    name = f"mlflow_test_{os.getpid()}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        conn.execute(sa.text(f'create database "{name}"'))
    yield f"{PG_SERVER}/{name}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))


@pytest.fixture
def settings_for(mlflow_uri, tmp_path, monkeypatch):
    """Settings of a fresh environment (its own registered model name) on the session's MLflow."""
    from pipelines.settings import Settings, get_settings

    env = f"test{os.getpid()}x{next(_env_counter)}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("CAMPAIGNOPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAMPAIGNOPT_ENV", env)
    get_settings.cache_clear()
    yield Settings(mlflow_tracking_uri=mlflow_uri, campaignopt_home=tmp_path / "home", campaignopt_env=env)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def examples():
    """12,000 logged decisions over 28 days with a real signal (validation: the last 7 days)."""
    return make_training_examples(12_000, seed=7)


@pytest.fixture(scope="session")
def arms():
    return make_arms()


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``campaignopt ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    import sys

    from pipelines.cli import main

    monkeypatch.setattr(sys, "argv", ["campaignopt", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err
