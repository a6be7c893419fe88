"""`campaignopt simulate`: table, JSON, chart and one-line errors with exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pipelines.cli import main

SMALL = ["--days", "3", "--sends-per-day", "300"]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    """A small copy of the default scenario: fast to simulate."""
    from pipelines.simulator.scenario import DEFAULT_SCENARIO

    path = tmp_path_factory.mktemp("scenarios") / "small.yaml"
    path.write_text(DEFAULT_SCENARIO.read_text().replace("customers: 100000", "customers: 3000"))
    return path


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["campaignopt", "simulate", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_reports_every_policy_with_standard_errors(monkeypatch, capsys, scenario_file):
    code, out, err = run(
        monkeypatch, capsys, "--scenario", str(scenario_file), "--policies", "thompson,ucb", "--seeds", "2",
        "--json", *SMALL,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    labels = [s["label"] for s in data["summaries"]]
    assert labels == ["thompson", "ucb", "uniform", "static_ab", "best_arm", "oracle"]
    thompson = data["summaries"][0]
    for key in ("expected_conversions", "realised_conversions", "regret", "share_of_oracle"):
        assert set(thompson[key]) == {"mean", "se"} and thompson[key]["se"] is not None
    assert {"lift_vs_uniform", "lift_vs_static_ab", "days_to_converge"} <= set(thompson)
    assert data["seeds"] == [0, 1] and data["days"] == 3


def test_table_and_plot(monkeypatch, capsys, scenario_file, tmp_path):
    chart = tmp_path / "curves.png"
    code, out, err = run(
        monkeypatch,
        capsys,
        "--scenario",
        str(scenario_file),
        "--policies",
        "thompson",
        "--plot",
        str(chart),
        *SMALL,
    )
    assert code == 0, err
    assert "thompson" in out and "oracle" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_scenario_file_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narms: {channel: [email]}\nloop: {sends_per_day: -5}\n")
    code, out, err = run(monkeypatch, capsys, "--scenario", str(bad))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert str(bad) in err and "loop.sends_per_day" in err


def test_unknown_policy_is_one_line_and_exit_2(monkeypatch, capsys, scenario_file):
    code, out, err = run(
        monkeypatch, capsys, "--scenario", str(scenario_file), "--policies", "thompson,magic"
    )
    assert code == 2
    assert "--policies: unknown policy 'magic'" in err and "Traceback" not in err
