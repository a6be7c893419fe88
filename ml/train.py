"""Train the response model: time-based split, optional inverse-propensity weights, XGBoost.

The validation set is the newest days, never a random sample: the model is used on
tomorrow's customers, so it is judged on days it has not seen. Early stopping watches
the validation log loss. With the same data, config and seed, training is deterministic.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from xgboost import XGBClassifier

from ml.features import FeatureSpec


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a training run; validated on creation.

    Parameters
    ----------
    label : str
        Binary target column (``converted``).
    validation_days : int or None
        Validate on the newest this many distinct decision dates (default 1: every older
        matured day trains, so each daily retraining learns from the day before; with
        seven, the first challengers had one date to learn from and each one missed the
        newest week). ``None``: use ``validation_fraction`` instead.
    validation_fraction : float
        When ``validation_days`` is None, the newest days holding about this share of rows.
    inverse_propensity_weighting : bool
        Weight each example by ``1 / propensity`` (capped at ``max_weight``, then scaled
        to mean 1), so arms the logging policy rarely chose count as if chosen uniformly.
    max_weight : float
        Cap on the inverse-propensity weights: bounds the variance a tiny propensity adds.
    include_control : bool
        Train on holdout-control rows too. They received nothing, so by default they
        are left out of a model of the response to an arm.
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, colsample_bytree,
    reg_lambda, max_bin : XGBoost hyperparameters.
    early_stopping_rounds : int
        Stop when validation log loss has not improved for this many rounds.
    n_jobs : int
        Threads for XGBoost.
    seed : int
        Seed of XGBoost's row and column sampling.
    """

    label: str = "converted"
    validation_days: int | None = 1
    validation_fraction: float = 0.2
    inverse_propensity_weighting: bool = False
    max_weight: float = 50.0
    include_control: bool = False
    n_estimators: int = 400
    learning_rate: float = 0.1
    max_depth: int = 6
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 30
    n_jobs: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.validation_days is not None and self.validation_days < 1:
            raise ValueError(f"validation_days must be >= 1 or None, got {self.validation_days}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
        if not self.max_weight >= 1.0:
            raise ValueError(f"max_weight must be >= 1, got {self.max_weight}")
        for name in ("n_estimators", "max_depth", "early_stopping_rounds", "n_jobs", "max_bin"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must lie in (0, 1], got {self.learning_rate}")

    def to_params(self) -> dict[str, object]:
        """Flat dict for logging (MLflow params)."""
        return asdict(self)


@dataclass(frozen=True)
class TimeSplit:
    """Rows before ``cutoff`` train; rows on or after it validate.

    Attributes
    ----------
    train, valid : DataFrame
        The two parts, each in the original row order.
    cutoff : datetime.date
        First validation date.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    cutoff: object

    def describe(self) -> dict[str, object]:
        """Row counts and date ranges, for logging."""
        return {
            "train_rows": len(self.train),
            "valid_rows": len(self.valid),
            "train_date_from": _day(self.train["decision_date"].min()),
            "train_date_to": _day(self.train["decision_date"].max()),
            "valid_date_from": _day(self.valid["decision_date"].min()),
            "valid_date_to": _day(self.valid["decision_date"].max()),
        }


@dataclass
class TrainResult:
    """A fitted model, the feature spec it needs, and how it was trained."""

    model: XGBClassifier
    spec: FeatureSpec
    config: TrainConfig
    split: TimeSplit
    best_iteration: int
    train_seconds: float
    extra: dict[str, object] = field(default_factory=dict)


def training_rows(examples: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """The rows a model learns from: treatment rows (unless configured) with a known label."""
    rows = examples
    if not config.include_control and "treatment_group" in rows.columns:
        rows = rows[rows["treatment_group"].to_numpy() != "control"]
    return rows[rows[config.label].notna().to_numpy()]


def split_by_time(examples: pd.DataFrame, config: TrainConfig) -> TimeSplit:
    """Split on ``decision_date``: the newest days validate, the older days train.

    Raises
    ------
    ValueError
        With fewer than two distinct dates, or when either side would be empty.
    """
    dates = pd.to_datetime(examples["decision_date"]).dt.normalize()
    rows_per_day = dates.value_counts().sort_index()
    if len(rows_per_day) < 2:
        raise ValueError(
            f"a time split needs at least 2 distinct decision dates, got {len(rows_per_day)}"
        )
    if config.validation_days is not None:
        n_valid_days = min(config.validation_days, len(rows_per_day) - 1)
    else:
        # Newest days whose rows reach the requested share, at least one, leaving one to train.
        share_from_newest = rows_per_day[::-1].cumsum() / rows_per_day.sum()
        n_valid_days = int(np.searchsorted(share_from_newest.to_numpy(), config.validation_fraction) + 1)
        n_valid_days = min(max(n_valid_days, 1), len(rows_per_day) - 1)
    cutoff = rows_per_day.index[-n_valid_days]
    is_valid = (dates >= cutoff).to_numpy()
    return TimeSplit(train=examples[~is_valid], valid=examples[is_valid], cutoff=cutoff.date())


def example_weights(propensity: pd.Series | np.ndarray, max_weight: float) -> np.ndarray:
    """Inverse-propensity weights ``1 / propensity``, capped at ``max_weight``, scaled to mean 1.

    Scaling keeps the total weight equal to the row count, so ``min_child_weight`` and the
    learning rate mean the same with and without weighting. A missing or non-positive
    propensity gets the cap.
    """
    p = np.asarray(propensity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(p > 0, 1.0 / p, max_weight)
    weights = np.minimum(np.nan_to_num(weights, nan=max_weight), max_weight)
    return weights / weights.mean()


def make_classifier(config: TrainConfig) -> XGBClassifier:
    """The XGBoost classifier of ``config`` (hist trees, early stopping on log loss)."""
    return XGBClassifier(
        tree_method="hist",
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        min_child_weight=config.min_child_weight,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        reg_lambda=config.reg_lambda,
        max_bin=config.max_bin,
        objective="binary:logistic",
        eval_metric="logloss",
        early_stopping_rounds=config.early_stopping_rounds,
        n_jobs=config.n_jobs,
        random_state=config.seed,
    )


def train_model(
    examples: pd.DataFrame, config: TrainConfig | None = None, spec: FeatureSpec | None = None
) -> TrainResult:
    """Fit the feature spec and the classifier on the older days, early-stop on the newest.

    Parameters
    ----------
    examples : DataFrame
        Rows shaped like ``analytics.training_examples``.
    config : TrainConfig, optional
    spec : FeatureSpec, optional
        Which customer and arm columns are features (default: :class:`FeatureSpec`'s). Only its
        column lists are read: a fresh copy is fitted, so one spec can serve many trainings.

    Returns
    -------
    TrainResult
    """
    config = config or TrainConfig()
    split = split_by_time(training_rows(examples, config), config)
    if split.train[config.label].nunique() < 2:
        raise ValueError(f"the training days hold a single value of {config.label!r}: nothing to learn")
    started = time.perf_counter()
    template = spec or FeatureSpec()
    spec = FeatureSpec(template.numeric, template.customer_categorical, template.arm_categorical)
    spec.fit(split.train)
    x_train = spec.transform(split.train)
    x_valid = spec.transform(split.valid)
    y_train = split.train[config.label].to_numpy(dtype=np.int64)
    y_valid = split.valid[config.label].to_numpy(dtype=np.int64)
    weights = (
        example_weights(split.train["propensity"], config.max_weight)
        if config.inverse_propensity_weighting
        else None
    )
    model = make_classifier(config)
    model.fit(x_train, y_train, sample_weight=weights, eval_set=[(x_valid, y_valid)], verbose=False)
    # Named features make importances and the MLflow signature readable.
    model.get_booster().feature_names = booster_feature_names(spec.feature_names)
    best = getattr(model, "best_iteration", None)
    return TrainResult(
        model=model,
        spec=spec,
        config=config,
        split=split,
        best_iteration=int(best if best is not None else config.n_estimators - 1),
        train_seconds=time.perf_counter() - started,
    )


def booster_feature_names(names: list[str]) -> list[str]:
    """Feature names XGBoost accepts: it rejects ``[``, ``]`` and ``<`` in names."""
    table = str.maketrans({"[": "(", "]": ")", "<": "lt"})
    return [name.translate(table) for name in names]


def _day(value: object) -> str:
    return str(pd.Timestamp(value).date())
