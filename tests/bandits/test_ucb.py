"""UCB: the KL and UCB1 indices, batch allocation by hallucinated pulls, exact propensities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits import UCB, UCBParams
from bandits.ucb import bernoulli_kl, fill_allocation, kl_ucb, pulls_to_reach, sample_systematic

ONE = np.zeros(1, dtype=np.int64)
# The textbook policy: UCB1, every customer of a batch gets the top index.
LEGACY = UCBParams(index="ucb1", allocation="argmax")


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


# -- the legacy policy (UCB1 + argmax): what the first version did, unchanged -----------
def test_untried_arms_first_with_uniform_tie_break() -> None:
    policy = UCB(4, params=LEGACY).set_stats(np.array([[5.0, 0, 3, 0]]), np.array([[5.0, 0, 0, 0]]))
    probs = policy.arm_probabilities(ONE)
    np.testing.assert_array_equal(probs, [[0, 0.5, 0, 0.5]])
    batch = policy.decide(_zeros(4000), np.random.default_rng(0))
    assert set(batch.arm.tolist()) == {1, 3}
    np.testing.assert_array_equal(batch.propensity, 0.5)
    assert abs((batch.arm == 1).mean() - 0.5) < 5 * math.sqrt(0.25 / 4000)
    assert batch.explored.all()  # untried arms are not the best-known arm


def test_untried_arm_outside_the_mask_is_skipped() -> None:
    for params in (LEGACY, UCBParams()):
        policy = UCB(4, params=params).set_stats(np.array([[5.0, 0, 3, 0]]), np.array([[5.0, 0, 0, 0]]))
        allowed = np.array([[True, False, True, True]])
        batch = policy.decide(ONE, np.random.default_rng(0), allowed)
        assert batch.arm[0] == 3 and batch.propensity[0] == 1.0


def test_index_is_ucb1_and_known_max_is_picked() -> None:
    pulls = np.array([[10.0, 20, 30]])
    rewards = np.array([[2.0, 10, 6]])
    policy = UCB(3, params=LEGACY).set_stats(pulls, rewards)
    expected = rewards / pulls + np.sqrt(2 * math.log(60) / pulls)
    np.testing.assert_allclose(policy.index_, expected)
    for params in (UCBParams(c=0.0), UCBParams(c=0.0, index="ucb1", allocation="argmax")):
        greedy = UCB(3, params=params).set_stats(pulls, rewards)
        batch = greedy.decide(_zeros(10), np.random.default_rng(0))
        assert (batch.arm == 1).all() and (batch.propensity == 1).all() and not batch.explored.any()


def test_exact_ties_are_broken_uniformly() -> None:
    for params in (LEGACY, UCBParams()):
        policy = UCB(3, params=params).set_stats(np.array([[10.0, 10, 40]]), np.array([[3.0, 3, 1]]))
        np.testing.assert_array_equal(policy.arm_probabilities(ONE), [[0.5, 0.5, 0]])


def test_segments_are_separate_unless_pooled() -> None:
    pulls = np.array([[10.0, 10], [10.0, 10]])
    rewards = np.array([[8.0, 1], [1.0, 2]])
    seg = np.array([0, 1])
    per_segment = UCB(2, 2, UCBParams(c=0.0)).set_stats(pulls, rewards)
    np.testing.assert_array_equal(per_segment.arm_probabilities(seg), [[1, 0], [0, 1]])
    pooled = UCB(2, 2, UCBParams(c=0.0, pooled=True)).set_stats(pulls, rewards)
    np.testing.assert_array_equal(pooled.arm_probabilities(seg), [[1, 0], [1, 0]])


def test_pooled_segments_share_one_allocation() -> None:
    pulls = np.array([[200.0, 200, 200], [50.0, 50, 50]])
    rewards = np.array([[8.0, 7, 2], [1.0, 3, 0]])
    pooled = UCB(3, 2, UCBParams(pooled=True)).set_stats(pulls, rewards)
    seg = np.repeat([0, 1], 1500)
    probs = pooled.arm_probabilities(seg)
    np.testing.assert_allclose(probs[0], probs[-1])  # one allocation of all 3000 customers
    one_segment = UCB(3).set_stats(pulls.sum(axis=0, keepdims=True), rewards.sum(axis=0, keepdims=True))
    np.testing.assert_allclose(probs[0], one_segment.arm_probabilities(_zeros(3000))[0])


def test_discount() -> None:
    policy = UCB(2, params=UCBParams(gamma=0.5))
    policy.partial_fit(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 1.0]))
    policy.partial_fit(np.array([0]), np.array([0]), np.array([0.0]))
    np.testing.assert_allclose(policy.pulls_, [[1.5, 0.5]])
    np.testing.assert_allclose(policy.rewards_, [[0.5, 0.5]])


# -- the KL index -----------------------------------------------------------------------
def test_kl_ucb_is_an_upper_bound_on_the_reward_scale() -> None:
    mean = np.linspace(0.0, 1.0, 21)[:, None]
    pulls = np.array([1.0, 10, 100, 1000, 1e5])[None, :]
    q = kl_ucb(mean, pulls, 5.0)
    assert (q >= mean).all() and (q <= 1.0).all()
    assert (np.diff(q, axis=1) <= 0).all()  # shrinks with more pulls
    assert (np.diff(q[:-1], axis=1) < 0).all()  # strictly, below a mean of 1
    assert (kl_ucb(mean, pulls, 10.0) >= q).all()  # grows with the budget
    np.testing.assert_allclose(kl_ucb(mean, pulls, 0.0), np.broadcast_to(mean, q.shape), atol=1e-15)
    # It solves n * KL(mean, q) = budget where q < 1 ...
    inside = q < 1 - 1e-9
    np.testing.assert_allclose((pulls * bernoulli_kl(mean, q))[inside], 5.0, rtol=1e-6)
    # ... and has a closed form at mean 0: KL(0, q) = -ln(1 - q).
    np.testing.assert_allclose(q[0], 1 - np.exp(-5.0 / pulls[0]), rtol=1e-9)


def test_policy_index_is_kl_ucb_by_default_and_untried_arms_are_infinite() -> None:
    pulls = np.array([[1000.0, 40_000, 9000, 0]])
    rewards = np.array([[30.0, 1200, 400, 0]])
    policy = UCB(4).set_stats(pulls, rewards)
    n_total = pulls.sum()
    expected = kl_ucb(rewards[0, :3] / pulls[0, :3], pulls[0, :3], math.log(n_total))
    np.testing.assert_allclose(policy.index_[0, :3], expected)
    assert policy.index_[0, 3] == np.inf
    assert (policy.index_[0, :3] <= 1).all()
    # At a 3 % rate the KL bound is on the scale of the rewards; UCB1's bonus is not.
    ucb1 = UCB(4, params=LEGACY).set_stats(pulls, rewards)
    assert policy.index_[0, 0] - 0.03 < 0.05 < 0.14 < ucb1.index_[0, 0] - 0.03


def test_pulls_to_reach_inverts_the_index() -> None:
    mean = np.array([0.0, 0.03, 0.5, 0.9])
    for kind, budget in (("kl", 7.0), ("ucb1", 14.0)):
        pulls = np.array([3.0, 250.0, 40.0, 12.0])
        level = kl_ucb(mean, pulls, budget) if kind == "kl" else mean + np.sqrt(budget / pulls)
        np.testing.assert_allclose(pulls_to_reach(kind, mean, level, budget), pulls, rtol=1e-6)
        assert (pulls_to_reach(kind, mean, mean - 0.01, budget) == np.inf).all()
        assert (pulls_to_reach(kind, mean, mean, budget) == np.inf).all()
        assert (pulls_to_reach(kind, mean, mean + 0.01, 0.0) == 0).all()
    assert pulls_to_reach("kl", np.array([1.0]), np.array([1.0]), 3.0)[0] == 0  # a mean of 1 is stuck


# -- batch allocation -------------------------------------------------------------------
def test_a_batch_of_one_is_the_argmax() -> None:
    rng = np.random.default_rng(0)
    for kind in ("kl", "ucb1"):
        for _ in range(20):
            pulls = rng.integers(1, 500, size=(1, 6)).astype(float)
            rewards = np.floor(pulls * rng.uniform(0.0, 0.2, size=pulls.shape))
            policy = UCB(6, params=UCBParams(index=kind)).set_stats(pulls, rewards)
            best = int(np.argmax(policy.index_[0]))
            np.testing.assert_array_equal(policy.arm_probabilities(ONE)[0], np.eye(6)[best])
            # The general allocation agrees with the single-customer shortcut.
            alloc = fill_allocation(
                kind,
                np.ones((1, 6), dtype=bool),
                np.zeros((1, 6), dtype=bool),
                policy.mean_,
                pulls,
                policy._budget,
                np.ones(1),
            )
            np.testing.assert_allclose(alloc[0], np.eye(6)[best])


def test_a_big_batch_is_spread_over_near_tied_arms() -> None:
    pulls = np.array([[500.0, 500, 500]])
    rewards = np.array([[16.0, 15, 2]])  # 3.2 %, 3.0 %, 0.4 %
    probs = UCB(3).set_stats(pulls, rewards).arm_probabilities(_zeros(5000))[0]
    assert probs[0] > 0.3 and probs[1] > 0.3 and probs[0] > probs[1]
    assert probs[2] < 0.05
    legacy = UCB(3, params=LEGACY).set_stats(pulls, rewards).arm_probabilities(_zeros(5000))[0]
    np.testing.assert_array_equal(legacy, [1, 0, 0])  # the old rule: the whole batch on one arm


def test_a_clearly_best_arm_gets_the_batch_once_data_are_plentiful() -> None:
    pulls = np.full((1, 4), 20_000.0)
    rewards = np.array([[1200.0, 600, 620, 580]])  # 6 % against 3 %
    probs = UCB(4).set_stats(pulls, rewards).arm_probabilities(_zeros(2000))[0]
    np.testing.assert_array_equal(probs, [1, 0, 0, 0])
    # With little data the same means still spread the batch.
    few = UCB(4).set_stats(pulls / 200, rewards / 200).arm_probabilities(_zeros(2000))[0]
    assert few[0] < 0.9 and (few[1:] > 0).all()


@pytest.mark.parametrize("kind", ["kl", "ucb1"])
def test_the_allocation_equalizes_the_indices(kind: str) -> None:
    """Greedy optimality: every send went to an arm whose index was at least the best
    index left unsent (the indices fall to a common level)."""
    pulls = np.array([[300.0, 120, 800, 50, 2000, 10]])
    rewards = np.array([[12.0, 3, 30, 4, 50, 0]])
    policy = UCB(6, params=UCBParams(index=kind)).set_stats(pulls, rewards)
    m = 3000
    sends = policy.arm_probabilities(_zeros(m))[0] * m
    np.testing.assert_allclose(sends.sum(), m)
    whole = np.round(sends)
    np.testing.assert_allclose(sends, whole, atol=1e-6)  # no ties here: whole sends
    mean, budget = policy.mean_[0], policy._budget[0]

    def index(n: np.ndarray) -> np.ndarray:
        return kl_ucb(mean, n, budget) if kind == "kl" else mean + np.sqrt(budget / n)

    next_unsent = index(pulls[0] + whole).max()
    last_sent = index(pulls[0] + whole - 1)[whole > 0]
    assert (last_sent >= next_unsent - 1e-12).all()
    assert (whole > 0).sum() >= 3


def test_untried_arms_go_first_in_a_batch() -> None:
    policy = UCB(4).set_stats(np.array([[500.0, 0, 300, 0]]), np.array([[15.0, 0, 9, 0]]))
    np.testing.assert_array_equal(policy.arm_probabilities(ONE), [[0, 0.5, 0, 0.5]])
    np.testing.assert_array_equal(policy.arm_probabilities(_zeros(2)), [[0, 0.5, 0, 0.5]] * 2)
    sends = policy.arm_probabilities(_zeros(4000))[0] * 4000
    # Every untried arm has its first send; then they are hallucinated at the segment's
    # 3 % and get the sends it takes to bring them to the level of the others.
    assert (sends[[1, 3]] >= 1).all() and sends[1] == pytest.approx(sends[3])
    assert (sends[[0, 2]] > 0).all() and sends[[1, 3]].sum() < 4000
    # More untried arms than customers: they share the customers evenly.
    fresh = UCB(4).set_stats(np.array([[500.0, 0, 0, 0]]), np.array([[15.0, 0, 0, 0]]))
    np.testing.assert_allclose(fresh.arm_probabilities(_zeros(2))[0], [0, 1 / 3, 1 / 3, 1 / 3])


def test_no_exploration_budget_sends_the_batch_to_the_best_mean() -> None:
    alloc = fill_allocation(
        "kl",
        np.ones((2, 3), dtype=bool),
        np.array([[False, False, True], [False, False, False]]),
        np.array([[0.1, 0.3, 0.2], [0.3, 0.3, 0.1]]),
        np.array([[10.0, 10, 0], [5, 5, 5]]),
        np.zeros(2),
        np.array([10.0, 10.0]),
    )
    np.testing.assert_allclose(alloc, [[0, 9, 1], [5, 5, 0]])


def test_masks_are_respected_and_groups_allocate_on_top_of_each_other() -> None:
    # Two identical arms; half the customers may only get arm 0. They choose first, so
    # the others, seeing arm 0 already loaded, take arm 1.
    policy = UCB(2).set_stats(np.array([[100.0, 100]]), np.array([[5.0, 5]]))
    allowed = np.ones((200, 2), dtype=bool)
    allowed[:100, 1] = False
    probs = policy.arm_probabilities(_zeros(200), allowed)
    np.testing.assert_array_equal(probs[:100], [[1, 0]] * 100)
    np.testing.assert_array_equal(probs[100:], [[0, 1]] * 100)


def _world(n: int, seed: int = 0):
    """3 segments, 6 arms on 3 channels (arm % 3); a customer may lack one channel."""
    rng = np.random.default_rng(seed)
    k, s = 6, 3
    segments = rng.integers(s, size=n)
    lacks = rng.choice(4, size=n, p=[0.6, 0.2, 0.1, 0.1])  # 3: lacks nothing
    allowed = (np.arange(k) % 3)[None, :] != lacks[:, None]
    pulls = rng.integers(20, 400, size=(s, k)).astype(float)
    pulls[2, 5] = 0.0  # an untried arm
    rewards = np.floor(pulls * rng.uniform(0.01, 0.08, size=(s, k)))
    return UCB(k, s).set_stats(pulls, rewards), segments, allowed


def test_propensities_are_exact_and_sends_follow_the_allocation() -> None:
    n = 20_000
    policy, segments, allowed = _world(n)
    probs = policy.arm_probabilities(segments, allowed)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs[~allowed] == 0).all()
    batch = policy.decide(segments, np.random.default_rng(1), allowed)
    assert allowed[np.arange(n), batch.arm].all()
    np.testing.assert_array_equal(batch.propensity, probs[np.arange(n), batch.arm])
    # Systematic sampling: within each (segment, mask) group the sends per arm are the
    # planned ones rounded up or down.
    key = segments * 64 + (allowed * (1 << np.arange(6))).sum(axis=1)
    for g in np.unique(key):
        rows = np.flatnonzero(key == g)
        planned = probs[rows].sum(axis=0)
        sent = np.bincount(batch.arm[rows], minlength=6)
        assert (np.abs(sent - planned) < 1 + 1e-9).all(), (g, sent, planned)
    # Each customer's arm has the logged probability: over many seeds, the frequency of
    # a given customer's arms matches its row of probabilities.
    small, segments, allowed = _world(300, seed=1)
    probs = small.arm_probabilities(segments, allowed)
    rows = np.arange(5)
    counts = np.zeros((5, 6))
    for seed in range(400):
        arms = small.decide(segments, np.random.default_rng(seed), allowed).arm[rows]
        counts[rows, arms] += 1
    sd = np.sqrt(probs[rows] * (1 - probs[rows]) / 400)
    assert (np.abs(counts / 400 - probs[rows]) <= 5 * sd + 1e-9).all()
    assert (probs[rows] < 1).any(axis=1).all()  # customers with a real choice


def test_same_seed_same_decisions_and_another_seed_reshuffles() -> None:
    policy, segments, allowed = _world(3000, seed=2)
    a = policy.decide(segments, np.random.default_rng(5), allowed)
    b = policy.decide(segments, np.random.default_rng(5), allowed)
    c = policy.decide(segments, np.random.default_rng(6), allowed)
    np.testing.assert_array_equal(a.arm, b.arm)
    np.testing.assert_array_equal(a.propensity, b.propensity)
    assert (a.arm != c.arm).any()
    np.testing.assert_array_equal(np.bincount(a.arm, minlength=6) > 0, np.bincount(c.arm, minlength=6) > 0)


def test_chunks_carry_their_hallucinated_pulls() -> None:
    policy, segments, _ = _world(4000, seed=3)
    whole = policy.arm_probabilities(segments).sum(axis=0)
    policy.chunk_size = 500
    chunked = policy.arm_probabilities(segments).sum(axis=0)
    # Eight chunks allocated one after the other: the same sends up to rounding per chunk
    # (without the carry, each chunk would plan as if it were the whole batch).
    assert (np.abs(chunked - whole) <= 8).all(), (chunked, whole)
    assert policy._carry is None  # dropped at the end of the call


def test_sample_systematic_hits_the_planned_counts() -> None:
    probs = np.array([[0.5, 0.25, 0.25, 0.0], [0.1, 0.0, 0.0, 0.9]])
    group = np.repeat([0, 1], [400, 30])
    arms = sample_systematic(probs, group, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(arms[:400], minlength=4), [200, 100, 100, 0])
    np.testing.assert_array_equal(np.bincount(arms[400:], minlength=4), [3, 0, 0, 27])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("c", -1.0, "c must be a finite number >= 0, got -1.0"),
        ("gamma", 2, r"gamma must be in \(0, 1\], got 2"),
        ("pooled", 1, "pooled must be true or false, got 1"),
        ("index", "kl-ucb", "index must be one of 'kl', 'ucb1'; got 'kl-ucb'"),
        ("allocation", "all", "allocation must be one of 'fill', 'argmax'; got 'all'"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UCBParams(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["kl", "ucb1"])
def test_pending_sends_count_as_pulls_at_the_arms_mean(kind: str) -> None:
    """Two arms at the same 10 % on 100 matured sends each; 300 more of arm 1 are on their way.
    Counted as pulls at 10 %, arm 1 stands at 400 pulls: a batch of 200 all goes to arm 0, which
    reaches 300 (water-filling equalizes pulls at equal means). Ignored, the batch is split."""
    pulls, rewards = np.array([[100.0, 100]]), np.array([[10.0, 10]])
    params = UCBParams(index=kind)
    blind = UCB(2, params=params).set_stats(pulls, rewards)
    np.testing.assert_allclose(blind.arm_probabilities(_zeros(200))[0], [0.5, 0.5])
    policy = UCB(2, params=params).set_stats(pulls, rewards).set_pending(np.array([[0.0, 300]]))
    np.testing.assert_allclose(policy.arm_probabilities(_zeros(200))[0], [1.0, 0.0])
    if kind == "ucb1":  # the index itself: mean + sqrt(2 ln N / n), N the matured 200
        np.testing.assert_allclose(policy.index_[0], 0.1 + np.sqrt(2 * np.log(200) / np.array([100, 400])))
    assert policy.mean_[0, 1] == pytest.approx(0.1) and policy.tried_[0, 1]  # the evidence is unchanged
    ignoring = UCB(2, params=UCBParams(index=kind, count_pending=False)).set_stats(pulls, rewards)
    ignoring.set_pending(np.array([[0.0, 300]]))
    np.testing.assert_allclose(ignoring.arm_probabilities(_zeros(200))[0], [0.5, 0.5])


def test_an_arm_with_only_pending_sends_is_not_untried_any_more() -> None:
    """Arm 1 has no matured send but 50 pending: they count at the segment's 10 %, so it is no
    longer infinite. A batch of 150 brings it to 100 pulls (50 sends) and splits the other 100."""
    pulls, rewards = np.array([[100.0, 0]]), np.array([[10.0, 0]])
    untried = UCB(2, params=UCBParams(index="ucb1")).set_stats(pulls, rewards)
    assert np.isinf(untried.index_[0, 1])
    policy = (
        UCB(2, params=UCBParams(index="ucb1")).set_stats(pulls, rewards).set_pending(np.array([[0.0, 50]]))
    )
    assert np.isfinite(policy.index_[0, 1])
    np.testing.assert_allclose(policy.arm_probabilities(_zeros(150))[0], [1 / 3, 2 / 3], atol=0.01)


def test_set_pending_checks_its_input() -> None:
    with pytest.raises(ValueError, match=r"pending must have shape \(1, 2\)"):
        UCB(2).set_pending(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="pending sends must be >= 0"):
        UCB(2).set_pending(np.array([[0.0, -1]]))


def test_a_composite_hands_the_pending_sends_to_its_ucb_child() -> None:
    from bandits import make_policy

    rotation = make_policy("rotation", n_arms=2, n_segments=1)
    rotation.set_stats(np.array([[100.0, 100]]), np.array([[10.0, 10]])).set_pending(np.array([[0.0, 300]]))
    ucb = [c for c in rotation.children if isinstance(c, UCB)]
    assert ucb and all(c.pending_[0, 1] == 300 for c in ucb)


def test_the_runner_up_is_the_next_most_likely_arm() -> None:
    """From the allocation above (1/3 for arm 0, 2/3 for arm 1): a customer given arm 0 had arm 1
    as runner-up at 2/3, one given arm 1 had arm 0 at 1/3. A sure choice has none (-1, 0)."""
    policy = UCB(2, params=UCBParams(index="ucb1")).set_stats(np.array([[100.0, 0]]), np.array([[10.0, 0]]))
    policy.set_pending(np.array([[0.0, 50]]))
    batch = policy.decide(_zeros(150), np.random.default_rng(1))
    np.testing.assert_array_equal(batch.runner_up, 1 - batch.arm)
    np.testing.assert_allclose(batch.runner_up_propensity, np.where(batch.arm == 0, 2 / 3, 1 / 3), atol=0.01)
    sure = UCB(2, params=UCBParams(c=0.0)).set_stats(np.array([[100.0, 100]]), np.array([[30.0, 10]]))
    one = sure.decide(_zeros(5), np.random.default_rng(1))
    assert (one.arm == 0).all() and (one.runner_up == -1).all() and (one.runner_up_propensity == 0).all()
