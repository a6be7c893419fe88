"""`campaignopt report` on the world of test_performance.py (tests/pipelines/perf_world.py).

In the window 06-01..06-30 at NOW (06-30 10:00): day 06-01 has treatment 100 sends, 12 conversions
(12.0%) and holdout 50 sends, 3 conversions (6.0%): lift +6.0 pp; day 06-25 is pending. The arms
are A (email; every decision of the holdout too: 60 + 50 + 10 + 5 + 5 = 130 sends) and B (sms, 40).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.cli.output import _default, console
from pipelines.performance import Window, campaign_performance, wilson_interval
from pipelines.report import campaign_report
from tests.pipelines.perf_world import DAY, LATE, NOW, seed_perf_world

CLI = str(Path(sys.executable).with_name("campaignopt"))
WINDOW = Window(DAY, NOW.date())
DAY_HEADERS = ("Decision day", "Treatment sends", "Treatment conversions", "Treatment rate",
               "Holdout sends", "Holdout conversions", "Holdout rate", "Lift")  # fmt: skip


@pytest.fixture(scope="module")
def world(engine: sa.Engine):
    return seed_perf_world(engine)


@pytest.fixture(scope="module")
def report(engine: sa.Engine, world) -> dict:
    return campaign_report(engine, world, WINDOW, now=NOW)


def test_the_report_is_campaign_performance_of_the_window_and_of_each_day(engine, world, report) -> None:
    assert report["performance"] == campaign_performance(engine, world, WINDOW, now=NOW)
    assert [d["date"] for d in report["days"]] == [DAY, LATE]  # quiet days get no row
    first, late = report["days"]
    low, high = wilson_interval(12, 100)
    assert first["treatment"] == {"sends": 100, "matured": 100, "pending": 0, "conversions": 12,
                                  "conversion_rate": 0.12, "ci_low": low, "ci_high": high}  # fmt: skip
    assert (first["control"]["conversions"], first["control"]["matured"]) == (3, 50)
    assert first["lift"]["absolute"] == pytest.approx(0.06)
    assert late["treatment"]["pending"] == 10 and late["treatment"]["conversion_rate"] is None
    assert late["lift"] == {"absolute": None, "ci_low": None, "ci_high": None}
    arms = {a["arm_key"]: a for a in report["arms"]}
    assert [a["sends"] for a in arms.values()] == [130, 40]
    assert sum(a["prob_best"] for a in arms.values()) == pytest.approx(1.0)
    assert {(v["parameter"], v["value"]) for v in report["parameters"]} == {
        ("offer_type", "credit_card"), ("channel", "email"), ("channel", "sms")}  # fmt: skip


def _rendered(report: dict, width: int) -> str:
    from pipelines.cli.report import print_report

    saved = console.width
    console.width = width
    try:
        with console.capture() as captured:
            print_report(report)
    finally:
        console.width = saved
    return captured.get()


def test_the_table_has_full_headers_and_percentages_even_on_80_columns(report) -> None:
    wide = _rendered(report, 200)
    for header in (*DAY_HEADERS, "Treatment (optimized)", "Holdout (default arm)", "Posterior mean",
                   "95% credible interval", "P(best)", "Lift 95% CI (Newcombe)"):  # fmt: skip
        assert header in wide, header
    assert re.search(r"2026-06-01 +100 +12 +12\.0% +50 +3 +6\.0% +\+6\.0 pp", wide), wide
    assert re.search(r"Conversion rate +12\.0% +6\.0%", wide)
    assert re.search(r"Click-through \(of matured\) +15\.0% +2\.0%", wide)  # the funnel of perf_world
    assert re.search(r"Dwell seconds per view +30\.0 +60\.0", wide)
    assert re.search(r"Lift \(treatment - holdout\) +\+6\.0 pp", wide)
    assert "-5.4 pp to +14.7 pp" in wide  # Newcombe's interval of test_performance, in points
    narrow = _rendered(report, 80)
    assert "…" not in narrow and max(len(line) for line in narrow.splitlines()) <= 80
    words = set(narrow.split())
    for header in DAY_HEADERS:
        assert set(header.split()) <= words, header  # wrapped over lines, every word whole
    assert "12.0%" in narrow and "6.0%" in narrow


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "report", "--campaign", "perf", *args], capture_output=True, text=True,
                          env=os.environ | env)  # fmt: skip


def _performance_at(engine, world, payload: dict) -> dict:
    """campaign_performance at the CLI's clock, as JSON gives it back."""
    now = datetime.fromisoformat(payload["as_of"])
    return json.loads(json.dumps(campaign_performance(engine, world, WINDOW, now=now), default=_default))


