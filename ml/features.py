"""Features for the response model: one fitted spec, one code path for training and scoring.

A feature row describes one (customer, arm) pair. Its columns are laid out as

    [customer numeric | customer one-hot | arm one-hot]

so the customer part and the arm part are separate blocks. Training transforms a
row-aligned frame (one logged decision per row) with :meth:`FeatureSpec.transform`;
scoring builds the customers x arms matrix with :meth:`FeatureSpec.cross`, which
repeats the customer block and tiles the arm block in numpy instead of cross-joining
pandas frames. Both go through the same two block builders, so the same input gives
the same matrix either way.

Categorical values never seen at fit time (and nulls, e.g. a parameter a campaign
does not vary) encode as all zeros; numeric nulls stay NaN, which XGBoost treats as
missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NUMERIC_CUSTOMER_COLUMNS: tuple[str, ...] = (
    "age",
    "income",
    "loyalty_points",
    "tenure_years",
    "products_held",
    "digital_engagement",
    "website_visits",
    "past_purchases",
)
CATEGORICAL_CUSTOMER_COLUMNS: tuple[str, ...] = ("gender",)
ARM_COLUMNS: tuple[str, ...] = ("offer_type", "discount", "channel", "time_of_day", "day_of_week", "cta")

SPEC_FORMAT_VERSION = 1
SMALL_FRAME_ROWS = 8  # up to this many rows, customer_block skips pandas (real-time requests)


@dataclass
class FeatureSpec:
    """Which columns become features and, once fitted, the categories each one-hot block knows.

    Parameters
    ----------
    numeric : sequence of str
        Numeric customer columns, used as they are (cast to float32).
    customer_categorical : sequence of str
        Categorical customer columns, one-hot encoded.
    arm_categorical : sequence of str
        Arm parameter columns, one-hot encoded.

    Attributes
    ----------
    categories_ : dict of str to list of str
        Learned categories per categorical column, sorted; set by :meth:`fit`.
    """

    numeric: Sequence[str] = NUMERIC_CUSTOMER_COLUMNS
    customer_categorical: Sequence[str] = CATEGORICAL_CUSTOMER_COLUMNS
    arm_categorical: Sequence[str] = ARM_COLUMNS
    categories_: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.numeric = tuple(self.numeric)
        self.customer_categorical = tuple(self.customer_categorical)
        self.arm_categorical = tuple(self.arm_categorical)
        overlap = set(self.numeric) & set(self.customer_categorical) | (
            set(self.numeric + self.customer_categorical) & set(self.arm_categorical)
        )
        if overlap:
            raise ValueError(f"a column cannot be in two feature groups: {sorted(overlap)}")

    # -- fitting ---------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> FeatureSpec:
        """Learn the categories of every categorical column from ``frame``.

        Parameters
        ----------
        frame : DataFrame
            Training rows; needs every column of the spec. Arm columns may be all null.

        Returns
        -------
        FeatureSpec
            ``self``, fitted.
        """
        _require_columns(frame, self.numeric + self.customer_categorical + self.arm_categorical, "fit")
        self.categories_ = {
            column: sorted(str(v) for v in pd.unique(frame[column].dropna()))
            for column in self.customer_categorical + self.arm_categorical
        }
        return self

    @property
    def is_fitted(self) -> bool:
        return bool(self.categories_) or not (self.customer_categorical or self.arm_categorical)

    # -- layout ----------------------------------------------------------------------
    @property
    def customer_feature_names(self) -> list[str]:
        return list(self.numeric) + self._onehot_names(self.customer_categorical)

    @property
    def arm_feature_names(self) -> list[str]:
        return self._onehot_names(self.arm_categorical)

    @property
    def feature_names(self) -> list[str]:
        """Names of the matrix columns, in order: ``age``, ..., ``gender=F``, ``channel=email``, ..."""
        return self.customer_feature_names + self.arm_feature_names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    # -- the two blocks every path goes through --------------------------------------
    def customer_block(self, frame: pd.DataFrame) -> np.ndarray:
        """Customer features, float32 array of shape (len(frame), n_customer_features)."""
        self._check_fitted()
        _require_columns(frame, self.numeric + self.customer_categorical, "customer features")
        n = len(frame)
        if n <= SMALL_FRAME_ROWS:
            return self._customer_block_small(frame)
        block = np.zeros((n, len(self.customer_feature_names)), dtype=np.float32)
        for j, column in enumerate(self.numeric):
            block[:, j] = pd.to_numeric(frame[column], errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan
            )
        self._fill_onehot(block, len(self.numeric), frame, self.customer_categorical)
        return block

    def arm_block(self, frame: pd.DataFrame) -> np.ndarray:
        """Arm features, float32 array of shape (len(frame), n_arm_features).

        Arm columns missing from ``frame`` count as null (the campaign does not vary them).
        """
        self._check_fitted()
        block = np.zeros((len(frame), len(self.arm_feature_names)), dtype=np.float32)
        self._fill_onehot(block, 0, frame, self.arm_categorical)
        return block

    # -- training path: one row per (customer, arm) ----------------------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Feature matrix of a row-aligned frame (each row carries its customer and its arm).

        Returns
        -------
        ndarray of float32, shape (len(frame), n_features)
        """
        n = len(frame)
        matrix = np.empty((n, self.n_features), dtype=np.float32)
        n_customer = len(self.customer_feature_names)
        matrix[:, :n_customer] = self.customer_block(frame)
        matrix[:, n_customer:] = self.arm_block(frame)
        return matrix

    # -- scoring path: every customer with every arm ---------------------------------
    def cross(self, customers: pd.DataFrame, arms: pd.DataFrame) -> np.ndarray:
        """Feature matrix of every (customer, arm) pair, customer-major.

        Row ``i * n_arms + a`` pairs customer ``i`` with arm ``a``.

        Returns
        -------
        ndarray of float32, shape (len(customers) * len(arms), n_features)
        """
        return cross_blocks(self.customer_block(customers), self.arm_block(arms))

    def iter_cross(
        self, customers: pd.DataFrame, arms: pd.DataFrame, chunk_rows: int = 262_144
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(customer_slice, matrix)`` chunks of :meth:`cross` of at most ``chunk_rows`` rows.

        The customer block is built once; each chunk holds whole customers (all their arms),
        so memory stays bounded by ``chunk_rows * n_features * 4`` bytes.
        """
        customer_block = self.customer_block(customers)
        arm_block = self.arm_block(arms)
        per_chunk = max(1, int(chunk_rows) // max(1, len(arms)))
        for start in range(0, len(customers), per_chunk):
            part = slice(start, min(start + per_chunk, len(customers)))
            yield part, cross_blocks(customer_block[part], arm_block)

    # -- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description, enough to rebuild the fitted spec."""
        self._check_fitted()
        return {
            "format_version": SPEC_FORMAT_VERSION,
            "numeric": list(self.numeric),
            "customer_categorical": list(self.customer_categorical),
            "arm_categorical": list(self.arm_categorical),
            "categories": {k: list(v) for k, v in self.categories_.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> FeatureSpec:
        """Rebuild a fitted spec saved with :meth:`to_dict`."""
        version = data.get("format_version")
        if version != SPEC_FORMAT_VERSION:
            raise ValueError(f"feature spec format_version {version!r} is not {SPEC_FORMAT_VERSION}")
        return cls(
            numeric=data["numeric"],
            customer_categorical=data["customer_categorical"],
            arm_categorical=data["arm_categorical"],
            categories_={k: list(v) for k, v in data["categories"].items()},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.from_dict(json.loads(text))

    # -- helpers ---------------------------------------------------------------------
    def _onehot_names(self, columns: Sequence[str]) -> list[str]:
        return [f"{column}={value}" for column in columns for value in self.categories_.get(column, [])]

    def _fill_onehot(
        self, block: np.ndarray, offset: int, frame: pd.DataFrame, columns: Sequence[str]
    ) -> None:
        rows = np.arange(len(frame))
        for column in columns:
            categories = self.categories_.get(column, [])
            if column in frame.columns and categories:
                values = frame[column].astype("string")
                codes = pd.Categorical(values, categories=categories).codes  # -1: unseen or null
                known = codes >= 0
                block[rows[known], offset + codes[known]] = 1.0
            offset += len(categories)

    def _customer_block_small(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`customer_block` for a few rows (a real-time request) without pandas' per-column
        cost (~1 ms a frame): the same numbers -- non-numeric values are NaN as with
        ``to_numeric(errors="coerce")``, a categorical value matches its category as text, as
        ``astype("string")`` does, and a null or unseen one leaves its one-hot zeros."""
        columns = list(self.numeric) + list(self.customer_categorical)
        rows = list(zip(*(frame[c].tolist() for c in columns), strict=True))  # 4x faster than to_numpy
        block = np.zeros((len(rows), len(self.customer_feature_names)), dtype=np.float32)
        n_numeric = len(self.numeric)
        offsets, index = [], []
        offset = n_numeric
        for column in self.customer_categorical:
            categories = self.categories_.get(column, [])
            offsets.append(offset)
            index.append({str(c): k for k, c in enumerate(categories)})
            offset += len(categories)
        for i, row in enumerate(rows):
            for j in range(n_numeric):
                block[i, j] = _as_float(row[j])
            for value, start, lookup in zip(row[n_numeric:], offsets, index, strict=True):
                if not _is_null(value):
                    k = lookup.get(str(value))
                    if k is not None:
                        block[i, start + k] = 1.0
        return block

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ValueError("FeatureSpec is not fitted: call fit(training_frame) first")


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def cross_blocks(customer_block: np.ndarray, arm_block: np.ndarray) -> np.ndarray:
    """Pair every customer row with every arm row: repeat customers, tile arms.

    Parameters
    ----------
    customer_block : float32 array of shape (n_customers, d_customer)
    arm_block : float32 array of shape (n_arms, d_arm)

    Returns
    -------
    float32 array of shape (n_customers * n_arms, d_customer + d_arm), customer-major.
    """
    n_customers, d_customer = customer_block.shape
    n_arms, d_arm = arm_block.shape
    # Broadcast into one preallocated matrix (the same as np.repeat / np.tile, without the
    # temporaries that np.hstack of the two would allocate and copy).
    matrix = np.empty((n_customers * n_arms, d_customer + d_arm), dtype=np.float32)
    pairs = matrix.reshape(n_customers, n_arms, d_customer + d_arm)
    pairs[:, :, :d_customer] = customer_block[:, None, :]
    pairs[:, :, d_customer:] = arm_block[None, :, :]
    return matrix


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], purpose: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{purpose}: the frame lacks column(s) {missing}")
