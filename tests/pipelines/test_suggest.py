"""Parameter expansion: untested arms ranked by a real XGBoost model, edge proposals from the
evidence, the evidence-only fallback, and diffs that `patch` applies and the product loads.

World: 200 customers in the `customer_features` mart built by the real dbt; campaign `expand`
sends credit_card x {email, sms} x {morning, afternoon} minus the excluded {sms, afternoon}
(3 arms). The model is fitted here on rows where evening converts at 30 % against 3 % for any
other time, so "add evening to time_of_day" must come first by construction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from xgboost import XGBClassifier

from ml.features import FeatureSpec
from ml.scoring import ResponseModel
from pipelines.campaign_spec import CampaignSpec, arm_key, load_campaign
from pipelines.campaign_store import apply_campaign, load_campaign_by_name
from pipelines.domain import CUSTOMER_COLUMNS
from pipelines.errors import NotFound
from pipelines.suggest import Evidence, edge_changes, suggest
from pipelines.suggest_yaml import Change
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    insert_customers,
    random_customers,
    replace_segment_arm_stats,
    truncate_all,
)

D = date(2026, 11, 2)
CLI = str(Path(sys.executable).with_name("campaignopt"))
YAML = """\
# A test campaign: two of the three send times.
name: expand
start_date: 2026-11-01
parameters:
  offer_type: [credit_card]
  channel: [email, sms]
  time_of_day: [morning, afternoon]  # evening not tried yet
exclusions:
  - {channel: sms, time_of_day: afternoon}
policy:
  name: thompson
