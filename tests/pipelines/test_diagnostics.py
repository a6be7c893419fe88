"""Days to converge (pipelines.diagnostics.convergence), on hand-written allocations: no database."""

from __future__ import annotations

from datetime import date, timedelta

from pipelines.diagnostics import convergence

D = [date(2026, 3, 1) + timedelta(days=k) for k in range(6)]


def test_the_run_through_the_last_decision_day_counts_and_empty_days_are_skipped() -> None:
    # arm 7 tops day 1, arm 9 days 2, 4, 5, 6 (day 3 had no decision) with at least half the sends
    out = convergence(D, [7, 9, None, 9, 9, 9], [0.9, 0.5, None, 0.6, 0.8, 0.7])
    assert (out["converged"], out["since"], out["arm_id"], out["days_to_converge"]) == (True, D[1], 9, 2)


def test_a_share_below_the_threshold_breaks_the_run() -> None:
    out = convergence(D, [9, 9, 9, 9, 9, 9], [0.9, 0.9, 0.9, 0.49, 0.9, 0.9])
    assert out["converged"] is False and "the last 2 decision day(s)" in out["reason"]
    assert convergence(D, [9] * 6, [0.49] * 6)["reason"].startswith("not yet: the last 0")
    assert convergence(D, [None] * 6, [None] * 6)["reason"] == "no treatment decision in the window"


def _campaign(policy: dict):
    from pipelines.campaign_spec import CampaignSpec
    from pipelines.campaign_store import Campaign

    spec = CampaignSpec.model_validate(
        {
            "name": "ope-rotation",
            "start_date": "2026-03-01",
            "parameters": {"channel": ["email", "sms"]},
            "policy": policy,
        }  # fmt: skip
    )
    return Campaign(1, spec, [11, 12], [{"channel": "email"}, {"channel": "sms"}], 11)


def test_a_rotation_campaign_is_compared_with_each_of_its_strategies() -> None:
    import numpy as np
    import pandas as pd

    from pipelines.policy_estimates import policy_estimates

    campaign = _campaign({"name": "rotation", "params": {"strategies": ["ucb", "epsilon_greedy"],
                                                         "epsilon_greedy": {"epsilon": 0.2}}})  # fmt: skip
    # four matured treatment decisions of young_low, two per arm at propensity 0.5; sms converts once
    logged = pd.DataFrame(
        {"segment": ["young_low"] * 4, "arm_id": [11, 11, 12, 12], "propensity": [0.5] * 4,
         "treatment_group": ["treatment"] * 4, "matured": [1] * 4, "converted": [0, 0, 1, 0]}
    )  # fmt: skip
    pulls = np.zeros((9, 2))
    pulls[0] = [100, 100]
    rewards = np.zeros((9, 2))
    rewards[0] = [5, 20]  # sms far ahead: epsilon-greedy gives it 1 - 0.2 / 2 = 0.9
    by = {p["policy"]: p for p in policy_estimates(campaign, logged, pulls, rewards)["policies"]}
    assert list(by) == ["logging", "uniform", "greedy_posterior_mean", "campaign_policy:rotation",
                        "strategy:ucb", "strategy:epsilon_greedy"]  # fmt: skip
    # IPS of epsilon-greedy: the one conversion (sms) weighted 0.9 / 0.5, over 4 decisions
    assert by["strategy:epsilon_greedy"]["ips"]["value"] == 0.9 / 0.5 / 4
    assert by["greedy_posterior_mean"]["ips"]["value"] == 1 / 0.5 / 4
