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
   ``argmax_k v[i, k] - sum_j lam[j] usage[j, k]``, otherwise a draw from the campaign's policy
   (its exact plan probabilities ``pi``). The logged propensity is the exact mixture
   ``(1 - e) [k = k*] + e pi[k]``. A fixed tiny per-(customer, arm) tie-break (a function of the
   day's audience, not a draw of the decision) splits customers who tie at the price, as the
   LP's fractional solution splits them.
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

    @property
    def free(self) -> np.ndarray:
        """Arms that use no capacity: the repair's destinations."""
        return ~(self.usage > 0).any(axis=0)

    def with_prices(self, prices: np.ndarray) -> Allocation:
        return replace(self, prices=np.asarray(prices, dtype=np.float64))

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


def lp_prices(values: np.ndarray, allowed: np.ndarray, usage: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Dual prices of the capacities for the assignment LP of a sample of m customers:

        max sum_ik v[i,k] x[i,k]  s.t.  sum_k x[i,k] = 1,  sum_ik usage[j,k] x[i,k] <= budgets[j],
        x >= 0, x[i,k] = 0 where not allowed.

    Each capacity row has a slack at a price far above any value, so an unreachable budget (the
    sample's customers have only capped arms) still solves: its price then makes every capped arm
    lose. Returns lam (J,) >= 0 in value units."""
    m, k = values.shape
    n_caps = usage.shape[0]
    if n_caps == 0 or m == 0:
        return np.zeros(n_caps)
    rows, cols = np.nonzero(allowed)
    nvar = len(rows)
    penalty = 1e3 * (float(np.abs(values[rows, cols]).max(initial=0.0)) + 1.0)
    c = np.r_[-values[rows, cols], np.full(n_caps, penalty)]
    a_eq = sp.csr_matrix((np.ones(nvar), (rows, np.arange(nvar))), shape=(m, nvar + n_caps))
    use = usage[:, cols]  # (J, nvar), dense: J is a handful of capacities
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


def sample_budgets(
    alloc: Allocation,
    n_list: float,
    n_treat_list: float,
    control_usage: np.ndarray,
    explore_usage: np.ndarray,
    m: int,
) -> np.ndarray:
    """The capacity left to the priced (exploit) choices of an m-customer sample, in exploit units.

    The list's limits minus the control group's use (scaled from the sample), shrunk to the sample
    (m of ``n_treat_list`` treatment customers), minus the exploration's use in the sample, divided
    by the exploit share 1 - e (so the LP's x is the exploit choice and its duals stay in value
    units)."""
    budgets = alloc.budgets(n_list) - control_usage
    scaled = budgets * (m / max(n_treat_list, 1.0)) - explore_usage
    return scaled / (1.0 - alloc.exploration)


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
    estimated size and treatment count; ``control_usage`` (J,) the control group's estimated use."""
    explore = alloc.exploration * (policy_probs @ alloc.usage.T).sum(axis=0)
    budgets = sample_budgets(alloc, n_list, n_treat_list, control_usage, explore, len(values))
    return alloc.with_prices(lp_prices(values, allowed, alloc.usage, budgets))


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
    e = alloc.exploration
    mix = e * policy_probs
    mix[np.arange(n), best] += 1.0 - e
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
