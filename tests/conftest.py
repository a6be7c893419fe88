"""Shared fixtures: a real PostgreSQL database for the whole session.

DATABASE_URL wins when set. Otherwise a fresh database is created on the local
server at 127.0.0.1:5432 and dropped at the end; without that server, the embedded
pgserver is started under a temporary home.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

LOCAL_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# The test workers share one PostgreSQL (max_connections 100) between their services, dbt and the
# Airflow deployment test (~30 at its peak): the production defaults (10 + 10 per API worker, 4 dbt
# threads) exhausted it there.
os.environ.setdefault("REALTIME_DB_POOL_SIZE", "2")
os.environ.setdefault("DBT_THREADS", "2")
REPO = Path(__file__).resolve().parents[1]


def _create_local_database(
    admin_url: str = LOCAL_ADMIN_URL, prefix: str = "campaignopt_test"
) -> tuple[str, sa.Engine] | None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError:
        return None
    return admin_url.rsplit("/", 1)[0] + f"/{name}", admin


def _worker_database(url: str) -> tuple[str, sa.Engine]:
    """Under pytest-xdist every worker truncates and seeds tables as it goes, so each gets its own
    database on DATABASE_URL's server, named after DATABASE_URL's, dropped at the end."""
    base = sa.make_url(url)
    admin_url = base.set(database="postgres").render_as_string(hide_password=False)
    created = _create_local_database(admin_url, f"{base.database}_{os.environ['PYTEST_XDIST_WORKER']}")
    if created is None:
        raise pytest.UsageError(
            f"DATABASE_URL is set and the parallel test workers cannot create a database of their own "
            f"on its server ({base.host}:{base.port}): run `make test TEST_WORKERS=1`"
        )
    url_of_worker, admin = created
    return sa.make_url(url_of_worker).set(password=base.password).render_as_string(hide_password=False), admin


@pytest.fixture(scope="session")
def test_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("campaignopt_home")
    os.environ["CAMPAIGNOPT_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def database_url(test_home: Path) -> Iterator[str]:
    from pipelines.settings import get_settings

    created = None
    url = os.environ.get("DATABASE_URL")
    if url and os.environ.get("PYTEST_XDIST_WORKER"):
        created = _worker_database(url)
        url = created[0]
    elif not url:
        created = _create_local_database()
        if created is not None:
            url = created[0]
    if url:
        os.environ["DATABASE_URL"] = url  # subprocesses (CLI, Airflow, dbt) inherit it
    get_settings.cache_clear()
    if not url:
        from pipelines.db import database_url as resolve

        url = resolve()  # embedded pgserver under the test home
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
    yield url
    if created is not None:
        _, admin = created
        name = url.rsplit("/", 1)[1]
        with admin.connect() as conn:
            conn.execute(
                sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :n"),
                {"n": name},
            )
            conn.execute(sa.text(f'drop database if exists "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> sa.Engine:
    from pipelines import migrate
    from pipelines.db import get_engine

    eng = get_engine()
    migrate.upgrade(eng)
    return eng


RAW_AND_OPS_TABLES = (
    "ops.feedback_holds, ops.feedback_volumes, ops.alerts, ops.quarantine, ops.ingested_files, "
    "ops.suppressions, ops.send_lists, ops.decide_buckets, "
    "ops.decisions, ops.arms, ops.campaigns, raw.interactions, raw.customers, raw.consents"
)


# The marts dbt builds incrementally: they assume ops.decisions and raw.interactions only grow, so
# a test that empties those tables for a new world empties these too (the next build is then a
# full one). Production never truncates them.
INCREMENTAL_MARTS = (
    "int_decisions_attributed",
    "int_decisions_segmented",
    "int_arm_segment_daily",
    "campaign_daily_kpis",
    "training_examples",
)


def empty_incremental_marts(conn: sa.Connection) -> None:
    """Truncate the incremental marts that exist (a database dbt never built has none)."""
    existing = conn.execute(
        sa.text("select tablename from pg_tables where schemaname = 'analytics' and tablename = any(:t)"),
        {"t": list(INCREMENTAL_MARTS)},
    ).scalars()
    for table in existing:
        conn.execute(sa.text(f'truncate analytics."{table}"'))


def reset_tables(engine: sa.Engine, tables: str = RAW_AND_OPS_TABLES, *, every_mart: bool = False) -> None:
    """Truncate `tables` (ids restart) and the incremental marts (or every analytics table), in
    one transaction.

    A truncate locks its tables one by one, so a service or a thread still reading them (a running
    service refreshes its snapshot every few seconds) can deadlock with it; PostgreSQL then aborts
    one side, and when that is the truncate it is tried again.
    """
    for attempt in range(1, 6):
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("set local lock_timeout = '30s'"))
                conn.execute(sa.text(f"truncate {tables} restart identity cascade"))
                if every_mart:
                    for table in conn.execute(
                        sa.text("select tablename from pg_tables where schemaname = 'analytics' order by 1")
                    ).scalars():  # emptied, not dropped: a running service knows they exist
                        conn.execute(sa.text(f'truncate analytics."{table}"'))
                else:
                    empty_incremental_marts(conn)
            return
        except sa.exc.OperationalError as error:
            state = getattr(error.orig, "sqlstate", None)
            if attempt == 5 or state not in ("40P01", "55P03"):  # deadlock, lock timeout
                raise
            time.sleep(0.2 * attempt)


@pytest.fixture
def clean_engine(engine: sa.Engine) -> sa.Engine:
    """The migrated database with every raw and ops table emptied (and the incremental marts)."""
    reset_tables(engine)
    return engine


@pytest.fixture
def inbox() -> Iterator[Path]:
    """The session's inbox; the days written here are removed after the test (other tests
    share the folder, and an inbox day with data counts as a day to wait for)."""
    from pipelines.settings import get_settings

    folder = get_settings().inbox_dir
    before = set(folder.iterdir()) if folder.is_dir() else set()
    yield folder
    for day in set(folder.iterdir()) - before:
        shutil.rmtree(day, ignore_errors=True)
