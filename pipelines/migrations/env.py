"""Alembic environment: the URL comes from the caller (pipelines.migrate), never from a file."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)


def _run(conn: sa.Connection) -> None:
    # The version table lives in ops so `public` stays empty for dbt and MLflow.
    conn.execute(sa.text("create schema if not exists ops"))
    context.configure(connection=conn, version_table_schema="ops", transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
    conn.commit()


run_migrations_online()
