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


# -- values YAML accepts but a campaign must not: NaN, infinities, impossible dates, ... ----------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("channel_costs: {email: .inf}\n", "channel_costs.email: Input should be a finite number"),
        ("channel_costs: {email: -.inf}\n", "channel_costs.email: Input should be a finite number"),
        (
            "reward: {kind: weighted_engagement, weights: {click: .nan}}\n",
            "reward.weights.click: Input should be a finite number",
        ),
        ("reward: {conversion_value: .NaN}\n", "reward.conversion_value: Input should be a finite number"),
        (
            "reward: {conversion_value: 1.0e+400}\n",
            "reward.conversion_value: Input should be a finite number",
        ),
        ("audience: {min_income: 'nan'}\n", "audience.min_income: Input should be a finite number"),
        ("audience: {max_customers: .inf}\n", "audience.max_customers: Input should be a finite number"),
        ("holdout_share: .nan\n", "holdout_share: Input should be a finite number"),
        (
            "policy: {name: thompson, params: {prior_alpha: .inf}}\n",
            "policy.params: prior_alpha: Input should be a finite number, got inf",
        ),
        (
            "policy: {name: thompson, params: {extra: [1, {deep: -.inf}]}}\n",
            "policy.params: extra.1.deep: Input should be a finite number, got -inf",
        ),
        (
            "end_date: 2026-02-30\n",
            "end_date: Input should be a valid date or datetime, day value is outside",
        ),
        (
            "frequency_caps: {max_per_week: 99999999999}\n",
            "frequency_caps.max_per_week: Input should be less",
        ),
    ],
)
def test_non_finite_and_impossible_values_are_refused(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(UserError) as err:
        load_campaign(path)
    assert str(err.value).startswith(f"{path}: {expected}"), str(err.value)
    assert "\n" not in str(err.value)


def test_impossible_start_date_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("2026-11-01", "2026-13-01"))
    with pytest.raises(UserError) as err:
        load_campaign(path)
    assert str(err.value) == (
        f"{path}: start_date: Input should be a valid date or datetime, "
        "month value is outside expected range of 1-12"
    )


def test_the_model_itself_refuses_non_finite_floats() -> None:
    """The API validates with the models, not the YAML loader: they must refuse NaN on their own."""
    from pydantic import ValidationError

    from pipelines.campaign_spec import CampaignSpec

    base = {"name": "api", "start_date": "2026-11-01", "parameters": {"channel": ["email"]}}
    for bad in (
        {"channel_costs": {"email": float("nan")}},
        {"reward": {"weights": {"click": float("inf")}}},
        {"policy": {"name": "thompson", "params": {"prior_beta": [float("-inf")]}}},
        {"holdout_share": float("nan")},
    ):
        with pytest.raises(ValidationError, match="finite number"):
            CampaignSpec.model_validate({**base, **bad})
    assert CampaignSpec.model_validate(base).checksum()  # the base is fine


def test_latin1_file_is_named_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("name: tiny", "name: tiny\ndescription: Crédit").encode("latin-1"))
    with pytest.raises(UserError) as err:
        load_campaign(path)
    assert str(err.value) == (
        f"{path}: not UTF-8 text (byte 0xe9 at line 3, column 16); save the file as UTF-8"
    )


def test_utf8_with_bom_and_accents_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (MINIMAL + "description: Crédit à la carte\n").encode())
    assert load_campaign(path).description == "Crédit à la carte"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "name: other\n", "duplicate key name at line 7, column 1 (first at line 2)"),
        (
            MINIMAL + "audience:\n  min_age: 21\n  min_age: 30\n",
            "duplicate key audience.min_age at line 9, column 3 (first at line 8)",
        ),
        (
            MINIMAL.replace("  time_of_day: [morning, evening]", "  channel: [sms]"),
            "duplicate key parameters.channel at line 6, column 3 (first at line 5)",
        ),
        (
            MINIMAL + "exclusions:\n  - {channel: email, channel: branch}\n",
            "duplicate key exclusions.0.channel at line 8, column 22 (first at line 8)",
        ),
    ],
)
def test_duplicate_keys_at_any_depth_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_campaign(path)
    assert str(err.value) == f"{path}: {expected}"


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    # An alias repeats a node; it is not a duplicate key.
    text = MINIMAL + "exclusions:\n  - &rule {channel: branch, time_of_day: evening}\n  - *rule\n"
    assert len(load_campaign(write(tmp_path, text)).arms()) == 3
    merged = MINIMAL + "audience:\n  <<: {min_age: 30, max_age: 60}\n  max_age: 70\n"
    assert load_campaign(write(tmp_path, merged, "m.yaml")).audience.max_age == 70
