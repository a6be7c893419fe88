"""Campaign definitions: arms from the parameter space, and one clear error per bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.campaign_spec import arm_key, load_campaign
from pipelines.errors import UserError

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name: tiny
start_date: 2026-11-01
parameters:
  channel: [email, branch]
  time_of_day: [morning, evening]
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_campaigns_load_with_expected_arm_counts() -> None:
    small = load_campaign(REPO / "campaigns/card_cashback.yaml")
    big = load_campaign(REPO / "campaigns/cross_sell.yaml")
    assert len(small.arms()) == 8
    # 4 offers x 5 channels x 3 times = 60, minus 4 branch-in-the-evening arms.
    assert len(big.arms()) == 56
    assert not any(a["channel"] == "branch" and a["time_of_day"] == "evening" for a in big.arms())
    assert big.control_arm() == {"offer_type": "credit_card", "channel": "email", "time_of_day": "morning"}


def test_exclusions_remove_matching_combinations(tmp_path: Path) -> None:
    spec = load_campaign(
        write(tmp_path, MINIMAL + "exclusions:\n  - {channel: branch, time_of_day: evening}\n")
    )
    assert [arm_key(a) for a in spec.arms()] == [
        "channel=email|time_of_day=morning",
        "channel=email|time_of_day=evening",
        "channel=branch|time_of_day=morning",
    ]
    assert spec.control_arm() == {"channel": "email", "time_of_day": "morning"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("holdout_share: 0.7\n", "holdout_share: Input should be less than or equal to 0.5"),
        ("holdout_share: -0.1\n", "holdout_share: Input should be greater than or equal to 0"),
        ("colour: red\n", "colour: Extra inputs are not permitted"),
        ("exclusions:\n  - {channel: sms}\n", "channel='sms' is not in the parameter space"),
        ("policy: {name: thompson, params: {prior_alpha: -1}}\n", "policy 'thompson'"),
        ("policy: {name: magic}\n", "policy 'magic'"),
    ],
)
def test_bad_fields_name_file_field_and_problem(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(UserError) as err:
        load_campaign(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_unknown_parameter_value_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("branch", "carrier_pigeon"))
    with pytest.raises(
        UserError, match=r"parameters: channel: unknown value 'carrier_pigeon'; allowed: email"
    ):
        load_campaign(path)


def test_empty_parameter_space_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: empty\nstart_date: 2026-11-01\nparameters: {}\n")
    with pytest.raises(UserError, match="parameters: the parameter space is empty"):
        load_campaign(path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: broken\nparameters: [channel: {email\n")
    with pytest.raises(UserError, match=r"malformed YAML at line \d+, column \d+"):
        load_campaign(path)


def test_everything_excluded_is_refused(tmp_path: Path) -> None:
    text = (
        "name: none\nstart_date: 2026-11-01\nparameters:\n  channel: [sms]\nexclusions:\n  - {channel: sms}\n"
    )
    with pytest.raises(UserError, match="every arm is excluded"):
        load_campaign(write(tmp_path, text))
