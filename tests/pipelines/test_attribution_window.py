"""Attribution windows as durations: what a campaign file may write, one line for what it may
not, how each is stored, and the two rules (calendar days; exact timestamps)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.attribution import AttributionWindow, parse_window
from pipelines.campaign_spec import CampaignSpec, load_campaign
from pipelines.errors import UserError

MINIMAL = """
name: tiny
start_date: 2026-11-01
parameters:
  channel: [email, sms]
"""


def load(tmp_path: Path, extra: str) -> CampaignSpec:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL + extra)
    return load_campaign(path)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("attribution_window: 4 hours\n", "attribution_window: '4 hours' is not a duration: write a"),
        ("attribution_window: 0m\n", "attribution_window: '0m' is too short: the window must be at least 1m"),
        ("attribution_window: 0d\n", "attribution_window: '0d' is too short"),
        (
            "attribution_window: -1h\n",
            "attribution_window: '-1h' is negative: the window must be at least 1m",
        ),
        ("attribution_window: 1.5h\n", "attribution_window: '1.5h': whole numbers only, write 90m"),
        ("attribution_window: 2.5d\n", "attribution_window: '2.5d': whole numbers only, write 60h"),
        (
            "attribution_window: 91d\n",
            "attribution_window: '91d' is too long: the window must be at most 90d",
        ),
        ("attribution_window: 2161h\n", "attribution_window: '2161h' is too long"),
        ("attribution_window: 30s\n", "attribution_window: '30s' is not a duration"),
        ("attribution_window: 3\n", "attribution_window: 3 is not a duration: write a whole number"),
        (
            "attribution_window: 4h\nattribution_window_days: 2\n",
            "attribution_window and attribution_window_days are both given: give one of them",
        ),
        (
            "attribution_window_days: 91\n",
            "attribution_window_days: Input should be less than or equal to 90",
        ),
        ("default_reward: 1.5\n", "default_reward: Input should be less than or equal to 1"),
        ("default_reward: -0.1\n", "default_reward: Input should be greater than or equal to 0"),
        ("default_reward: .nan\n", "default_reward: Input should be a finite number"),
    ],
)
def test_bad_windows_and_default_rewards_are_one_line_naming_the_field(
    tmp_path: Path, extra: str, expected: str
) -> None:
    with pytest.raises(UserError) as err:
        load(tmp_path, extra)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'c.yaml'}: ") and "\n" not in message
    assert expected in message, message


def test_the_old_day_field_is_stored_exactly_as_before(tmp_path: Path) -> None:
    """No new keys in the definition of a campaign that does not use them: its checksum, and so
    `campaign apply`'s "unchanged", stay what they were."""
    spec = load(tmp_path, "attribution_window_days: 3\n")
    assert spec.window == AttributionWindow(3, "d")
    definition = spec.as_json()
    assert definition["attribution_window_days"] == 3
    assert "attribution_window" not in definition and "default_reward" not in definition
    assert load(tmp_path, "").as_json()["attribution_window_days"] == 7  # the default
    assert load(tmp_path, "attribution_window_days: 0\n").window == AttributionWindow(0, "d")


@pytest.mark.parametrize(
    ("extra", "days", "window", "seconds"),
    [
        ("attribution_window: 2d\n", 2, None, 172800),  # a day window is stored as one
        ("attribution_window: 30m\n", None, "30m", 1800),
        ("attribution_window: 4h\n", None, "4h", 14400),
        ("attribution_window: 2160h\n", None, "2160h", 90 * 86400),
        ("attribution_window: 1m\ndefault_reward: 0.25\n", None, "1m", 60),
    ],
)
def test_durations_are_stored_in_one_field_and_read_back_the_same(
    tmp_path: Path, extra: str, days: int | None, window: str | None, seconds: int
) -> None:
    spec = load(tmp_path, extra)
    definition = spec.as_json()
    assert (definition["attribution_window_days"], definition.get("attribution_window")) == (days, window)
    assert spec.window.seconds == seconds and spec.window.by_day == (days is not None)
    again = CampaignSpec.model_validate(definition)  # as ops.campaigns.definition is read back
    assert again == spec and again.checksum() == spec.checksum()


def test_day_rule_counts_calendar_days_and_time_rule_counts_the_clock() -> None:
    d = date(2026, 3, 1)
    decided = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    two_days, thirty = AttributionWindow.of_days(2), parse_window("30m")
    # Days: [d, d + 2] by UTC day, earlier hours of day d included; matures at d + 3, 00:00.
    assert two_days.attributes(d, decided, datetime(2026, 3, 1, 0, 5, tzinfo=UTC))
    assert two_days.attributes(d, decided, datetime(2026, 3, 3, 23, 59, tzinfo=UTC))
    assert not two_days.attributes(d, decided, datetime(2026, 3, 4, 0, 0, tzinfo=UTC))
    assert two_days.matures_at(d, decided) == datetime(2026, 3, 4, tzinfo=UTC)
    # Minutes: [decided_at, decided_at + 30m], across midnight; matures at decided_at + 30m.
    assert not thirty.attributes(d, decided, decided - timedelta(seconds=1))
    assert thirty.attributes(d, decided, decided + timedelta(minutes=30))
    assert not thirty.attributes(d, decided, decided + timedelta(minutes=30, seconds=1))
    assert thirty.matures_at(d, decided) == datetime(2026, 3, 2, 0, 20, tzinfo=UTC)
    assert (thirty.describe(), AttributionWindow(1, "d").describe()) == ("30 minutes", "1 day")
