"""Checks for hyperparameter dataclasses: each raises ValueError naming field and value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real


def number(name: str, value: object) -> float:
    """``value`` as a float; bools and non-numbers are refused (YAML typos end here)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if math.isnan(out):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return out


def interval(
    name: str,
    value: object,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Require ``value`` in the interval, e.g. ``epsilon must be in [0, 1], got 1.5``."""
    x = number(name, value)
    ok_lo = x > lo if lo_open else x >= lo
    ok_hi = x < hi if hi_open else x <= hi
    if not (ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{_fmt(lo)}, {_fmt(hi)}{right}, got {value!r}")


def discount(name: str, value: object) -> None:
    """Require a discount factor in (0, 1]."""
    interval(name, value, 0.0, 1.0, lo_open=True)


def positive(name: str, value: object) -> None:
    """Require a finite number > 0."""
    x = number(name, value)
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def non_negative(name: str, value: object, *, allow_inf: bool = False) -> None:
    """Require a number >= 0 (finite unless ``allow_inf``)."""
    x = number(name, value)
    if not (x >= 0 and (allow_inf or math.isfinite(x))):
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")


def positive_int(name: str, value: object) -> None:
    """Require an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def flag(name: str, value: object) -> None:
    """Require a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def one_of(name: str, value: object, options: Sequence[str]) -> None:
    """Require one of a fixed set of strings."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf"
    return f"{x:g}"
