"""Request dependencies: the service state, the database engine, and API-key authentication.

Routes declare who may call them with ``Depends(require_role(...))``; admin may call everything.
A key is read from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, or, for reads (GET
and HEAD), from the dashboard's cookie (HttpOnly, SameSite=Strict: a browser cannot send a header
when it follows a link, and another site cannot make it send the cookie). Checked keys are
cached for ``KEY_CACHE_SECONDS`` per process (one database read per key and interval, not per
request), so a revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.state import ServiceState
from pipelines.apikeys import ApiKey, authenticate
from pipelines.errors import ServiceUnavailable

KEY_CACHE_SECONDS = 2.0
KEY_OFFLINE_SECONDS = 900.0  # as the offline eligibility cache (Settings.realtime_eligibility_cache_seconds)

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in `X-API-Key`.")
KEY_COOKIE = "campaignopt_key"
_cookie = APIKeyCookie(
    name=KEY_COOKIE,
    auto_error=False,
    description="The dashboard's cookie (POST /dashboard/login); reads only.",
)
READ_METHODS = ("GET", "HEAD")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def get_engine(state: ServiceState = Depends(get_state)) -> sa.Engine:
    return state.engine


class _KeyCache:
    """token digest -> (key or None, expiry). Unknown tokens are cached too (no DB read per retry)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[ApiKey | None, float]] = {}
        self._lock = threading.Lock()

    def lookup(self, engine: sa.Engine, token: str, offline: bool = False) -> ApiKey | None:
        """``offline`` (the database circuit is open): a key checked within KEY_OFFLINE_SECONDS
        still counts, so the service keeps deciding during an outage; revocations wait for it."""
        digest = hashlib.sha256(token.encode()).hexdigest()  # the token itself is never kept
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        stale = hit[0] if hit is not None and hit[1] + KEY_OFFLINE_SECONDS > now else None
        if offline and stale is not None:
            return stale
        try:
            key = authenticate(engine, token)
        except sa.exc.SQLAlchemyError:
            if stale is not None:
                return stale
            raise ServiceUnavailable("cannot check the API key: the database is unreachable") from None
        with self._lock:
            if len(self._entries) > 10_000:  # bound memory against a flood of random tokens
                self._entries.clear()
            self._entries[digest] = (key, now + KEY_CACHE_SECONDS)
        return key


_cache = _KeyCache()


def current_key(
    request: Request,
    state: ServiceState = Depends(get_state),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
    cookie: str | None = Depends(_cookie),
) -> ApiKey:
    token = bearer.credentials if bearer is not None else header
    if not token and request.method in READ_METHODS:
        token = cookie
    if not token:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    realtime = state.components.get("realtime")
    key = _cache.lookup(
        state.engine, token, offline=realtime is not None and realtime.offline.circuit.is_open()
    )
    if key is None:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return key


def require_role(*roles: str) -> Callable[..., ApiKey]:
    """A dependency admitting keys of ``roles`` (and admin); 403 naming the roles otherwise."""
    allowed = ("admin", *roles) if "admin" not in roles else roles

    def check(key: ApiKey = Depends(current_key)) -> ApiKey:
        if key.role not in allowed:
            raise HTTPException(403, f"role {key.role!r} may not do this; needs {' or '.join(allowed)}")
        return key

    return check


ADMIN = Depends(require_role("admin"))
SERVICE = Depends(require_role("service"))
ANALYST = Depends(require_role("analyst"))
