"""Build a policy from its name and hyperparameters (what a campaign YAML file holds).

Leaf policies take the fields of their parameter dataclass. Composite policies take
their own fields plus:

* ``rotation``, ``interleaved``: ``strategies`` (list of leaf policy names, default
  ``["thompson", "ucb", "epsilon_greedy"]``) and, per strategy, a mapping of its
  hyperparameters under the strategy's name, e.g. ``ucb: {c: 0.5}``;
* ``lifecycle``: ``base`` (a leaf policy name, default ``"thompson_blend"``) and its
  hyperparameters under that name.

Example::

    make_policy("rotation", n_arms=48, n_segments=9, period=500, ucb={"c": 0.5})
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from bandits.base import ChunkedPolicy
from bandits.epsilon_greedy import EpsilonGreedy, EpsilonGreedyParams
from bandits.hybrid import (
    ConfidenceHybrid,
    ConfidenceHybridParams,
    ThompsonBlend,
    ThompsonBlendParams,
    UCBBlend,
    UCBBlendParams,
)
from bandits.igw import IGWParams, InverseGapWeighting
from bandits.lifecycle import Lifecycle, LifecycleParams
from bandits.rotation import Interleaved, InterleavedParams, Rotation, RotationParams
from bandits.thompson import ThompsonParams, ThompsonSampling
from bandits.ucb import UCB, UCBParams
from bandits.uniform import UniformParams, UniformRandom

# name -> (policy class, parameter dataclass)
LEAF_POLICIES: dict[str, tuple[type[ChunkedPolicy], type]] = {
    "thompson": (ThompsonSampling, ThompsonParams),
    "ucb": (UCB, UCBParams),
    "epsilon_greedy": (EpsilonGreedy, EpsilonGreedyParams),
    "thompson_blend": (ThompsonBlend, ThompsonBlendParams),
    "ucb_blend": (UCBBlend, UCBBlendParams),
    "confidence_hybrid": (ConfidenceHybrid, ConfidenceHybridParams),
    "igw": (InverseGapWeighting, IGWParams),
    "uniform": (UniformRandom, UniformParams),
}
COMPOSITE_PARAMS: dict[str, type] = {
    "rotation": RotationParams,
    "interleaved": InterleavedParams,
    "lifecycle": LifecycleParams,
}
POLICY_NAMES: tuple[str, ...] = (*LEAF_POLICIES, *COMPOSITE_PARAMS)
DEFAULT_STRATEGIES = ("thompson", "ucb", "epsilon_greedy")
DEFAULT_LIFECYCLE_BASE = "thompson_blend"


def hyperparameters(name: str) -> tuple[str, ...]:
    """The hyperparameter names :func:`make_policy` accepts for policy ``name``."""
    _check_name(name)
    if name in LEAF_POLICIES:
        return tuple(f.name for f in fields(LEAF_POLICIES[name][1]))
    own = tuple(f.name for f in fields(COMPOSITE_PARAMS[name]))
    if name == "lifecycle":
        return (*own, "base", *LEAF_POLICIES)
    return (*own, "strategies", *LEAF_POLICIES)


def make_policy(name: str, n_arms: int, n_segments: int = 1, **params: Any) -> ChunkedPolicy:
    """Build policy ``name`` over ``n_arms`` arms and ``n_segments`` segments.

    Parameters
    ----------
    name : str
        One of :data:`POLICY_NAMES`.
    n_arms, n_segments : int
    **params
        Hyperparameters, see :func:`hyperparameters`.

    Raises
    ------
    ValueError
        Unknown policy or hyperparameter (the message lists the valid ones), or a bad
        hyperparameter value (the message names it).
    """
    _check_name(name)
    _check_keys(name, params)
    if name in LEAF_POLICIES:
        return _leaf(name, n_arms, n_segments, params)
    params = dict(params)
    if name == "lifecycle":
        base = params.pop("base", DEFAULT_LIFECYCLE_BASE)
        if base not in LEAF_POLICIES:
            raise ValueError(f"base must be one of {', '.join(LEAF_POLICIES)}; got {base!r}")
        extra = [k for k in params if k in LEAF_POLICIES and k != base]
        if extra:
            raise ValueError(f"hyperparameters given for {extra[0]!r}, which is not the base ({base!r})")
        base_policy = _leaf(base, n_arms, n_segments, _sub_params(base, params.pop(base, {})))
        return Lifecycle(base_policy, LifecycleParams(**params))
    strategies = params.pop("strategies", DEFAULT_STRATEGIES)
    if isinstance(strategies, str) or not isinstance(strategies, list | tuple) or not strategies:
        raise ValueError(f"strategies must be a non-empty list of policy names, got {strategies!r}")
    for s in strategies:
        if s not in LEAF_POLICIES:
            raise ValueError(f"unknown strategy {s!r}; valid: {', '.join(LEAF_POLICIES)}")
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies must not repeat, got {list(strategies)}")
    extra = [k for k in params if k in LEAF_POLICIES and k not in strategies]
    if extra:
        raise ValueError(f"hyperparameters given for {extra[0]!r}, which is not among strategies")
    children = [_leaf(s, n_arms, n_segments, _sub_params(s, params.pop(s, {}))) for s in strategies]
    if name == "rotation":
        return Rotation(children, RotationParams(**params))
    if "weights" in params and isinstance(params["weights"], list):
        params["weights"] = tuple(params["weights"])
    return Interleaved(children, InterleavedParams(**params))


def _check_name(name: str) -> None:
    if name not in POLICY_NAMES:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICY_NAMES)}")


def _check_keys(name: str, params: dict[str, Any]) -> None:
    valid = hyperparameters(name)
    for key in params:
        if key not in valid:
            raise ValueError(f"unknown hyperparameter {key!r} for policy {name!r}; valid: {', '.join(valid)}")


def _sub_params(name: str, params: object) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ValueError(f"{name} must be a mapping of its hyperparameters, got {params!r}")
    _check_keys(name, params)
    return params


def _leaf(name: str, n_arms: int, n_segments: int, params: dict[str, Any]) -> ChunkedPolicy:
    policy_cls, params_cls = LEAF_POLICIES[name]
    return policy_cls(n_arms, n_segments, params_cls(**params))  # type: ignore[call-arg]
