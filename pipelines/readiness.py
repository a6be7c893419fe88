"""Is the service ready: the database reachable, its schema at head, the model registry reachable.

Each check returns None when fine, else one line saying what is wrong (never a password).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines import migrate
from pipelines.db import check_connection
from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings

PROBE_SECONDS = 2


def database_problem(engine: sa.Engine) -> str | None:
    try:
        check_connection(engine)
    except ServiceUnavailable as exc:
        return str(exc)
    return None


def migrations_problem(engine: sa.Engine, head: str) -> str | None:
    try:
        current = migrate.current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        return f"cannot read the schema revision: {type(exc).__name__}"
    if current != head:
        return (
            f"database schema at revision {current or 'empty'}, the code expects {head}: "
            "run `campaignopt db upgrade`"
        )
    return None


def registry_uri(settings: Settings) -> str:
    """The MLflow tracking URI of ``settings`` (importing pipelines.retrain takes seconds: call once)."""
    from pipelines.retrain.config import tracking_uri

    return tracking_uri(settings)


def registry_problem(uri: str) -> str | None:
    """Reach the MLflow tracking backend at ``uri`` cheaply: its database, or its server's /health."""
    if uri.startswith("postgresql"):
        engine = sa.create_engine(
            uri, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": PROBE_SECONDS}
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
        except sa.exc.SQLAlchemyError as exc:
            where = make_url(uri).render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else "failed"
            return f"model registry unreachable at {where}: {reason}"
        finally:
            engine.dispose()
        return None
    if uri.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(uri.rstrip("/") + "/health", timeout=PROBE_SECONDS)
        except httpx.HTTPError as exc:
            return f"model registry unreachable at {uri}: {type(exc).__name__}"
        if response.status_code != 200:
            return f"model registry at {uri} answered {response.status_code} on /health"
        return None
    return None  # a local file or sqlite store: nothing to reach
