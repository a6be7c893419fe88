"""Apply the Alembic migrations that create the `raw` and `ops` schemas."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser treats % as interpolation: a socket URL (host=%2Ftmp...) needs it doubled.
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision``; harmless when already there. Returns the new revision."""
    cfg = _config(engine)
    with engine.connect() as conn:
        # Serialise concurrent upgrades (parallel tests, two DAG runs) on one advisory lock.
        conn.execute(sa.text("select pg_advisory_lock(7240113)"))
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        finally:
            conn.execute(sa.text("select pg_advisory_unlock(7240113)"))
            conn.commit()
    return current_revision(engine) or ""


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        has_table = conn.execute(sa.text("select to_regclass('ops.alembic_version')")).scalar()
        if not has_table:
            return None
        ctx = MigrationContext.configure(conn, opts={"version_table_schema": "ops"})
        return ctx.get_current_revision()


def head_revision(engine: sa.Engine) -> str:
    return ScriptDirectory.from_config(_config(engine)).get_current_head() or ""
