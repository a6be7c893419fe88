"""Retraining in memory: the product's train -> gate -> promote, without MLflow or a work folder.

The same code as the retraining DAG — :func:`pipelines.retrain.data.enough_data`,
:func:`ml.train.train_model`, the gate's paired scores (:func:`validation_scores`, which
:mod:`pipelines.retrain.gate` uses too) and :func:`ml.gate.decide` — with the champion
kept in a Python object instead of the registry. A benchmark or a notebook calls
:meth:`InMemoryRetrainer.retrain` with the matured examples at each retraining date and
scores with :attr:`InMemoryRetrainer.champion`, as the decide step scores with the
registry's champion. What it leaves out: the charts, the artifacts and the audit trail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bandits import quality_from_auc
from ml import gate as rules
from ml.evaluate import classification_metrics, greedy_policy_terms
from ml.features import FeatureSpec
from ml.scoring import ResponseModel
from ml.train import train_model
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.data import enough_data

COMPARED_METRICS = ("auc", "log_loss", "brier", "ope_dr_value", "ope_snips_value")


def validation_scores(
    model: ResponseModel,
    valid: pd.DataFrame,
    arms: pd.DataFrame | None,
    label: str,
    metrics: Mapping[str, float] | None = None,
) -> rules.ValidationScores:
    """One model's predictions and per-row off-policy terms on the validation rows.

    ``metrics`` None (the champion): its metrics are measured here, on these rows.
    """
    proba = model.predict_rows(valid).astype("float64")
    terms = greedy_policy_terms(model, valid, arms, reward_column=label) if arms is not None else None
    if metrics is None:
        metrics = classification_metrics(valid[label].to_numpy(), proba)
        if terms is not None:
            metrics["ope_dr_value"] = float(terms.mean())
    return rules.ValidationScores(
        proba=proba, value_terms=terms, metrics={k: metrics.get(k) for k in COMPARED_METRICS}
    )


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retraining did: ``status`` is ``skipped`` (too little data) or ``done``."""

    status: str
    reason: str
    promoted: bool = False
    challenger_auc: float = math.nan
    train_rows: int = 0
    valid_rows: int = 0


class InMemoryRetrainer:
    """The retraining loop's state — the champion and its validation AUC — in memory.

    Parameters
    ----------
    config : RetrainConfig, optional
        The production defaults unless given (data thresholds, training, gate).
    spec : FeatureSpec, optional
        The feature columns (default: :class:`ml.features.FeatureSpec`'s).
    """

    def __init__(self, config: RetrainConfig | None = None, spec: FeatureSpec | None = None) -> None:
        self.config = config or RetrainConfig()
        self.spec = spec
        self.champion: ResponseModel | None = None
        self.champion_auc = math.nan
        self.history: list[RetrainOutcome] = []

    @property
    def quality(self) -> float:
        """The champion's quality for the confidence hybrid, as the decide step derives it."""
        return quality_from_auc(self.champion_auc) if math.isfinite(self.champion_auc) else 0.0

    def retrain(self, examples: pd.DataFrame, arms: pd.DataFrame | None = None) -> RetrainOutcome:
        """Train a challenger on ``examples``, gate it against the champion, promote it if it passes.

        Parameters
        ----------
        examples : DataFrame
            Matured rows shaped like ``analytics.training_examples`` (customer columns, arm
            columns, ``decision_date``, the label, ``arm_id`` and ``propensity``).
        arms : DataFrame, optional
            The campaign's arms (``arm_id`` and arm columns), for the off-policy comparison.
        """
        outcome = self._retrain(examples, arms)
        self.history.append(outcome)
        return outcome

    def _retrain(self, examples: pd.DataFrame, arms: pd.DataFrame | None) -> RetrainOutcome:
        config = self.config
        reason = enough_data(examples, config)
        if reason is not None:
            return RetrainOutcome("skipped", reason)
        result = train_model(examples, config.train, self.spec)
        valid = result.split.valid
        label = config.train.label
        y = valid[label].to_numpy()
        challenger_model = ResponseModel(result.model, result.spec)
        sizes = {"train_rows": len(result.split.train), "valid_rows": len(valid)}
        if np.unique(y).size < 2:  # the floor's AUC is undefined: the challenger cannot pass
            return RetrainOutcome("done", f"validation days hold a single {label!r}", **sizes)
        metrics = classification_metrics(y, challenger_model.predict_rows(valid).astype("float64"))
        challenger = validation_scores(challenger_model, valid, arms, label, metrics)
        champion = validation_scores(self.champion, valid, arms, label) if self.champion is not None else None
        version = str(sum(h.promoted for h in self.history))  # the n-th promoted model
        decision = rules.decide(y, challenger, champion, config.gate, champion_version=version)
        promoted = decision.passed and config.gate.auto_promote
        if promoted:
            self.champion, self.champion_auc = challenger_model, float(metrics["auc"])
        return RetrainOutcome(
            "done", decision.reason, promoted, challenger_auc=float(metrics["auc"]), **sizes
        )
