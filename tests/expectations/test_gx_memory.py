"""Great Expectations that remember: every result kept, every page kept, pages that work offline,
and volume checks against recent batches (real PostgreSQL, real GX)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.data_docs import external_urls
from pipelines.errors import ValidationFailed
from pipelines.settings import get_settings
from pipelines.validation import (
    data_docs_dir,
    validate_interactions,
    validate_send_list,
    validation_history,
    validation_results_dir,
)
from tests.conftest import reset_tables

pytestmark = pytest.mark.slow

TABLES = (
    "ops.feedback_holds, ops.feedback_volumes, ops.alerts, ops.quarantine, ops.ingested_files, "
    "ops.suppressions, ops.send_lists, "
    "ops.decisions, ops.arms, ops.campaigns, raw.interactions, raw.customers, raw.consents"
)
REPEAT_DAY = date(2027, 1, 20)  # validated many times
# 100, 120, 80 rows: median 100; more than the 14-day lookback after REPEAT_DAY
VOLUME_DAYS = [date(2027, 2, 10), date(2027, 2, 11), date(2027, 2, 12)]
LIST_DAYS = [date(2027, 3, 1), date(2027, 3, 2), date(2027, 3, 3)]  # 200, 220, 180 rows: median 200


@pytest.fixture(scope="module")
def world(engine: sa.Engine, test_home: Path) -> dict[str, int]:
    reset_tables(engine, TABLES)
    ids = {}
    for name in ("memory-one", "memory-two"):
        spec = CampaignSpec.model_validate(
            {
                "name": name,
                "start_date": "2027-01-01",
                "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email"]},
                "holdout_share": 0.1,
            }
        )
        ids[name] = apply_campaign(engine, spec).campaign_id
    with engine.connect() as conn:
        arms = dict(conn.execute(sa.text("select campaign_id, min(arm_id) from ops.arms group by 1")).all())
    return {
        "one": ids["memory-one"],
        "two": ids["memory-two"],
        "arm_one": arms[ids["memory-one"]],
        "arm_two": arms[ids["memory-two"]],
    }


def land(engine: sa.Engine, day: date, n: int, campaign: int, arm: int) -> None:
    """``n`` valid open events on ``day``."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from raw.interactions where logical_date = :d"), {"d": day})
        if n:
            conn.execute(
                sa.text(
                    """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                           event_type, value, occurred_at, logical_date, source_file)
                       values (:e, :e, :c, :campaign, :arm, 'open', 0, :at, :d, 'memory.csv')"""
                ),
                [
                    {
                        "e": f"{day}-{i}",
                        "c": f"c{i}",
                        "campaign": campaign,
                        "arm": arm,
                        "at": start + timedelta(seconds=i),
                        "d": day,
                    }
                    for i in range(n)
                ],
            )


def send_list(engine: sa.Engine, campaign: int, arm: int, day: date, n: int) -> None:
    """A list of ``n`` customers, every tenth in the control group (10%)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("delete from ops.decisions where campaign_id = :c and decision_date = :d"),
            {"c": campaign, "d": day},
        )
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:id, :c, :cust, :arm, :d, :at, 'thompson', 'test', 0.5, 'bandit', false,
                       :g, 'batch')"""
            ),
            [
                {
                    "id": f"{campaign}-{day}-{i}",
                    "c": campaign,
                    "cust": f"u{i:04d}",
                    "arm": arm,
                    "d": day,
                    "at": datetime.combine(day, time(6), tzinfo=UTC),
                    "g": "control" if i % 10 == 0 else "treatment",
                }
                for i in range(n)
            ],
        )


