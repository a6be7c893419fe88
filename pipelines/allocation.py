"""Cost- and capacity-aware allocation of a day's list (issue 12, part 3).

A campaign opts in with ``objective: expected_value`` and/or ``capacities`` (pipelines/campaign_spec.py).
Then each treatment customer i and allowed arm k get a value ``v[i, k]``: the expected value
P(convert) x reward.conversion_value - the arm's channel cost (or, with the reward objective, the
expected reward), with P(convert) the champion model's score, or without a model the segment's
posterior mean. Capacity j uses ``usage[j, k]`` per send of arm k (1 for max_sends and max_share,
the channel cost for max_cost).

1. Prices: a linear program on a sample of the day's customers (:func:`lp_prices`, HiGHS through
   scipy) gives one dual price ``lam[j]`` per capacity, in value units.
2. Choice (:func:`priced_choice`): with probability ``1 - exploration`` the customer gets
   ``k* = argmax_k v[i, k] - sum_j lam[j] usage[j, k]``, otherwise a draw from the campaign's
   policy (its exact plan probabilities ``pi``), thinned on a capacity's arms (``keep``) where
   exploring alone would take more than EXPLORE_SHARE of it. The logged propensity is the exact
   mixture ``e pi[k] keep[k]``, plus the rest of the mass on ``k*``. A fixed tiny per-(customer,
   arm) tie-break (a function of the day's audience, not a draw of the decision) splits customers
   who tie at the price, as the LP's fractional solution splits them.
3. Repair (:func:`repair`): a sample's prices can overrun; the whole list is then made to hold
   every capacity exactly by moving the overflow with the least regret per unit of capacity to each
   customer's best *free* arm (one that uses no capacity, so a move never overflows another
   capacity), recorded as ``selected_by = 'capacity'`` with the mixture's propensity of that arm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from pipelines.campaign_spec import CampaignSpec, _matches

TIE_BREAK = 1e-6  # relative size of the fixed tie-break against the values' scale
# At most this share of a capacity goes to exploration: beyond it the policy's draws of the
# capacity's arms are thinned (the thinned mass goes to the priced argmax), else an exploring
# policy alone could overrun a small capacity no price can then protect.
EXPLORE_SHARE = 0.5
SELECTED_BY_CAPACITY = "capacity"


@dataclass(frozen=True)
class Allocation:
    """A campaign's allocation rule over its arms, and the day's prices once solved."""

    usage: np.ndarray  # (J, K) capacity use of one send of each arm
    kinds: tuple[str, ...]  # max_sends | max_cost | max_share, per capacity
    limits: np.ndarray  # (J,) the limits as written (a share for max_share)
    names: tuple[str, ...]  # "channel=sms max_cost" for logs and the prices table
    arm_value: float  # value of one unit of reward (conversion_value, or 1 for the reward objective)
    arm_cost: np.ndarray  # (K,) cost subtracted from the value (0 for the reward objective)
    exploration: float
    prices: np.ndarray  # (J,) dual prices in value units; zeros until solved
    explore_keep: np.ndarray | None = None  # (J,) share of the policy's draws of a capacity kept

    @property
    def keep(self) -> np.ndarray:
        """(K,) the share of the policy's draws of each arm that stays exploration."""
        if self.explore_keep is None or not len(self.kinds):
            return np.ones(self.usage.shape[1])
        thinned = np.where(self.usage > 0, self.explore_keep[:, None], 1.0)
        return thinned.min(axis=0)

    @property
    def free(self) -> np.ndarray:
        """Arms that use no capacity: the repair's destinations."""
        return ~(self.usage > 0).any(axis=0)

    def with_prices(self, prices: np.ndarray, explore_keep: np.ndarray | None = None) -> Allocation:
        keep = None if explore_keep is None else np.asarray(explore_keep, dtype=np.float64)
        return replace(self, prices=np.asarray(prices, dtype=np.float64), explore_keep=keep)

    def mixture(self, policy_probs: np.ndarray, best: np.ndarray) -> np.ndarray:
        """(n, K) the exact choice distribution: e x pi x keep, the rest on the priced argmax."""
        mix = self.exploration * policy_probs * self.keep[None, :]
        mix[np.arange(len(best)), best] += 1.0 - mix.sum(axis=1)
        return mix

    def budgets(self, n_list: float) -> np.ndarray:
        """Absolute limits of a list of ``n_list`` sends (a share becomes whole sends, rounded down)."""
        out = self.limits.astype(np.float64).copy()
        for j, kind in enumerate(self.kinds):
            if kind == "max_share":
                out[j] = np.floor(self.limits[j] * n_list + 1e-9)
        return out


