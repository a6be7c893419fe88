"""The KPI table of `campaignopt daily` and `demo`: full headers, percentages, aligned figures.

The rows are shaped as pipelines.monitor.campaign_kpis returns them (its figures are tested in
test_monitor.py); here only how a person reads them: 0.02671 reads 2.7%, a lift 0.0063 reads
+0.6 pp, and on 80 columns the headers wrap between words instead of ending in "…".
"""

from __future__ import annotations

import re

from pipelines.cli.figures import print_kpi_table
from pipelines.cli.output import console

DAILY_COLUMNS = [
    "campaign",
    "treatment_sends",
    "treatment_rate",
    "control_rate",
    "lift",
    "lift_ci",
    "exploration_rate",
    "roi",
]  # fmt: skip (the columns `campaignopt daily` prints)
KPIS = [
    {"campaign": "card-cashback", "treatment_sends": 12_034, "treatment_rate": 0.02671, "control_sends": 3010,
     "control_rate": 0.02041, "lift": 0.0063, "lift_ci_low": -0.00102, "lift_ci_high": 0.01362,
     "exploration_rate": 0.25, "estimated_regret": 12.34, "roi": 1.5},
    {"campaign": "mon-new", "treatment_sends": 1, "treatment_rate": float("nan"), "control_sends": 0,
     "control_rate": None, "lift": float("nan"), "lift_ci_low": float("-inf"), "lift_ci_high": float("inf"),
     "exploration_rate": 0.0, "estimated_regret": None, "roi": None},
]  # fmt: skip


def _render(width: int, columns: list[str]) -> str:
    saved = console.width
    console.width = width
    try:
        with console.capture() as captured:
            print_kpi_table(KPIS, "KPIs so far", columns)
    finally:
        console.width = saved
    return captured.get()


def test_rates_read_as_percentages_and_lift_in_points() -> None:
    wide = _render(160, DAILY_COLUMNS)
    row = next(line for line in wide.splitlines() if line.startswith("card-cashback"))
    assert re.fullmatch(
        r"card-cashback +12,034 +2\.7% +2\.0% +\+0\.6 pp +-0\.1 pp to \+1\.4 pp +25\.0% +150\.0%",
        row.rstrip(),
    ), row
    empty = next(line for line in wide.splitlines() if line.startswith("mon-new"))
    assert re.fullmatch(r"mon-new +1 +- +- +- +- +0\.0% +-", empty.rstrip()), empty  # nan/inf: "-"
    for header in ("Campaign", "Treatment sends", "Treatment conversion", "Holdout conversion", "Lift 95% CI",
                   "Exploration share", "ROI"):  # fmt: skip
        assert header in wide, header
    assert "0.02671" not in wide and "treatment_" not in wide


def test_on_80_columns_headers_wrap_whole_and_nothing_is_cut() -> None:
    narrow = _render(80, DAILY_COLUMNS)
    assert "…" not in narrow and max(map(len, narrow.splitlines())) <= 80
    words = set(narrow.split())
    assert {"Treatment", "sends", "conversion", "Holdout", "Exploration", "share", "95%", "CI"} <= words
    assert "12,034" in words and "2.7%" in words and "+1.4" in words
