"""`campaignopt campaign apply` refuses what YAML accepts but a campaign must not, changing nothing.

Each bad file is a variant of a stored campaign (so accepting it would update rows), applied
together with a valid, changed file of another campaign (so a partial apply would show).
The database is compared by row counts and an md5 of every row of ops.campaigns and ops.arms.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("campaignopt"))
CARD = (REPO / "campaigns/card_cashback.yaml").read_text()
CROSS = (REPO / "campaigns/cross_sell.yaml").read_text()


def snapshot(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """Row count and md5 of all rows (in key order) of the tables an apply writes."""
    with engine.connect() as conn:
        return {
            table: tuple(
                conn.execute(
                    sa.text(
                        f"select count(*), coalesce(md5(string_agg(t::text, '|' order by {key})), '') "
                        f"from {table} t"
                    )
                ).one()
            )
            for table, key in (("ops.campaigns", "campaign_id"), ("ops.arms", "arm_id"))
        }


@pytest.fixture
def stored(clean_engine: sa.Engine) -> sa.Engine:
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaigns

    apply_campaigns(
        clean_engine,
        [(load_campaign(REPO / f"campaigns/{n}.yaml"), None) for n in ("card_cashback", "cross_sell")],
    )
    return clean_engine


def apply_in_process(capsys: pytest.CaptureFixture[str], *files: Path) -> tuple[int, str]:
    """The console entry point itself (argv, typer, the one-line error handler), minus the fork."""
    argv = sys.argv
    sys.argv = [CLI, "campaign", "apply", *map(str, files)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    return int(exit_info.value.code), capsys.readouterr().err


def _sub(old: str, new: str) -> str:
    assert old in CARD, old
    return CARD.replace(old, new)


BAD_FILES = {
    "nan_weight": (
        _sub("kind: conversion", "kind: weighted_engagement\n  weights: {click: .nan, conversion: 1.0}"),
        "reward.weights.click: Input should be a finite number",
    ),
    "inf_cost": (_sub("sms: 0.06", "sms: .inf"), "channel_costs.sms: Input should be a finite number"),
    "minus_inf_value": (
        _sub("conversion_value: 80.0", "conversion_value: -.inf"),
        "reward.conversion_value: Input should be a finite number",
    ),
    "nan_policy_param": (
        _sub("prior_beta: 30.0", "prior_beta: .nan"),
        "policy.params: prior_beta: Input should be a finite number, got nan",
    ),
    "nested_inf": (
        _sub("prior_beta: 30.0}", "prior_beta: 30.0, tags: [{w: .inf}]}"),
        "policy.params: tags.0.w: Input should be a finite number, got inf",
    ),
    "impossible_date": (
        _sub("start_date: 2026-11-01", "start_date: 2026-13-01"),
        "start_date: Input should be a valid date or datetime, month value is outside expected range of 1-12",
    ),
    "duplicate_top_key": (
        _sub("holdout_share: 0.1", "holdout_share: 0.1\nholdout_share: 0.3"),
        "duplicate key holdout_share at line 23, column 1 (first at line 22)",
    ),
    "duplicate_nested_key": (
        _sub("  min_age: 21", "  min_age: 21\n  min_age: 30"),
        "duplicate key audience.min_age at line 9, column 3 (first at line 8)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_one_line_exit_2_and_changes_nothing(
    stored: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, expected = BAD_FILES[case]
    changed = tmp_path / "cross_sell_changed.yaml"
    changed.write_text(CROSS.replace("holdout_share: 0.1", "holdout_share: 0.2"))
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    before = snapshot(stored)
    code, err = apply_in_process(capsys, changed, bad)
    assert (code, err) == (2, f"error: {bad}: {expected}\n")
    assert snapshot(stored) == before


def test_latin1_file_is_one_line_and_changes_nothing(
    stored: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(_sub("Cashback or fee", "Crédit or fee").encode("latin-1"))
    before = snapshot(stored)
    code, err = apply_in_process(capsys, bad)
    # "description: Cr" is 15 characters: the é is column 16 of line 3.
    assert (code, err) == (
        2,
        f"error: {bad}: not UTF-8 text (byte 0xe9 at line 3, column 16); save the file as UTF-8\n",
    )
    assert snapshot(stored) == before


def test_same_campaign_in_two_files_is_refused_by_the_real_cli(stored: sa.Engine, tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(CARD.replace("holdout_share: 0.1", "holdout_share: 0.2"))
    second = tmp_path / "b.yaml"
    second.write_text(CARD.replace("holdout_share: 0.1", "holdout_share: 0.3"))
    before = snapshot(stored)
    result = subprocess.run(
        [CLI, "campaign", "apply", str(first), str(second)],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: {second}: name: campaign 'card-cashback' is already defined in {first}; "
        "apply each campaign from one file\n"
    )
    assert snapshot(stored) == before


def test_apply_of_several_files_is_one_transaction(stored: sa.Engine) -> None:
    """A failure while storing the second campaign leaves the first one unchanged too."""
    from pipelines.campaign_spec import load_campaign
    from pipelines.campaign_store import apply_campaigns

    card = load_campaign(REPO / "campaigns/card_cashback.yaml")
    cross = load_campaign(REPO / "campaigns/cross_sell.yaml")
    before = snapshot(stored)
    with stored.begin() as conn:  # a rule the model does not know: only the second update breaks it
        conn.execute(
            sa.text(
                "alter table ops.campaigns add constraint test_rule check (holdout_share <> 0.3) not valid"
            )
        )
    try:
        with pytest.raises(sa.exc.IntegrityError, match="test_rule"):
            apply_campaigns(
                stored,
                [
                    (card.model_copy(update={"holdout_share": 0.2}), None),
                    (cross.model_copy(update={"holdout_share": 0.3}), None),
                ],
            )
    finally:
        with stored.begin() as conn:
            conn.execute(sa.text("alter table ops.campaigns drop constraint test_rule"))
    assert snapshot(stored) == before