def test_json_and_csv_give_campaign_performances_numbers(engine, world) -> None:
    out = _cli("--from", "2026-06-01", "--to", "2026-06-30", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["performance"] == _performance_at(engine, world, payload)
    assert isinstance(payload["performance"]["treatment"]["conversion_rate"], float)
    # the CLI's clock is today's: 06-25 has matured, p0's conversion counts (13 of 110)
    assert payload["performance"]["treatment"]["conversions"] == 13
    assert [d["date"] for d in payload["days"]] == ["2026-06-01", "2026-06-25"]

    out = _cli("--from", "2026-06-01", "--to", "2026-06-30", "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    figure = {(r["section"], r["date"], r["group"], r["arm"], r["measure"]): r["figure"] for r in rows}
    perf = payload["performance"]
    assert (
        float(figure[("summary", "", "treatment", "", "conversion_rate")])
        == perf["treatment"]["conversion_rate"]
    )
    assert int(figure[("summary", "", "control", "", "sends")]) == 55
    assert float(figure[("summary", "", "", "", "roi")]) == perf["roi"]
    assert float(figure[("summary", "", "", "", "lift_ci_low")]) == perf["lift"]["ci_low"]
    assert int(figure[("day", "2026-06-01", "treatment", "", "conversions")]) == 12
    assert float(figure[("day", "2026-06-25", "treatment", "", "conversion_rate")]) == 0.1
    arm = payload["arms"][1]
    assert float(figure[("arm", "", "", arm["arm_key"], "posterior_mean")]) == arm["posterior_mean"]
    assert {r["section"] for r in rows} == {"summary", "day", "arm", "parameter"}


def test_html_is_self_contained_with_one_div_per_chart(world, tmp_path: Path) -> None:
    target = tmp_path / "perf.html"
    out = _cli("--from", "2026-06-01", "--html", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"report written to {target}"
    page = target.read_text()
    assert not re.search(r"<script[^>]+src=[\"']?https?://", page)  # nothing from a CDN
    assert page.count("plotly.js v") >= 1 and len(page) > 3_000_000  # the bundle itself, inline
    assert page.count('class="plotly-graph-div"') == 3
    for title in ("Conversion rate per decision day", "Lift over the holdout", "Posterior mean conversion"):
        assert title in page


def test_unknown_campaign_and_bad_dates_are_refused_in_one_line(world) -> None:
    refusals = {
        ("--campaign", "nope"): r"error: unknown campaign 'nope'; known: .*perf",
        ("--from", "2026-13-01"): r"error: Invalid value for '--from': '2026-13-01' is not a date",
        ("--to", "June"): r"error: Invalid value for '--to': 'June' is not a date",
        (
            "--from",
            "2026-06-10",
            "--to",
            "2026-06-01",
        ): r"error: Invalid value for '--from': 2026-06-10 is after --to \(2026-06-01\)",
        ("--from", "2010-01-01", "--to", "2026-06-01"): r"error: --from: the window may span at most 3660",
    }
    for args, message in refusals.items():
        out = _cli(*args)
        assert out.returncode == (4 if "nope" in args else 2), (args, out.stderr)
        assert re.match(message, out.stderr) and out.stderr.count("\n") == 1, (args, out.stderr)
        assert out.stdout == ""


def test_a_date_default_is_the_last_30_days(world) -> None:
    """No --from/--to: the window ends today (UTC) and spans 30 days (resolve_window's default)."""
    out = subprocess.run([CLI, "report", "--campaign", "perf", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(out.stderr)
    window = json.loads(out.stdout)["window"]
    assert window["days"] == 30
    assert (
        date.fromisoformat(window["until"]) == datetime.fromisoformat(json.loads(out.stdout)["as_of"]).date()
    )
