"""The capacity LP, the priced choice and the exact repair on instances small enough to solve by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import allocation as A
from pipelines.allocation import Allocation, allocation_for, lp_prices, priced_choice, repair
from pipelines.campaign_spec import CampaignSpec


def _alloc(
    usage: list[list[float]], kinds: tuple[str, ...], limits: list[float], e: float = 0.0
) -> Allocation:
    u = np.array(usage, dtype=float)
    return Allocation(
        usage=u,
        kinds=kinds,
        limits=np.array(limits, dtype=float),
        names=kinds,
        arm_value=1.0,
        arm_cost=np.zeros(u.shape[1]),
        exploration=e,
        prices=np.zeros(len(kinds)),
    )


# 4 customers x 2 arms; arm 0 is worth 0 to everyone, arm 1 is worth 4, 3, 2, 1: all want arm 1.
VALUES = np.array([[0.0, 4.0], [0.0, 3.0], [0.0, 2.0], [0.0, 1.0]])
ALL = np.ones((4, 2), dtype=bool)


def test_one_binding_cap_prices_the_marginal_customer() -> None:
    # At most 2.5 sends of arm 1: customers 0 and 1 get it, customer 2 half of it. Complementary
    # slackness: customer 2 is fractional, so 2 - lam = 0 -> lam = 2 (0 and 1 gain 4-2, 3-2 >= 0,
    # 3 gains 1-2 < 0 and stays on arm 0).
    lam = lp_prices(VALUES, ALL, np.array([[0.0, 1.0]]), np.array([2.5]))
    assert lam == pytest.approx([2.0], abs=1e-9)


def test_a_cap_that_does_not_bind_costs_nothing() -> None:
    lam = lp_prices(VALUES, ALL, np.array([[0.0, 1.0]]), np.array([4.0]))
    assert lam == pytest.approx([0.0], abs=1e-9)


def test_a_money_cap_prices_per_unit_of_cost() -> None:
    # Arm 1 costs 2 of a budget of 5 (2.5 sends): the same cut, so the price per unit of money is
    # half the price per send: lam = 2 / 2 = 1.
    lam = lp_prices(VALUES, ALL, np.array([[0.0, 2.0]]), np.array([5.0]))
    assert lam == pytest.approx([1.0], abs=1e-9)


def test_an_unreachable_budget_still_solves_with_a_prohibitive_price() -> None:
    only_arm_1 = np.array([[False, True]] * 4)
    lam = lp_prices(VALUES, only_arm_1, np.array([[0.0, 1.0]]), np.array([2.0]))
    assert lam[0] > 4.0  # above every value: a priced choice would avoid the arm wherever it can


def test_priced_choice_argmax_and_exact_mixture_propensity() -> None:
    alloc = _alloc([[0.0, 1.0]], ("max_sends",), [2], e=0.2).with_prices(np.array([2.5]))
    policy = np.array([[0.5, 0.5]] * 4)  # the policy's own plan: a coin
    out = priced_choice(alloc, VALUES, ALL, policy, np.random.default_rng(0))
    best = np.array([1, 1, 0, 0])  # 4-2.5 and 3-2.5 > 0; 2-2.5 and 1-2.5 < 0
    # Propensity of the logged arm: 0.8 + 0.2 x 0.5 on the priced best arm, 0.2 x 0.5 otherwise.
    assert out.propensity == pytest.approx(np.where(out.arm == best, 0.9, 0.1))
    assert (out.explored == (out.arm != best)).all()
    assert (out.fallback == 0).all() and (out.regret == VALUES[np.arange(4), out.arm]).all()
    # Over many customers the draws follow the mixture.
    many = np.repeat(VALUES[:1], 20_000, axis=0)
    draw = priced_choice(
        alloc, many, np.ones_like(many, dtype=bool), np.full((20_000, 2), 0.5), np.random.default_rng(1)
    )
    assert (draw.arm == 1).mean() == pytest.approx(0.9, abs=0.01)


def test_repair_moves_exactly_the_overflow_with_least_regret() -> None:
    alloc = _alloc([[0.0, 1.0, 1.0]], ("max_sends",), [3])
    arm = np.array([1, 2, 1, 1, 2, 0, 1])  # 6 sends use the capacity of 3
    regret = np.array([5.0, 0.5, 2.0, 0.1, 3.0, np.nan, 1.0])
    movable = np.array([True, True, True, False, True, True, True])  # row 3: a control customer
    new, moved = repair(alloc, arm, movable, np.zeros(7, dtype=np.int64), regret, np.arange(7))
    # Overflow 3: the movable rows by regret are 1 (0.5), 6 (1.0), 2 (2.0), 4 (3.0), 0 (5.0).
    assert moved.tolist() == [False, True, True, False, False, False, True]
    assert new.tolist() == [1, 0, 0, 1, 2, 0, 0]
    assert (alloc.usage[0, new].sum()) == 3


def test_repair_of_a_money_cap_frees_at_least_the_overflow() -> None:
    alloc = _alloc([[0.0, 3.0, 1.0]], ("max_cost",), [5.0])
    arm = np.array([1, 1, 2, 2])  # cost 8 of 5: overflow 3
    regret = np.array([6.0, 9.0, 0.5, 2.0])  # per unit of cost: 2, 3, 0.5, 2
    new, moved = repair(alloc, arm, np.ones(4, dtype=bool), np.zeros(4, dtype=np.int64), regret, np.arange(4))
    # Row 2 (0.5 a unit) frees 1, then row 0 (2 a unit, before row 3 by order) frees 3: cost 4.
    assert moved.tolist() == [True, False, True, False]
    assert alloc.usage[0, new].sum() == 4.0


def test_share_caps_round_down_to_whole_sends() -> None:
    alloc = _alloc([[1.0, 0.0]], ("max_share",), [0.3])
    assert alloc.budgets(11).tolist() == [3.0]


SPEC = {
    "name": "priced",
    "start_date": "2026-06-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms", "branch"]},
    "channel_costs": {"email": 0.01, "sms": 0.05, "branch": 4.0},
    "reward": {"conversion_value": 120.0},
    "objective": "expected_value",
    "capacities": [
        {"where": {"channel": "sms"}, "max_cost": 30.0},
        {"where": {"channel": "branch"}, "max_sends": 40},
        {"where": {"offer_type": "loan"}, "max_share": 0.3},
    ],
}


def test_allocation_from_a_campaign_file() -> None:
    spec = CampaignSpec(**SPEC)
    alloc = allocation_for(spec, spec.arms())
    assert alloc is not None
    # Arms: (credit_card, loan) x (email, sms, branch) in the campaign's order.
    assert alloc.usage.tolist() == [
        [0.0, 0.05, 0.0, 0.0, 0.05, 0.0],
        [0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
    ]
    assert alloc.free.tolist() == [True, False, False, False, False, False]
    assert alloc.arm_value == 120.0 and alloc.arm_cost.tolist() == [0.01, 0.05, 4.0] * 2
    plain = CampaignSpec(**{k: v for k, v in SPEC.items() if k not in ("objective", "capacities")})
    assert allocation_for(plain, plain.arms()) is None


@pytest.mark.parametrize(
    ("capacities", "message"),
    [
        ([{"where": {"channel": "push"}, "max_sends": 3}], "channel='push' is not in the parameter space"),
        ([{"where": {"channel": "sms"}, "max_sends": -1}], "greater than or equal to 0"),
        ([{"where": {"channel": "sms"}}], "give exactly one of max_sends, max_cost, max_share, got none"),
        ([{"where": {"channel": "sms"}, "max_share": 1.5}], "less than or equal to 1"),
        (
            [{"where": {"channel": "email"}, "max_cost": 1.0}],
            "max_cost, but channel_costs gives its arms no cost",
        ),
        ([{"where": {}, "max_sends": 10}], "capacities cover every arm"),
    ],
)
def test_bad_capacities_name_the_problem(capacities: list[dict], message: str) -> None:
    spec = dict(SPEC, channel_costs={"sms": 0.05}, capacities=capacities)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        CampaignSpec(**spec)


def test_expected_value_alone_prices_nothing_and_picks_the_best_net_value() -> None:
    spec = CampaignSpec(**{k: v for k, v in SPEC.items() if k != "capacities"})
    alloc = allocation_for(spec, spec.arms())
    assert alloc is not None and alloc.kinds == () and alloc.free.all()
    # P(convert) 0.03 everywhere but branch at 0.05: 0.05 x 120 - 4 = 2.0 < 0.03 x 120 - 0.01 = 3.59.
    p = np.array([[0.03, 0.03, 0.05, 0.03, 0.03, 0.05]])
    values = A.expected_values(alloc, p)
    assert values[0].tolist() == pytest.approx([3.59, 3.55, 2.0, 3.59, 3.55, 2.0])
    one = priced_choice(
        alloc.with_prices(np.zeros(0)),
        values,
        np.ones((1, 6), dtype=bool),
        np.full((1, 6), 1 / 6),
        np.random.default_rng(3),
    )
    assert one.propensity[0] == pytest.approx(0.9 + 0.1 / 6 if one.arm[0] == 0 else 0.1 / 6)


def test_a_file_without_the_new_keys_dumps_and_checksums_as_before() -> None:
    plain = CampaignSpec(**{k: v for k, v in SPEC.items() if k not in ("objective", "capacities")})
    assert "objective" not in plain.as_json() and "capacities" not in plain.as_json()


def test_exploit_shares_scale_the_budget_and_keep_the_price_in_value_units() -> None:
    # Every customer exploits half the time: 1.25 exploit sends of budget are the 2.5 whole
    # customers of the first test, and the price stays 2 (values, not half-values).
    lam = lp_prices(VALUES, ALL, np.array([[0.0, 1.0]]), np.array([1.25]), weights=np.full(4, 0.5))
    assert lam == pytest.approx([2.0], abs=1e-9)


def test_exploration_is_thinned_to_half_of_a_small_capacity() -> None:
    # 100 customers, the policy draws arm 1 with probability 0.5, exploration 0.2: unthinned the
    # exploration alone sends 10 of a capacity of 8; it may take 4 (half), so keep = 4 / 10.
    alloc = _alloc([[0.0, 1.0]], ("max_sends",), [8], e=0.2)
    values = np.tile([0.0, 1.0], (100, 1))
    out = A.solve_prices(
        alloc, values, np.ones((100, 2), dtype=bool), np.full((100, 2), 0.5), 100, 100, np.zeros(1)
    )
    assert out.explore_keep == pytest.approx([0.4])
    assert out.prices == pytest.approx([1.0], abs=1e-9)  # 4 exploit sends for 100 equal gains of 1
    mix = out.mixture(np.full((1, 2), 0.5), np.array([0]))
    assert mix[0].tolist() == pytest.approx([1 - 0.2 * 0.5 * 0.4, 0.2 * 0.5 * 0.4])
