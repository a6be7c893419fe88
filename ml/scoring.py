"""Score every customer against every arm, in chunks that bound memory.

The response model predicts P(conversion | customer, arm). A batch run scores an
audience of n customers against a campaign's k arms: n * k feature rows. Building them
all at once costs ``n * k * n_features * 4`` bytes (1M customers x 60 arms x 40 features
is ~10 GB), so :func:`score_matrix` builds and predicts ``chunk_rows`` rows at a time and
keeps only the (n, k) float32 result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ml.features import FeatureSpec

DEFAULT_CHUNK_ROWS = 262_144


class ProbabilisticClassifier(Protocol):
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


def score_matrix(
    model: ProbabilisticClassifier,
    spec: FeatureSpec,
    customers_df: pd.DataFrame,
    arms_df: pd.DataFrame | Sequence[Mapping[str, object]],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """P(conversion) of every (customer, arm) pair.

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

    Returns
    -------
    ndarray of float32, shape (n, k)
        Row ``i``, column ``a``: the probability for customer ``i`` and arm ``a``.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if not isinstance(arms_df, pd.DataFrame):  # e.g. a campaign's list of arm parameter dicts
        arms_df = pd.DataFrame(list(arms_df))
    n_arms = len(arms_df)
    scores = np.empty((len(customers_df), n_arms), dtype=np.float32)
    if scores.size == 0:
        return scores
    for part, features in spec.iter_cross(customers_df, arms_df, chunk_rows=chunk_rows):
        scores[part] = model.predict_proba(features)[:, 1].reshape(-1, n_arms)
    return scores


@dataclass(frozen=True)
class ResponseModel:
    """A fitted classifier together with the feature spec it was trained with.

    This is what a scorer loads (see :func:`ml.registry.load_champion`): the two travel
    together so the scoring features are built exactly as the training ones were.
    """

    classifier: ProbabilisticClassifier
    spec: FeatureSpec

    def score_matrix(
        self,
        customers_df: pd.DataFrame,
        arms_df: pd.DataFrame | Sequence[Mapping[str, object]],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> np.ndarray:
        """P(conversion), float32 of shape (len(customers_df), len(arms_df)); see :func:`score_matrix`."""
        return score_matrix(self.classifier, self.spec, customers_df, arms_df, chunk_rows=chunk_rows)

    def predict_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """P(conversion) of row-aligned (customer, arm) rows, float32 of shape (len(frame),)."""
        if len(frame) == 0:
            return np.empty(0, dtype=np.float32)
        return self.classifier.predict_proba(self.spec.transform(frame))[:, 1].astype(np.float32)
