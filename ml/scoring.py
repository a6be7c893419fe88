"""Score every customer against every arm, in chunks that bound memory.

The response model predicts P(conversion | customer, arm). A batch run scores an
audience of n customers against a campaign's k arms: n * k feature rows. Building them
all at once costs ``n * k * n_features * 4`` bytes (1M customers x 60 arms x 40 features
is ~10 GB), so :func:`score_matrix` builds and predicts ``chunk_rows`` rows at a time and
keeps only the (n, k) float32 result.

Pairs no policy may pick (the customer has not consented to the arm's channel) need no
score: with an ``allowed`` mask, :func:`score_matrix` builds and predicts only the
allowed rows and leaves NaN in the others. Each row's prediction depends on that row
alone, so the allowed scores are the same numbers as when everything is scored; the
work shrinks by the share of disallowed pairs (~21 % with the consent rates of
``benchmarks/scenarios/default.yaml``; see "Hybrid decide speed" in BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ml.features import FeatureSpec, cross_blocks

DEFAULT_CHUNK_ROWS = 262_144


class ProbabilisticClassifier(Protocol):
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


def score_matrix(
    model: ProbabilisticClassifier,
    spec: FeatureSpec,
    customers_df: pd.DataFrame,
    arms_df: pd.DataFrame | Sequence[Mapping[str, object]],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """P(conversion) of every (customer, arm) pair, or of the allowed ones.

    Parameters
    ----------
    model : classifier with ``predict_proba``
        The fitted response model (e.g. ``xgboost.XGBClassifier``).
    spec : FeatureSpec
        The spec the model was trained with.
    customers_df : DataFrame of n rows
        Customer attributes (the spec's customer columns).
    arms_df : DataFrame of k rows, or a sequence of k dicts
        Arm parameters (the spec's arm columns; missing ones count as null), e.g.
        ``[{"offer_type": "loan", "channel": "sms"}, ...]``.
    chunk_rows : int
        Largest number of (customer, arm) rows built and predicted at once.
    allowed : bool array of shape (n, k), optional
        Pairs to score; the others are neither built nor predicted and come back NaN.
        Default: every pair.

    Returns
    -------
    ndarray of float32, shape (n, k)
        Row ``i``, column ``a``: the probability for customer ``i`` and arm ``a``
        (NaN where ``allowed`` is False).
    """
    if not isinstance(arms_df, pd.DataFrame):  # e.g. a campaign's list of arm parameter dicts
        arms_df = pd.DataFrame(list(arms_df))
    blocks = spec.customer_block(customers_df), spec.arm_block(arms_df)
    return score_blocks(model, *blocks, chunk_rows, allowed)


def score_blocks(
    model: ProbabilisticClassifier,
    customer_block: np.ndarray,
    arm_block: np.ndarray,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`score_matrix` from the built feature blocks (``FeatureSpec.customer_block`` and
    ``arm_block``): a caller that scores the same arms again reuses their block."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n_arms = len(arm_block)
    scores = np.empty((len(customer_block), n_arms), dtype=np.float32)
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != scores.shape:
            raise ValueError(f"allowed must have shape {scores.shape}, got {allowed.shape}")
        if not allowed.all():
            return _score_allowed(model, customer_block, arm_block, allowed, chunk_rows, scores)
    if scores.size == 0:
        return scores
    per_chunk = max(1, int(chunk_rows) // max(1, n_arms))  # whole customers per chunk
    for start in range(0, len(customer_block), per_chunk):
        part = slice(start, min(start + per_chunk, len(customer_block)))
        features = cross_blocks(customer_block[part], arm_block)
        scores[part] = model.predict_proba(features)[:, 1].reshape(-1, n_arms)
    return scores


def _score_allowed(
    model: ProbabilisticClassifier,
    customer_block: np.ndarray,
    arm_block: np.ndarray,
    allowed: np.ndarray,
    chunk_rows: int,
    scores: np.ndarray,
) -> np.ndarray:
    """Fill ``scores`` (n, k) with the allowed pairs' probabilities and NaN elsewhere.

    Chunks hold whole customers and at most ``chunk_rows`` allowed rows (at least one
    customer), in the customer-major order of :meth:`FeatureSpec.cross`.
    """
    scores.fill(np.nan)
    d_customer = customer_block.shape[1]
    ends = np.cumsum(allowed.sum(axis=1))  # allowed rows up to and including each customer
    n, start, done = allowed.shape[0], 0, 0
    while start < n:
        stop = max(start + 1, int(np.searchsorted(ends, done + chunk_rows, side="right")))
        customer, arm = np.nonzero(allowed[start:stop])  # row-major: customer-major rows
        if customer.size:
            features = np.empty((customer.size, d_customer + arm_block.shape[1]), dtype=np.float32)
            features[:, :d_customer] = customer_block[start + customer]
            features[:, d_customer:] = arm_block[arm]
            scores[start + customer, arm] = model.predict_proba(features)[:, 1]
        done, start = int(ends[stop - 1]), stop
    return scores


@dataclass(frozen=True)
class ResponseModel:
    """A fitted classifier together with the feature spec it was trained with.

    This is what a scorer loads (see :func:`ml.registry.load_champion`): the two travel
    together so the scoring features are built exactly as the training ones were.
    """

    classifier: ProbabilisticClassifier
    spec: FeatureSpec
    _arm_blocks: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def score_matrix(
        self,
        customers_df: pd.DataFrame,
        arms_df: pd.DataFrame | Sequence[Mapping[str, object]],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        allowed: np.ndarray | None = None,
    ) -> np.ndarray:
        """P(conversion), float32 of shape (len(customers_df), len(arms_df)); see :func:`score_matrix`.

        With ``allowed`` (bool, same shape), only those pairs are scored; the others are NaN.
        """
        if isinstance(arms_df, pd.DataFrame):
            arm_block = self.spec.arm_block(arms_df)
        else:
            arm_block = self._arm_block(arms_df)
        customer_block = self.spec.customer_block(customers_df)
        return score_blocks(self.classifier, customer_block, arm_block, chunk_rows, allowed)

    def _arm_block(self, arms: Sequence[Mapping[str, object]]) -> np.ndarray:
        """The arms' feature block, built once per distinct arm list: a real-time worker scores
        the same campaign's arms on every request (building them costs more than predicting)."""
        key = tuple(tuple(sorted((k, str(v)) for k, v in arm.items())) for arm in arms)
        block = self._arm_blocks.get(key)
        if block is None:
            if len(self._arm_blocks) >= 64:  # campaigns change rarely: a small bound suffices
                self._arm_blocks.clear()
            block = self.spec.arm_block(pd.DataFrame(list(arms)))
            block.setflags(write=False)
            self._arm_blocks[key] = block
        return block

    def predict_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """P(conversion) of row-aligned (customer, arm) rows, float32 of shape (len(frame),)."""
        if len(frame) == 0:
            return np.empty(0, dtype=np.float32)
        return self.classifier.predict_proba(self.spec.transform(frame))[:, 1].astype(np.float32)
