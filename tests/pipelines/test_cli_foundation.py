"""The CLI as a person meets it: one line per error, meaningful exit codes, nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("campaignopt"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def test_db_upgrade_twice_and_campaign_commands(clean_engine: sa.Engine) -> None:
    assert run("db", "upgrade").returncode == 0
    second = run("db", "upgrade")
    assert second.returncode == 0 and "already at revision" in second.stdout
    applied = run("campaign", "apply", "campaigns/card_cashback.yaml", "campaigns/cross_sell.yaml", "--json")
    assert applied.returncode == 0, applied.stderr
    assert [(r["name"], r["arms_active"]) for r in json.loads(applied.stdout)] == [
        ("card-cashback", 8),
        ("cross-sell", 56),
    ]
    listed = json.loads(run("campaign", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["card-cashback", "cross-sell"]
    shown = json.loads(run("campaign", "show", "cross-sell", "--json").stdout)
    assert len(shown["arms"]) == 56 and shown["definition"]["holdout_share"] == 0.1
    unknown = run("campaign", "show", "nope")
    assert unknown.returncode == 4
    assert unknown.stderr.strip() == "error: unknown campaign 'nope'; known: card-cashback, cross-sell"


def test_a_bad_campaign_file_is_one_line_and_changes_nothing(clean_engine: sa.Engine, tmp_path: Path) -> None:
    assert run("campaign", "apply", "campaigns/card_cashback.yaml").returncode == 0
    text = (REPO / "campaigns/card_cashback.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("channel: [email, sms]", "channel: [email, pigeon]"))
    good_but_changed = tmp_path / "changed.yaml"
    good_but_changed.write_text(text.replace("holdout_share: 0.1", "holdout_share: 0.2"))
    result = run("campaign", "apply", str(good_but_changed), str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {bad}: parameters: channel: unknown value 'pigeon'")
    with clean_engine.connect() as conn:  # the valid file before it was not applied either
        assert conn.execute(sa.text("select holdout_share from ops.campaigns")).scalar_one() == 0.1
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: x\nparameters: [\n")
    result = run("campaign", "apply", str(malformed))
    assert result.returncode == 2 and "malformed YAML at line" in result.stderr


def test_an_unreachable_database_is_one_clear_line() -> None:
    result = run("campaign", "list", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 3
    assert result.stderr.startswith(
        "error: cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_usage_errors_are_one_line_exit_2_and_no_traceback() -> None:
    cases = {
        ("daily", "--date", "2026-13-01"): "error: Invalid value for '--date': '2026-13-01' is not a date "
        "(YYYY-MM-DD) (see 'campaignopt daily --help')",
        ("daily",): "error: Missing option '--date'. (see 'campaignopt daily --help')",
        ("nosuchcmd",): "error: No such command 'nosuchcmd'. (see 'campaignopt --help')",
        ("daily", "--date", "2026-11-02", "--bogus"): "error: No such option: --bogus "
        "(see 'campaignopt daily --help')",
        ("retrain", "--date", "yesterday"): "error: Invalid value for '--date': 'yesterday' is not a date "
        "(YYYY-MM-DD) (see 'campaignopt retrain --help')",
    }
    for args, expected in cases.items():
        result = run(*args)
        assert (result.returncode, result.stderr, result.stdout) == (2, expected + "\n", ""), args
    bare = run()  # no command: the help, and the usage exit code
    assert bare.returncode == 2 and "Usage" in bare.stdout and "Traceback" not in bare.stderr
    assert run("--help").returncode == 0