# -- every result and every page is kept ---------------------------------------------------------
def test_every_result_is_kept_in_gx_store_and_readable(engine: sa.Engine, world: dict[str, int]) -> None:
    land(engine, REPEAT_DAY, 30, world["one"], world["arm_one"])
    reports = [validate_interactions(REPEAT_DAY, data_docs=False) for _ in range(3)]
    land(engine, REPEAT_DAY, 30, world["one"], world["arm_two"])  # every arm now of the other campaign
    failed = validate_interactions(REPEAT_DAY, raise_on_failure=False, data_docs=False)
    assert not failed.success and failed.failed == ["arm_in_campaign"]

    kept = [
        v for v in validation_history(suite="interactions_batch") if v.run_name == "interactions-2027-01-20"
    ]
    assert [v.success for v in kept] == [True, True, True, False]
    assert [v.failed for v in kept] == [[], [], [], ["arm_in_campaign"]]
    assert all(v.evaluated == 9 for v in kept)
    assert [v.run_time.strftime("%Y%m%dT%H%M%S.%fZ") for v in kept] == [
        r.run_time for r in [*reports, failed]
    ]
    # one JSON document per run in GX's store, under the campaignopt home
    files = list(
        (validation_results_dir() / "interactions_batch" / "interactions-2027-01-20").rglob("*.json")
    )
    assert len(files) == 4
    assert validation_results_dir().is_relative_to(get_settings().home)


def test_ten_runs_leave_ten_pages_listed_in_the_index(engine: sa.Engine, world: dict[str, int]) -> None:
    day = REPEAT_DAY + timedelta(days=1)
    land(engine, day, 12, world["one"], world["arm_one"])
    pages = [validate_interactions(day).data_docs_path for _ in range(10)]
    assert len(set(pages)) == 10 and all(Path(p).is_file() for p in pages)
    docs = data_docs_dir()
    on_disk = list((docs / "validations" / "interactions_batch" / "interactions-2027-01-21").rglob("*.html"))
    assert len(on_disk) == 10
    index = (docs / "index.html").read_text()
    assert all(Path(p).relative_to(docs).as_posix() in index for p in pages)

    # A send-list validation afterwards keeps those pages and the other suite's page.
    send_list(engine, world["one"], world["arm_one"], day, 50)
    validate_send_list(world["one"], day, holdout_share=0.1)
    assert all(Path(p).is_file() for p in pages)
    assert (docs / "expectations" / "interactions_batch.html").is_file()
    assert (docs / "expectations" / "send_list.html").is_file()
    index = (docs / "index.html").read_text()
    assert all(Path(p).relative_to(docs).as_posix() in index for p in pages)


_LOCAL_REF = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']([^"'#?]+)""", re.IGNORECASE)