def allocation_for(spec: CampaignSpec, arm_params: list[dict[str, str]]) -> Allocation | None:
    """The allocation of a campaign with an expected-value objective or capacities; else None
    (the list is then decided exactly as without this module)."""
    expected_value = spec.objective is not None and spec.objective.kind == "expected_value"
    caps = spec.capacities or []
    if not expected_value and not caps:
        return None
    cost = np.array([spec.arm_cost(a) for a in arm_params])
    usage = np.zeros((len(caps), len(arm_params)))
    for j, cap in enumerate(caps):
        hit = np.array([_matches(a, cap.where) for a in arm_params], dtype=bool)
        usage[j] = np.where(hit, cost if cap.kind == "max_cost" else 1.0, 0.0)
    where = [",".join(f"{k}={v}" for k, v in c.where.items()) for c in caps]
    return Allocation(
        usage=usage,
        kinds=tuple(c.kind for c in caps),
        limits=np.array([c.limit for c in caps], dtype=np.float64),
        names=tuple(f"{w} {c.kind}" for w, c in zip(where, caps, strict=True)),
        arm_value=spec.reward.conversion_value if expected_value else 1.0,
        arm_cost=cost if expected_value else np.zeros(len(arm_params)),
        exploration=spec.objective.exploration if spec.objective is not None else 0.1,
        prices=np.zeros(len(caps)),
    )


def expected_values(alloc: Allocation, proba: np.ndarray) -> np.ndarray:
    """v[i, k] = P(convert)[i, k] x value - cost[k], shape (n, K)."""
    return proba * alloc.arm_value - alloc.arm_cost[None, :]


