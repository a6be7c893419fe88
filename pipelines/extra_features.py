"""A deployment's own customer features, beyond the fixed snapshot columns.

A bank's customer extract holds more than :data:`pipelines.domain.CUSTOMER_COLUMNS`: a region, a
credit score, a relationship manager's tier. ``CUSTOMER_EXTRA_FEATURES`` names them, each with
its kind::

    CUSTOMER_EXTRA_FEATURES="region:categorical,credit_score:numeric"

Each named column is then required in the customers file (ingest validates it: a numeric one
must be a finite number, an empty value is null) and lands in ``raw.customers.extra_features``,
one jsonb object per snapshot row, so adding a feature needs no migration. The dbt models carry
the object through (``customer_features``, ``int_decisions_segmented``, ``training_examples``);
the queries that hand customers to the model (the audience, one real-time customer, the training
set) expand it into plain columns with :func:`select_sql`, and :func:`deployment_feature_spec`
makes them model features. A model records its own columns: one trained before a feature was
configured keeps scoring without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml.features import ARM_COLUMNS, FeatureSpec
from pipelines.domain import CUSTOMER_COLUMNS

KINDS = ("numeric", "categorical")
MAX_EXTRA_FEATURES = 64  # bounds a real-time request's attributes too (api/models.py)
STORE_COLUMN = "extra_features"  # the jsonb column of raw.customers and the marts
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Column names the customer frames already use for something else.
RESERVED = frozenset(
    {"customer_id", "segment", "snapshot_date", "source_file", "shard", "holdout_draw", STORE_COLUMN}
    | set(CUSTOMER_COLUMNS)
    | set(ARM_COLUMNS)
)


@dataclass(frozen=True)
class ExtraFeature:
    """One configured customer feature: its column name and whether it is numeric or categorical."""

    name: str
    kind: str

    @property
    def sql_type(self) -> str:
        return "double precision" if self.kind == "numeric" else "text"


def parse_extra_features(text: str | None) -> tuple[ExtraFeature, ...]:
    """``"region:categorical,credit_score:numeric"`` as features; ValueError naming what is wrong."""
    features: list[ExtraFeature] = []
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        name, sep, kind = (s.strip() for s in item.partition(":"))
        where = f"CUSTOMER_EXTRA_FEATURES item {item!r}"
        if not sep or kind not in KINDS:
            raise ValueError(f"{where}: write name:kind, kind one of {', '.join(KINDS)}")
        if not _NAME.fullmatch(name):
            raise ValueError(f"{where}: a name is lower-case letters, digits and _, starting with a letter")
        if name in RESERVED:
            raise ValueError(f"{where}: {name!r} is already a customer or arm column")
        if any(f.name == name for f in features):
            raise ValueError(f"{where}: {name!r} is named twice")
        features.append(ExtraFeature(name, kind))
    if len(features) > MAX_EXTRA_FEATURES:
        raise ValueError(
            f"CUSTOMER_EXTRA_FEATURES names {len(features)} features, at most {MAX_EXTRA_FEATURES}"
        )
    return tuple(features)


def configured_extra_features(settings=None) -> tuple[ExtraFeature, ...]:  # type: ignore[no-untyped-def]
    """The deployment's extra features (``CUSTOMER_EXTRA_FEATURES``; validated with the settings)."""
    from pipelines.settings import get_settings

    return parse_extra_features((settings or get_settings()).customer_extra_features)


def deployment_feature_spec(extras: tuple[ExtraFeature, ...] | None = None) -> FeatureSpec:
    """The model's feature columns: the fixed customer columns and arm parameters, plus ``extras``
    (default: the configured ones)."""
    extras = configured_extra_features() if extras is None else extras
    base = FeatureSpec()
    return FeatureSpec(
        tuple(base.numeric) + tuple(f.name for f in extras if f.kind == "numeric"),
        tuple(base.customer_categorical) + tuple(f.name for f in extras if f.kind == "categorical"),
        base.arm_categorical,
    )


def select_sql(alias: str, extras: tuple[ExtraFeature, ...] | None = None) -> str:
    """SQL select items expanding ``alias.extra_features`` into one typed column per feature,
    each preceded by a comma (an empty string without extras), for appending to a select list."""
    extras = configured_extra_features() if extras is None else extras
    return "".join(
        f", cast({alias}.{STORE_COLUMN} ->> '{f.name}' as {f.sql_type}) as {f.name}" for f in extras
    )


def customer_columns_sql(alias: str, extras: tuple[ExtraFeature, ...] | None = None) -> str:
    """The select list of a customer's model inputs from ``alias`` (a ``customer_features``-shaped
    row): the fixed columns, then one column per extra feature."""
    return ", ".join(f"{alias}.{c}" for c in CUSTOMER_COLUMNS) + select_sql(alias, extras)


def extra_feature_names(extras: tuple[ExtraFeature, ...] | None = None) -> list[str]:
    """The configured extra features' column names, in order."""
    return [f.name for f in (configured_extra_features() if extras is None else extras)]