def test_data_docs_load_nothing_from_the_internet(engine: sa.Engine, world: dict[str, int]) -> None:
    day = REPEAT_DAY + timedelta(days=2)
    land(engine, day, 10, world["one"], world["arm_two"])  # a failing page too: it lists unexpected rows
    validate_interactions(day, raise_on_failure=False)
    pages = list(data_docs_dir().rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        html = page.read_text()
        assert external_urls(html) == [], page
        # and what the page loads instead is there
        refs = _LOCAL_REF.findall(html)
        assert refs, page
        missing = [r for r in refs if not (page.parent / r).resolve().is_file()]
        assert missing == [], (page, missing)
    index = (data_docs_dir() / "index.html").read_text()
    for library in ("jquery.min.js", "bootstrap.min.css", "bootstrap-table.min.js", "all.min.css"):
        assert re.search(rf'"static/vendor/[^"]*/{re.escape(library)}"', index), library


# -- volume checks -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def volume_history(engine: sa.Engine, world: dict[str, int]) -> date:
    for day, n in zip(VOLUME_DAYS, (100, 120, 80), strict=True):
        land(engine, day, n, world["one"], world["arm_one"])
    return VOLUME_DAYS[-1] + timedelta(days=1)


def test_small_first_days_pass_without_history(
    engine: sa.Engine, world: dict[str, int], volume_history: date
) -> None:
    # Two earlier days (100, 120) are too little history: a tiny third day passes.
    third = VOLUME_DAYS[2]
    land(engine, third, 3, world["one"], world["arm_one"])
    try:
        report = validate_interactions(third, data_docs=False)
        assert report.success and report.evaluated == 9  # no volume expectation yet
    finally:
        land(engine, third, 80, world["one"], world["arm_one"])


@pytest.mark.parametrize(("rows", "passes"), [(0, False), (1, False), (49, False), (50, True), (300, True)])
def test_empty_or_truncated_day_fails_against_recent_median(
    engine: sa.Engine, world: dict[str, int], volume_history: date, rows: int, passes: bool
) -> None:
    # Earlier days 100, 120, 80: median 100; floor ceil(0.5 * 100) = 50 rows.
    day = volume_history
    land(engine, day, rows, world["one"], world["arm_one"])
    report = validate_interactions(day, raise_on_failure=False, data_docs=False)
    assert report.success is passes and report.evaluated == 10
    if not passes:
        assert report.failed == ["volume_vs_recent_days"]
        assert report.details["volume_vs_recent_days"] == (
            f"observed {rows}; expected at least 50 rows = 50% of the median 100 of the 3 earlier days"
        )
        with pytest.raises(ValidationFailed, match=r"volume_vs_recent_days \(observed"):
            validate_interactions(day, data_docs=False)


def test_volume_share_is_a_setting(engine: sa.Engine, world: dict[str, int], volume_history: date) -> None:
    day = volume_history
    land(engine, day, 79, world["one"], world["arm_one"])
    strict = get_settings().model_copy(update={"volume_min_share": 0.8})  # floor 80
    assert not validate_interactions(day, strict, raise_on_failure=False, data_docs=False).success
    land(engine, day, 80, world["one"], world["arm_one"])
    assert validate_interactions(day, strict, data_docs=False).success
    lenient = get_settings().model_copy(update={"volume_min_history": 4})  # three days are not enough
    land(engine, day, 1, world["one"], world["arm_one"])
    assert validate_interactions(day, lenient, data_docs=False).success


def test_a_send_list_far_smaller_than_recent_lists_fails(engine: sa.Engine, world: dict[str, int]) -> None:
    one, arm = world["one"], world["arm_one"]
    for day, n in zip(LIST_DAYS, (200, 220, 180), strict=True):
        send_list(engine, one, arm, day, n)
    # The other campaign's big lists do not count for this one, nor this one's for it.
    for day in LIST_DAYS[:2]:
        send_list(engine, world["two"], world["arm_two"], day, 2_000)
    day = LIST_DAYS[-1] + timedelta(days=1)

    send_list(engine, one, arm, day, 60)  # median 200: floor 100
    report = validate_send_list(one, day, holdout_share=0.1, raise_on_failure=False, data_docs=False)
    assert report.failed == ["volume_vs_recent_lists"] and report.evaluated == 9
    assert report.details["volume_vs_recent_lists"] == (
        "observed 60; expected at least 100 rows = 50% of the median 200 "
        "of the 3 earlier lists of the campaign"
    )
    send_list(engine, one, arm, day, 100)
    assert validate_send_list(one, day, holdout_share=0.1, data_docs=False).success

    # Campaign two has two earlier lists only: its small list is a legitimate early day.
    send_list(engine, world["two"], world["arm_two"], LIST_DAYS[2], 20)
    small = validate_send_list(world["two"], LIST_DAYS[2], holdout_share=0.1, data_docs=False)
    assert small.success and small.evaluated == 8


def test_history_ignores_later_days_and_the_day_itself(engine: sa.Engine, world: dict[str, int]) -> None:
    """Re-running (or backfilling) a day sees only the days before it."""
    from pipelines.validation import suites

    s = suites()
    floor = s.volume_floor([100, 0, 120, 80], min_history=3, min_share=0.5)
    assert floor == s.VolumeFloor(min_rows=50, median=100.0, batches=3, min_share=0.5)
    assert s.volume_floor([100, 0, 120], min_history=3, min_share=0.5) is None  # an empty day is no history
    assert s.volume_floor([3, 4, 4], min_history=3, min_share=0.5).min_rows == 2  # rounded up
    # A backfill of the first volume day, after the later days landed: nothing earlier, no floor.
    report = validate_interactions(VOLUME_DAYS[0] - timedelta(days=1), data_docs=False)
    assert report.success and report.evaluated == 9 and report.rows == 0
