"""`campaignopt apikey create / list / revoke`: the key is printed once, only its hash is stored."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid

import httpx
import sqlalchemy as sa

from api.deps import KEY_CACHE_SECONDS
from tests.api.conftest import CLI, auth


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "apikey", *args], capture_output=True, text=True, timeout=60)


def test_create_list_revoke_through_the_cli(server, engine) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    created = run("create", "--name", name, "--role", "analyst", "--json")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    token = info["key"]
    assert info["name"] == name and info["role"] == "analyst" and token.startswith(f"co_{info['key_id']}_")

    with engine.connect() as conn:
        row = (
            conn.execute(sa.text("select * from ops.api_keys where name = :n"), {"n": name}).mappings().one()
        )
    secret = token.split("_", 2)[2]
    assert bytes(row["secret_sha256"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in json.dumps({k: str(v) for k, v in row.items()})  # only the hash is stored

    listed = json.loads(run("list", "--json").stdout)
    mine = [k for k in listed if k["name"] == name]
    assert mine == [{**mine[0], "role": "analyst", "revoked_at": None}] and "key" not in mine[0]
    assert token not in run("list").stdout

    assert httpx.get(f"{server.url}/campaigns", headers=auth(token)).status_code == 200
    again = run("create", "--name", name, "--role", "admin")
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: name: an active key named {name!r} exists; revoke it first"
    )
    revoked = run("revoke", name)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    missing = run("revoke", name)
    assert missing.returncode == 4
    assert (
        missing.stderr.strip() == f"error: no active API key named {name!r} (see `campaignopt apikey list`)"
    )
    # A revoked name can be given to a new key; the old token stays refused.
    assert run("create", "--name", name, "--role", "service").returncode == 0
    time.sleep(KEY_CACHE_SECONDS + 0.2)
    assert httpx.get(f"{server.url}/campaigns", headers=auth(token)).status_code == 401


def test_bad_role_or_name_is_one_line_and_stores_nothing(engine) -> None:
    bad_role = run("create", "--name", "x-bad-role", "--role", "root")
    assert bad_role.returncode == 2
    assert bad_role.stderr.strip() == "error: role: unknown role 'root'; allowed: admin, service, analyst"
    bad_name = run("create", "--name", "has space", "--role", "admin")
    assert bad_name.returncode == 2 and bad_name.stderr.startswith("error: name: 'has space' must be")
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from ops.api_keys where name in ('x-bad-role', 'has space')")
            ).scalar()
            == 0
        )
