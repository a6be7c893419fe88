"""Arms as campaign parameters, and their one-hot encoding for the response model.

An arm is a set of parameter values from :data:`pipelines.domain.PARAMETERS`; a campaign
may use any subset of the parameters, and a parameter an arm does not set contributes
nothing to its response.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.campaign_spec import arm_key
from pipelines.domain import CHANNELS, PARAMETERS

# Every (parameter, value) of the vocabulary, in a stable order: the columns of the encoding.
PARAMETER_VALUES: tuple[tuple[str, str], ...] = tuple(
    (name, value) for name, values in PARAMETERS.items() for value in values
)
_COLUMN = {pv: j for j, pv in enumerate(PARAMETER_VALUES)}


@dataclass(frozen=True)
class ArmEncoding:
    """Arms in the form the response model computes with.

    Attributes
    ----------
    onehot : float array of shape (n_arms, len(PARAMETER_VALUES))
        1 where the arm sets that parameter value.
    channel : int array of shape (n_arms,)
        Index into :data:`pipelines.domain.CHANNELS`, or -1 when the arm sets no channel.
    keys : tuple of str
        Canonical ``name=value|...`` key of each arm.
    """

    onehot: np.ndarray
    channel: np.ndarray
    keys: tuple[str, ...]

    @property
    def n_arms(self) -> int:
        return int(self.onehot.shape[0])


def arm_grid(parameters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Full factorial of the given parameter values, one row per arm.

    Returns
    -------
    pandas.DataFrame
        Columns ``arm_index`` (0..n_arms-1), ``arm_key``, then one column per parameter,
        in the vocabulary's order.
    """
    names = [n for n in PARAMETERS if n in parameters]
    unknown = [n for n in parameters if n not in PARAMETERS]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; known: {', '.join(PARAMETERS)}")
    rows = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(parameters[n] for n in names))
    ]
    frame = pd.DataFrame(rows, columns=names)
    frame.insert(0, "arm_key", [arm_key(r) for r in rows])
    frame.insert(0, "arm_index", np.arange(len(rows)))
    return frame


def arm_parameters(arms: pd.DataFrame) -> list[dict[str, str]]:
    """Each arm's parameters as a dict, from parameter columns or a ``params`` column of dicts."""
    if "params" in arms.columns:
        return [
            {k: v for k, v in dict(p).items() if k in PARAMETERS and v is not None} for p in arms["params"]
        ]
    names = [n for n in PARAMETERS if n in arms.columns]
    records = arms[names].to_dict("records")
    return [{k: v for k, v in r.items() if isinstance(v, str)} for r in records]


def encode_arms(arms: pd.DataFrame | Sequence[Mapping[str, str]]) -> ArmEncoding:
    """One-hot encode arms given as a frame (see :func:`arm_parameters`) or a list of dicts.

    Raises
    ------
    ValueError
        Naming the arm and the value when a value is not in the vocabulary.
    """
    params = arm_parameters(arms) if isinstance(arms, pd.DataFrame) else [dict(a) for a in arms]
    if not params:
        raise ValueError("no arms given")
    onehot = np.zeros((len(params), len(PARAMETER_VALUES)))
    channel = np.full(len(params), -1, dtype=np.int64)
    for i, arm in enumerate(params):  # arms are few (tens): a loop here is fine
        for name, value in arm.items():
            if (name, value) not in _COLUMN:
                raise ValueError(f"arm {i}: unknown value {value!r} for parameter {name!r}")
            onehot[i, _COLUMN[(name, value)]] = 1.0
        if "channel" in arm:
            channel[i] = CHANNELS.index(arm["channel"])
    return ArmEncoding(onehot=onehot, channel=channel, keys=tuple(arm_key(a) for a in params))


def effects_vector(effects: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """``{parameter: {value: effect}}`` as a vector over :data:`PARAMETER_VALUES` (0 elsewhere)."""
    vector = np.zeros(len(PARAMETER_VALUES))
    for name, values in effects.items():
        for value, effect in values.items():
            if (name, value) not in _COLUMN:
                raise ValueError(f"unknown value {value!r} for parameter {name!r}")
            vector[_COLUMN[(name, value)]] = effect
    return vector