"""


@pytest.fixture(scope="module")
def world(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    truncate_all(engine)
    insert_customers(engine, random_customers(200, seed=3), D)
    path = tmp_path_factory.mktemp("suggest") / "expand.yaml"
    path.write_text(YAML)
    apply_campaign(engine, load_campaign(path), path)
    run_dbt(D)
    return path


@pytest.fixture(scope="module")
def model() -> ResponseModel:
    """An XGBoost response model where evening is clearly best and nothing else matters."""
    rng = np.random.default_rng(7)
    n = 6000
    frame = pd.DataFrame(
        {
            "age": rng.integers(20, 80, n),
            "gender": rng.choice(["F", "M"], n),
            "income": rng.uniform(10_000, 150_000, n),
            **{c: rng.uniform(0, 5, n) for c in CUSTOMER_COLUMNS if c not in ("age", "gender", "income")},
            "offer_type": "credit_card",
            "channel": rng.choice(["email", "sms"], n),
            "time_of_day": rng.choice(["morning", "afternoon", "evening"], n),
        }
    )
    for column in ("discount", "day_of_week", "cta"):
        frame[column] = None
    y = rng.random(n) < np.where(frame["time_of_day"] == "evening", 0.30, 0.03)
    spec = FeatureSpec().fit(frame)
    clf = XGBClassifier(n_estimators=40, max_depth=2, learning_rate=0.3, n_jobs=1, random_state=0)
    clf.fit(spec.transform(frame), y.astype(int))
    return ResponseModel(clf, spec)


def _stats(engine: sa.Engine, rates: dict[str, tuple[int, int]]) -> None:
    """The mart holding (matured, conversions) per arm key, all in one segment."""
    campaign = load_campaign_by_name(engine, "expand")
    keys = {arm_key(p): i for p, i in zip(campaign.arm_params, campaign.arm_ids, strict=True)}
    rows = [
        {"c": campaign.campaign_id, "s": "middle_mid", "a": keys[k], "m": m, "r": r}
        for k, (m, r) in rates.items()
    ]
    replace_segment_arm_stats(engine, rows)


EMAIL_MORNING = "offer_type=credit_card|channel=email|time_of_day=morning"
EMAIL_AFTERNOON = "offer_type=credit_card|channel=email|time_of_day=afternoon"
SMS_MORNING = "offer_type=credit_card|channel=sms|time_of_day=morning"


def _patch(tmp_path: Path, original: Path, diff: str) -> Path:
    """Apply ``diff`` with the real `patch` to a copy of the file, as a person would."""
    target = tmp_path / "expand.yaml"
    target.write_text(original.read_text())
    (tmp_path / "change.diff").write_text(diff)
    done = subprocess.run(
        ["patch", "-p0", "--no-backup-if-mismatch", str(target), str(tmp_path / "change.diff")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def test_the_untested_best_value_ranks_first_and_its_diff_applies(
    engine: sa.Engine, world: Path, model: ResponseModel, tmp_path: Path
) -> None:
    _stats(engine, {EMAIL_MORNING: (300, 9), EMAIL_AFTERNOON: (300, 9), SMS_MORNING: (300, 9)})
    report = suggest(engine, "expand", model=model, model_note="test model", file=world, sample=150, seed=1)
    assert report.basis == "model" and report.sample_size == 150
    # Both evening arms first (the model says ~30 % against ~3 % for everything else).
    first, second = report.suggestions[:2]
    assert {first.change, second.change} == {Change.add_value("time_of_day", "evening")}
    assert {first.arm["channel"], second.arm["channel"]} == {"email", "sms"}
    assert first.mean > 0.2 and report.best_arm["mean"] < 0.08 and first.lift_vs_best > 0.15
    assert 0 < first.uncertainty < 0.02 and first.optimistic == pytest.approx(first.mean + first.uncertainty)
    assert first.model_knows_values is True and first.kept_layout
    # The other candidates: new channels and offers (the model never saw them), the excluded arm.
    changes = {
        s.change.describe() for s in suggest(engine, "expand", model=model, file=world, top=50).suggestions
    }
    assert "drop exclusion {channel: sms, time_of_day: afternoon}" in changes
    assert {"add app_push to channel", "add loan to offer_type"} <= changes and len(changes) == 1 + 3 + 3 + 1
    # The diff is one line of the file (its comments kept); patched, the product loads and applies it.
    assert [
        line for line in first.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ] == [
        "-  time_of_day: [morning, afternoon]  # evening not tried yet",
        "+  time_of_day: [morning, afternoon, evening]  # evening not tried yet",
    ]
    patched = load_campaign(_patch(tmp_path, world, first.diff))
    assert patched.parameters["time_of_day"] == ["morning", "afternoon", "evening"]
    result = apply_campaign(engine, patched)
    assert result.arms_added == 2 and result.arms_active == 5
    apply_campaign(engine, load_campaign(world))  # back as the other tests expect it


def test_dropping_an_exclusion_is_a_diff_that_applies(engine: sa.Engine, world: Path, tmp_path: Path) -> None:
    _stats(engine, {EMAIL_MORNING: (100, 5)})
    report = suggest(engine, "expand", file=world, top=50)
    (drop,) = [s for s in report.suggestions if s.change.kind == "drop_exclusion"]
    assert drop.arm == {"offer_type": "credit_card", "channel": "sms", "time_of_day": "afternoon"}
    patched = load_campaign(_patch(tmp_path, world, drop.diff))
    assert patched.exclusions == [] and len(patched.arms()) == 4
    text = (tmp_path / "expand.yaml").read_text()  # the rule's line gone, the file as written
    assert drop.kept_layout and "exclusions: []" in text and "# evening not tried yet" in text


def test_edge_rule_proposes_the_value_beyond_the_best_extreme(engine: sa.Engine, world: Path) -> None:
    # Afternoon (the campaign's latest time) converts best: try evening.
    _stats(engine, {EMAIL_MORNING: (400, 4), EMAIL_AFTERNOON: (400, 40), SMS_MORNING: (400, 4)})
    (edge,) = suggest(engine, "expand", file=world).edges
    assert edge.change == Change.add_value("time_of_day", "evening")
    assert "afternoon (10.20%)" in edge.reason and "evening" in edge.diff  # (1 + 40) / (2 + 400)
    # Morning best: nothing comes before morning, no edge.
    _stats(engine, {EMAIL_MORNING: (400, 40), EMAIL_AFTERNOON: (400, 4), SMS_MORNING: (400, 4)})
    assert suggest(engine, "expand", file=world).edges == []


def test_edge_rule_on_the_cyclic_week_and_not_on_discounts() -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "week",
            "start_date": "2026-11-01",
            "parameters": {
                "discount": ["cashback", "fee_waiver"],
                "day_of_week": ["friday", "saturday", "sunday"],
            },
        }
    )
    means = {
        "day_of_week": {"friday": 0.01, "saturday": 0.02, "sunday": 0.05},
        "discount": {"cashback": 0.09, "fee_waiver": 0.01},
    }
    assert [c for c, _ in edge_changes(spec, means)] == [Change.add_value("day_of_week", "monday")]
    means["day_of_week"] = {"friday": 0.05, "saturday": 0.02, "sunday": 0.01}
    assert [c for c, _ in edge_changes(spec, means)] == [Change.add_value("day_of_week", "thursday")]
    means["day_of_week"] = {"friday": 0.01, "saturday": 0.05, "sunday": 0.01}  # inside: no edge
    assert edge_changes(spec, means) == []


def test_without_a_model_the_evidence_ranks_and_says_so(engine: sa.Engine, world: Path) -> None:
    _stats(engine, {EMAIL_MORNING: (100, 9), EMAIL_AFTERNOON: (100, 19), SMS_MORNING: (100, 1)})
    report = suggest(engine, "expand", file=world, top=50)
    assert report.basis == "evidence" and "evidence only" in report.note and report.sample_size == 0
    by_arm = {"|".join(s.arm.values()): s for s in report.suggestions}
    # credit_card|email|evening: one parameter from email-morning and email-afternoon (not sms-morning).
    pooled = Evidence(np.array([200.0]), np.array([28.0])).posterior(np.array([True]))
    evening = by_arm["credit_card|email|evening"]
    assert (evening.mean, evening.uncertainty) == pytest.approx(pooled[:2]) and evening.mean == pytest.approx(
        29 / 202
    )
    assert evening.model_knows_values is None
    assert report.best_arm["arm_key"] == EMAIL_AFTERNOON and report.best_arm["by"] == "evidence"
    assert report.suggestions == sorted(report.suggestions, key=lambda s: -s.optimistic)


def _run(*args: str) -> subprocess.CompletedProcess:
    # An unreachable registry: the command must fall back to the evidence, in one run.
    env = {**os.environ, "MLFLOW_TRACKING_URI": "postgresql+psycopg://nobody@127.0.0.1:1/mlflow"}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_json_table_diff_and_refusals(engine: sa.Engine, world: Path, tmp_path: Path) -> None:
    _stats(engine, {EMAIL_MORNING: (400, 4), EMAIL_AFTERNOON: (400, 40), SMS_MORNING: (400, 4)})
    out = _run("suggest", "--campaign", "expand", "--file", str(world), "--json", "--top", "3")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {
        "campaign",
        "basis",
        "note",
        "k",
        "sample_size",
        "file",
        "best_arm",
        "suggestions",
        "edges",
    }
    assert data["basis"] == "evidence" and "registry" in data["note"] and len(data["suggestions"]) == 3
    assert set(data["suggestions"][0]) == {
        "arm",
        "arm_key",
        "change",
        "mean",
        "uncertainty",
        "optimistic",
        "lift_vs_best",
        "reason",
        "model_knows_values",
        "kept_layout",
        "diff",
    }
    assert data["edges"][0]["change"]["summary"] == "add evening to time_of_day"

    diff = tmp_path / "top.diff"
    table = _run("suggest", "--campaign", "expand", "--file", str(world), "--write-diff", str(diff))
    assert table.returncode == 0, table.stderr
    for header in ("Predicted conversion", "Uncertainty (sd)", "Optimistic score", "Versus best arm"):
        assert header in table.stdout
    assert "10.20%" in table.stdout and "edge: best time_of_day" in table.stdout
    assert diff.read_text() == suggest(engine, "expand", file=world).suggestions[0].diff

    unknown = _run("suggest", "--campaign", "nope")
    assert unknown.returncode == 4 and unknown.stderr == "error: unknown campaign 'nope'; known: expand\n"
    other = tmp_path / "other.yaml"
    other.write_text(YAML.replace("name: expand", "name: other"))
    refused = _run("suggest", "--campaign", "expand", "--file", str(other))
    assert (
        refused.returncode == 2
        and refused.stderr == f"error: {other}: defines campaign 'other', not 'expand'\n"
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        YAML.replace("[email, sms]", "[email]").replace(
            "exclusions:\n  - {channel: sms, time_of_day: afternoon}\n", ""
        )
    )
    refused = _run("suggest", "--campaign", "expand", "--file", str(changed))
    assert refused.returncode == 2 and "differ from the stored 'expand'" in refused.stderr
    assert _run("suggest", "--campaign", "expand", "--top", "0").returncode == 2
    with pytest.raises(NotFound):
        suggest(engine, "nope")


def test_block_lists_are_edited_in_place_and_unknown_layouts_re_rendered(tmp_path: Path) -> None:
    from pipelines.suggest_yaml import edit_text

    block = YAML.replace(
        "  time_of_day: [morning, afternoon]  # evening not tried yet\n",
        "  time_of_day:\n    - morning\n    - afternoon\n",
    )
    path = tmp_path / "block.yaml"
    path.write_text(block)
    spec = load_campaign(path)
    edited, kept = edit_text(block, spec, Change.add_value("time_of_day", "evening"))
    assert kept and edited == block.replace("    - afternoon\n", "    - afternoon\n    - evening\n")
    # A layout the targeted edit does not know (a block-style rule): the definition re-rendered.
    odd = YAML.replace(
        "  - {channel: sms, time_of_day: afternoon}\n", "  - channel: sms\n    time_of_day: afternoon\n"
    )
    path.write_text(odd)
    edited, kept = edit_text(
        odd, load_campaign(path), Change.drop_exclusions([{"channel": "sms", "time_of_day": "afternoon"}])
    )
    path.write_text(edited)
    assert not kept and load_campaign(path).exclusions == [] and len(load_campaign(path).arms()) == 4
