"""Database access: the URL (given or embedded), one engine per URL, and COPY helpers."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "campaignopt"


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the user wrote."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL: DATABASE_URL when set, else the embedded server (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return normalize_url(settings.database_url)
    return _embedded_url(str(settings.pgdata_dir))


@lru_cache
def _embedded_url(pgdata: str) -> str:
    import pgserver  # heavy: only when the embedded server is used

    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    try:
        # cleanup_mode=None leaves the server running for the next command to reuse.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # pgserver raises plain exceptions with long logs
        raise ServiceUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    admin_url = normalize_url(server.get_uri())
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("select 1 from pg_database where datname = :n"), {"n": EMBEDDED_DB_NAME}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'create database "{EMBEDDED_DB_NAME}"'))
    engine.dispose()
    return str(make_url(admin_url).set(database=EMBEDDED_DB_NAME).render_as_string(hide_password=False))


@lru_cache
def _engine_for(url: str) -> Engine:
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def get_engine(settings: Settings | None = None) -> Engine:
    """The engine for the configured database; fails with one line when it is unreachable."""
    url = database_url(settings)
    engine = _engine_for(url)
    check_connection(engine)
    return engine


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise ServiceUnavailable(f"cannot reach the database at {where}: {reason}") from None


def copy_frame(conn: sa.Connection, table: str, frame) -> int:
    """COPY a pandas DataFrame (columns = table columns) through an in-memory CSV buffer.

    pyarrow writes the CSV (about 10x faster than pandas' writer). Every value is quoted and
    nulls (None, NaN, NaT) are left empty and unquoted, which COPY's CSV format reads as NULL
    while a quoted "" stays an empty string.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        pa.Table.from_pandas(frame, preserve_index=False),
        sink,
        write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"),
    )
    data = sink.getvalue()
    cols = ", ".join(frame.columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
        view = memoryview(data)
        for start in range(0, len(view), 1 << 20):
            copy.write(view[start : start + (1 << 20)])
    return len(frame)


def read_frame(conn: sa.Connection, query: str, params: Sequence[object] | dict | None = None):
    """Run ``query`` (psycopg placeholders: %s / %(name)s) and read it with COPY TO: fast for big results."""
    import pandas as pd

    raw = conn.connection.driver_connection
    buf = io.BytesIO()
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", params) as copy,
    ):
        for chunk in copy:
            buf.write(chunk)
    buf.seek(0)
    if buf.getbuffer().nbytes == 0:
        return pd.DataFrame()
    return pd.read_csv(buf, keep_default_na=False, na_values=[""], engine="pyarrow")
