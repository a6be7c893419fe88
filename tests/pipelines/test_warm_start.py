"""Warm start: history mapped onto a new campaign's arms by shared parameter values, capped at a
strength; every figure by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.domain import SEGMENTS
from pipelines.errors import UserError
from pipelines.warm_start import history_from_file, map_history

NAN = float("nan")
# The old campaign: offer x channel (no cta); savings_account is not offered any more.
HISTORY = pd.DataFrame(
    [
        ("young_low", 100, 10, "loan", "email"),
        ("young_low", 300, 60, "loan", "sms"),
        ("young_low", 50, 5, "credit_card", "email"),
        ("young_low", 80, 8, "savings_account", "email"),
        ("*", 1000, 100, "credit_card", NAN),  # a file row for every segment and channel
    ],
    columns=["segment", "sends", "rewards", "offer_type", "channel"],
)
# The new campaign adds cta and app_push.
NEW_ARMS = [
    {"offer_type": "loan", "channel": "email", "cta": "direct"},
    {"offer_type": "loan", "channel": "email", "cta": "consultative"},
    {"offer_type": "loan", "channel": "sms", "cta": "direct"},
    {"offer_type": "credit_card", "channel": "app_push", "cta": "direct"},
    {"offer_type": "credit_card", "channel": "email", "cta": "direct"},
]
YL = SEGMENTS.index("young_low")


def test_evidence_reaches_the_arms_sharing_its_values_capped_at_the_strength() -> None:
    pulls, rewards = map_history(HISTORY, NEW_ARMS, strength=200)
    assert pulls.shape == (len(SEGMENTS), len(NEW_ARMS))
    # loan by email informs both cta variants alike (the old campaign had no cta): 100 sends, 10%
    assert (pulls[YL, 0], rewards[YL, 0]) == (100, 10) and (pulls[YL, 1], rewards[YL, 1]) == (100, 10)
    # loan by sms: 300 sends at 20% are worth at most 200: 200 and 40
    assert (pulls[YL, 2], rewards[YL, 2]) == pytest.approx((200, 40))
    # credit card by app_push: only the every-channel row, 1000 at 10% -> 200 and 20, in every segment
    assert np.allclose(pulls[:, 3], 200) and np.allclose(rewards[:, 3], 20)
    # credit card by email, young_low: 50 + 1000 sends, 105 conversions -> 200 sends at 10%
    assert (pulls[YL, 4], rewards[YL, 4]) == pytest.approx((200, 200 * 105 / 1050))
    # elsewhere only the every-segment row; savings_account informs nothing
    other = SEGMENTS.index("senior_high")
    assert (pulls[other, :3] == 0).all() and pulls[other, 4] == pytest.approx(200)


def test_strength_zero_or_no_history_is_a_cold_start() -> None:
    for pulls, rewards in (map_history(HISTORY, NEW_ARMS, 0), map_history(HISTORY.iloc[:0], NEW_ARMS, 50)):
        assert not pulls.any() and not rewards.any()
    with pytest.raises(UserError, match="strength: must be a finite number >= 0, got -1"):
        map_history(HISTORY, NEW_ARMS, -1)


def test_a_file_of_logged_sends(tmp_path: Path) -> None:
    good = tmp_path / "history.csv"
    good.write_text("offer_type,channel,sends,conversions\nloan,email,100,10\nloan,sms,300,60\n")
    frame = history_from_file(good, ["offer_type", "channel", "cta"])
    assert list(frame["segment"]) == ["*", "*"] and list(frame["rewards"]) == [10.0, 60.0]
    pulls, _ = map_history(frame, NEW_ARMS, 1_000)
    assert (pulls[:, 0] == 100).all() and (pulls[:, 2] == 300).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("offer_type,sends\nloan,10\n", " has no column 'conversions' (sends and conversions)"),
        ("offer_type,sends,conversions\nloan,10,1\nloan,ten,1\n", " line 3: sends is not a number >= 0"),
        ("offer_type,sends,conversions\nloan,10,11\n", " line 2: more conversions than sends"),
        ("region,sends,conversions\nnorth,10,1\n", ": column 'region' is not a parameter of the campaign"),
        ("segment,sends,conversions\nrich,10,1\n", ": unknown segment 'rich'"),
    ],
)
def test_a_bad_file_is_one_error_naming_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(UserError) as error:
        history_from_file(bad, ["offer_type", "channel"])
    assert str(error.value) == f"warm_start.file: {bad}{message}"