def tie_break(alloc: Allocation, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The fixed per-(customer, arm) tie-break added to the values before pricing."""
    scale = TIE_BREAK * max(alloc.arm_value, float(alloc.arm_cost.max(initial=0.0)), 1e-9)
    return rng.random(shape) * scale


def lp_prices(
    values: np.ndarray,
    allowed: np.ndarray,
    usage: np.ndarray,
    budgets: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Dual prices of the capacities for the assignment LP of a sample of m customers:

        max sum_ik w[i] v[i,k] x[i,k]  s.t.  sum_k x[i,k] = 1,
            sum_ik w[i] usage[j,k] x[i,k] <= budgets[j],  x >= 0, x[i,k] = 0 where not allowed,

    with w[i] the customer's exploit share (1 without ``weights``): the objective and the usage
    scale alike, so the prices stay in value units (argmax_k v - lam usage per customer).

    Each capacity row has a slack at a price far above any value, so an unreachable budget (the
    sample's customers have only capped arms) still solves: its price then makes every capped arm
    lose. Returns lam (J,) >= 0 in value units."""
    m, k = values.shape
    n_caps = usage.shape[0]
    if n_caps == 0 or m == 0:
        return np.zeros(n_caps)
    rows, cols = np.nonzero(allowed)
    nvar = len(rows)
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    penalty = 1e3 * (float(np.abs(values[rows, cols]).max(initial=0.0)) + 1.0)
    c = np.r_[-w[rows] * values[rows, cols], np.full(n_caps, penalty)]
    a_eq = sp.csr_matrix((np.ones(nvar), (rows, np.arange(nvar))), shape=(m, nvar + n_caps))
    use = usage[:, cols] * w[rows][None, :]  # (J, nvar), dense: J is a handful of capacities
    a_ub = sp.hstack([sp.csr_matrix(use), -sp.identity(n_caps, format="csr")], format="csr")
    res = scipy.optimize.linprog(
        c,
        A_ub=a_ub,
        b_ub=np.maximum(budgets, 0.0),
        A_eq=a_eq,
        b_eq=np.ones(m),
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"the capacity LP did not solve: {res.message}")
    return np.maximum(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0)


def solve_prices(
    alloc: Allocation,
    values: np.ndarray,
    allowed: np.ndarray,
    policy_probs: np.ndarray,
    n_list: float,
    n_treat_list: float,
    control_usage: np.ndarray,
) -> Allocation:
    """``alloc`` with the prices of a sample: values, allowed mask and the policy's plan
    probabilities of m sampled treatment customers; ``n_list``/``n_treat_list`` the list's
    estimated size and treatment count; ``control_usage`` (J,) the control group's estimated use.

    The sample's budget is the list's limits minus the control group's use, shrunk to the sample
    (m of ``n_treat_list``); exploration keeps at most EXPLORE_SHARE of it (``explore_keep``), and
    the LP prices what is left for the priced argmax."""
    m = len(values)
    budgets = (alloc.budgets(n_list) - control_usage) * (m / max(n_treat_list, 1.0))
    # Customers whose every allowed arm uses a capacity use it whatever the price or the draw:
    # exploration gets a share of what they leave, and the LP's budget never goes below their use
    # (it would only be infeasible, its slack price meaningless).
    least = np.where(allowed[:, None, :], alloc.usage[None, :, :], np.inf).min(axis=2)  # (m, J)
    forced = least.sum(axis=0)
    explore = alloc.exploration * (policy_probs @ alloc.usage.T).sum(axis=0)  # (J,) unthinned
    room = EXPLORE_SHARE * np.maximum(budgets - forced, 0.0)
    keep = np.where(explore > room, room / np.maximum(explore, 1e-300), 1.0)
    # The choice is e pi keep (the policy's draws, whatever the prices) + the rest on the priced
    # argmax: the LP steers only the rest, each customer's weight.
    explored = alloc.exploration * policy_probs * alloc.with_prices(alloc.prices, keep).keep[None, :]
    explore_use = (explored @ alloc.usage.T).sum(axis=0)
    weights = 1.0 - explored.sum(axis=1)
    left = np.maximum(budgets - explore_use, (weights[:, None] * least).sum(axis=0) * (1 + 1e-9))
    prices = lp_prices(values, allowed, alloc.usage, left, weights)
    return alloc.with_prices(prices, keep)


@dataclass(frozen=True)
class PricedChoices:
    """Per-customer outcome of :func:`priced_choice`; arrays of shape (n,)."""

    arm: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray  # the arm came from the policy's draw, not the priced argmax
    value: np.ndarray  # v of the chosen arm
    fallback: np.ndarray  # best allowed free arm (-1: none), the repair's destination
    fallback_propensity: np.ndarray
    regret: np.ndarray  # v[arm] - v[fallback]: what a move to the fallback loses


def priced_choice(
    alloc: Allocation,
    values: np.ndarray,
    allowed: np.ndarray,
    policy_probs: np.ndarray,
    rng: np.random.Generator,
) -> PricedChoices:
    """Each customer's arm under the day's prices, with its exact propensity (module docstring).

    ``values`` already carry the tie-break; ``policy_probs`` are the policy's plan probabilities
    (rows sum to 1, zero where not allowed); ``rng`` draws the exploit-or-explore coin and the arm."""
    n, k = values.shape
    priced = np.where(allowed, values - (alloc.prices @ alloc.usage)[None, :], -np.inf)
    best = np.argmax(priced, axis=1)
    mix = alloc.mixture(policy_probs, best)
    u = rng.random(n)
    # Inverse CDF of the mixture: one uniform per customer gives an exact draw from mix.
    cdf = np.cumsum(mix, axis=1)
    arm = np.minimum((cdf < (u * cdf[:, -1])[:, None]).sum(axis=1), k - 1)
    arm = np.where(allowed[np.arange(n), arm], arm, best)  # float round-off at the last arm only
    rows = np.arange(n)
    free_values = np.where(allowed & alloc.free[None, :], values, -np.inf)
    fallback = np.argmax(free_values, axis=1)
    has_free = np.isfinite(free_values[rows, fallback])
    chosen_value = values[rows, arm]
    return PricedChoices(
        arm=arm.astype(np.int64),
        propensity=mix[rows, arm],
        explored=arm != best,
        value=chosen_value,
        fallback=np.where(has_free, fallback, -1).astype(np.int64),
        fallback_propensity=np.where(has_free, mix[rows, fallback], np.nan),
        regret=np.where(has_free, chosen_value - free_values[rows, fallback], np.nan),
    )


def list_usage(alloc: Allocation, arm: np.ndarray) -> np.ndarray:
    """Use of each capacity by a list whose sends are ``arm`` (n,): shape (J,)."""
    return alloc.usage[:, arm].sum(axis=1) if len(arm) else np.zeros(len(alloc.kinds))


def repair(
    alloc: Allocation,
    arm: np.ndarray,
    movable: np.ndarray,
    fallback: np.ndarray,
    regret: np.ndarray,
    order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The list's arms with every capacity held exactly: capacity by capacity, the sends over the
    limit move, least regret per unit of capacity first (ties: ``order``, e.g. the decision ids'
    rank), to their free fallback arm. Only ``movable`` rows with a fallback (>= 0) move (control
    customers keep their static arm). Returns (new arm, moved mask); a capacity that only unmovable
    sends overrun stays overrun (the caller logs it)."""
    arm = np.asarray(arm, dtype=np.int64).copy()
    moved = np.zeros(len(arm), dtype=bool)
    budgets = alloc.budgets(len(arm))
    for j in range(len(alloc.kinds)):
        use = alloc.usage[j, arm]
        over = use.sum() - budgets[j]
        if over <= 1e-9:
            continue
        cand = np.flatnonzero((use > 0) & movable & (fallback >= 0))
        by = np.lexsort((order[cand], regret[cand] / use[cand]))
        cand = cand[by]
        freed = np.cumsum(use[cand])
        take = cand[: int(np.searchsorted(freed, over - 1e-9)) + 1]
        arm[take] = fallback[take]
        moved[take] = True
    return arm, moved
