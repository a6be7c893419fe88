"""API keys of the real-time service: created, listed, revoked and checked against ops.api_keys.

A key is ``co_<key_id>_<secret>``. ``key_id`` (16 hex characters) is public and finds the row; the
secret is ``secrets.token_urlsafe(32)`` (32 random bytes) and only its SHA-256 is stored. A slow
password hash buys nothing for 256 random bits, and SHA-256 keeps a check well under a millisecond.
Digests are compared with :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipelines.errors import NotFound, UserError

ROLES = ("admin", "service", "analyst")
PREFIX = "co"
_TOKEN = re.compile(r"^co_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DUMMY_DIGEST = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_key(engine: sa.Engine, name: str, role: str) -> tuple[ApiKey, str]:
    """A new key named ``name`` with ``role``; returns it and the token (shown once, never stored)."""
    if role not in ROLES:
        raise UserError(f"role: unknown role {role!r}; allowed: {', '.join(ROLES)}")
    if not _NAME.match(name):
        raise UserError(f"name: {name!r} must be 1-63 letters, digits, '_', '-' or '.', starting with one")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        taken = conn.execute(
            sa.text("select 1 from ops.api_keys where name = :n and revoked_at is null"), {"n": name}
        ).first()
        if taken:
            raise UserError(f"name: an active key named {name!r} exists; revoke it first")
        row = conn.execute(
            sa.text(
                "insert into ops.api_keys (key_id, name, role, secret_sha256) values (:k, :n, :r, :h) "
                "returning created_at"
            ),
            {"k": key_id, "n": name, "r": role, "h": _digest(secret)},
        ).one()
    return ApiKey(key_id, name, role, row.created_at), f"{PREFIX}_{key_id}_{secret}"


def list_keys(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every key (revoked ones too), without anything secret, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select key_id, name, role, created_at, revoked_at from ops.api_keys "
                "order by created_at desc, key_id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def revoke_key(engine: sa.Engine, name: str) -> ApiKey:
    """Revoke the active key named ``name``; NotFound naming it when there is none."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "update ops.api_keys set revoked_at = now() where name = :n and revoked_at is null "
                "returning key_id, name, role, created_at, revoked_at"
            ),
            {"n": name},
        ).first()
    if row is None:
        raise NotFound(f"no active API key named {name!r} (see `campaignopt apikey list`)")
    return ApiKey(row.key_id, row.name, row.role, row.created_at, row.revoked_at)


def authenticate(engine: sa.Engine, token: str) -> ApiKey | None:
    """The active key ``token`` belongs to, else None (malformed, unknown, wrong secret or revoked)."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    key_id, secret = match.groups()
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select key_id, name, role, created_at, revoked_at, secret_sha256 from ops.api_keys "
                "where key_id = :k"
            ),
            {"k": key_id},
        ).first()
    stored = bytes(row.secret_sha256) if row is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(_digest(secret), stored) or row is None or row.revoked_at is not None:
        return None
    return ApiKey(row.key_id, row.name, row.role, row.created_at, row.revoked_at)
