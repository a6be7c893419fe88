"""A deployment's own customer features (CUSTOMER_EXTRA_FEATURES): configuration, ingest, the
model's feature columns, a real-time customer given by attributes. The dbt side (the jsonb object
through the marts, expanded by the training-set query) is in tests/dbt/test_dbt_marts.py."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from ml.features import ARM_COLUMNS, FeatureSpec
from ml.train import TrainConfig, train_model
from pipelines.domain import CUSTOMER_COLUMNS
from pipelines.errors import IngestRejected, UserError
from pipelines.extra_features import customer_columns_sql, deployment_feature_spec, parse_extra_features
from pipelines.ingest import ingest_day
from pipelines.realtime.optimize import _one_customer_sql, validate_attributes
from pipelines.settings import Settings, get_settings

DAY = date(2026, 11, 2)
CONFIG = "region:categorical,credit_score:numeric"
FIXED = ",".join(CUSTOMER_COLUMNS)
ROW = "30,F,50000,10,2.5,1,0.5,3,1"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CUSTOMER_EXTRA_FEATURES", CONFIG)
    get_settings.cache_clear()
    yield parse_extra_features(CONFIG)
    monkeypatch.delenv("CUSTOMER_EXTRA_FEATURES")
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("region", "write name:kind"),
        ("region:text", "kind one of numeric, categorical"),
        ("Region:numeric", "lower-case letters"),
        ("income:numeric", "'income' is already a customer or arm column"),
        ("channel:categorical", "'channel' is already a customer or arm column"),
        ("a:numeric, a:categorical", "'a' is named twice"),
    ],
)
def test_a_bad_configuration_fails_at_start_naming_the_item(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_extra_features(text)
    with pytest.raises(ValidationError, match=message):
        Settings(customer_extra_features=text)


def test_the_models_columns_gain_the_extras_in_their_groups() -> None:
    spec = deployment_feature_spec(parse_extra_features(CONFIG))
    base = FeatureSpec()
    assert spec.numeric == (*base.numeric, "credit_score")
    assert spec.customer_categorical == ("gender", "region")
    assert spec.arm_categorical == base.arm_categorical
    assert deployment_feature_spec(()).numeric == base.numeric


def _customers_file(inbox: Path, name: str, header: str, rows: list[str]) -> None:
    folder = inbox / DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(header + "\n" + "\n".join(rows) + "\n")


def test_ingest_stores_the_extras_and_names_a_bad_one(
    clean_engine: sa.Engine, inbox: Path, configured
) -> None:
    header = f"customer_id,{FIXED},region,credit_score"
    rows = [
        f"c1,{ROW},north,701.5",
        f"c2,{ROW},,",  # both empty: null, left out of the object
        f'c3,{ROW},"so""uth",650',  # a quote in a value stays a value
        f"c4,{ROW},north,abc",  # not a number: quarantined
    ]
    _customers_file(inbox, "customers.csv", header, rows)
    report = ingest_day(clean_engine, DAY, inbox=inbox, max_bad_share=0.5)
    assert [(f.status, f.loaded, f.quarantined) for f in report.files] == [("loaded", 3, 1)]
    with clean_engine.connect() as conn:
        stored = dict(conn.execute(sa.text("select customer_id, extra_features from raw.customers")).all())
        reason = conn.execute(sa.text("select reason from ops.quarantine")).scalar_one()
    assert stored == {
        "c1": {"region": "north", "credit_score": 701.5},
        "c2": {},
        "c3": {"region": 'so"uth', "credit_score": 650.0},
    }
    assert reason == "credit_score is not a number: abc"


def test_a_customers_file_without_a_configured_column_is_rejected(
    clean_engine: sa.Engine, inbox: Path, configured
) -> None:
    _customers_file(inbox, "customers.csv", f"customer_id,{FIXED},credit_score", [f"c1,{ROW},700"])
    with pytest.raises(IngestRejected, match="required column region missing"):
        ingest_day(clean_engine, DAY, inbox=inbox, fail_on_rejected=True)
    with clean_engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from raw.customers")).scalar_one() == 0


def test_without_configuration_the_object_is_empty(clean_engine: sa.Engine, inbox: Path) -> None:
    _customers_file(inbox, "customers.csv", f"customer_id,{FIXED},region", [f"c1,{ROW},north"])
    ingest_day(clean_engine, DAY, inbox=inbox)  # an unconfigured column is not read
    with clean_engine.connect() as conn:
        assert conn.execute(sa.text("select extra_features from raw.customers")).scalar_one() == {}


def test_a_realtime_customer_may_carry_the_extras(configured) -> None:
    attributes = dict(zip(FIXED.split(","), [30, "F", 50000, 10, 2.5, 1, 0.5, 3, 1], strict=True))
    values = validate_attributes(attributes | {"region": "west", "credit_score": 680})
    assert json.loads(values["extra_features"]) == {"region": "west", "credit_score": 680.0}
    assert json.loads(validate_attributes(attributes)["extra_features"]) == {}  # left out: null
    with pytest.raises(UserError, match="attributes: credit_score is not a number: high"):
        validate_attributes(attributes | {"credit_score": "high"})
    with pytest.raises(
        UserError, match="attributes.tier: unknown attribute; known: age, .*, region, credit_score"
    ):
        validate_attributes(attributes | {"tier": "gold"})


def test_a_realtime_customer_by_attributes_reaches_the_model_with_its_extras(
    engine: sa.Engine, configured
) -> None:
    """The one-row subquery /optimize decides a new customer from, read as the audience reads the
    mart: the extras come out as typed columns."""
    attributes = dict(zip(FIXED.split(","), [30, "F", 50000, 10, 2.5, 1, 0.5, 3, 1], strict=True))
    values = validate_attributes(attributes | {"region": "west", "credit_score": 680})
    sql = f"select {customer_columns_sql('f')} from {_one_customer_sql(values)} f"
    params = {"customer": "new-1"} | {f"a_{k}": v for k, v in values.items()}
    with engine.connect() as conn:
        row = conn.exec_driver_sql(sql, params).mappings().one()
    assert (row["age"], row["region"], row["credit_score"]) == (30, "west", 680.0)


def test_a_signal_only_an_extra_feature_carries_is_learned() -> None:
    """Conversion depends on region alone (40% in the north, 5% elsewhere): the model on the
    deployment's columns separates it, the one on the fixed columns cannot."""
    rng = np.random.default_rng(3)
    n = 6000
    region = rng.choice(["north", "south", "west"], size=n)
    examples = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(n)],
            "decision_date": pd.to_datetime("2026-11-01") + pd.to_timedelta(np.arange(n) % 6, unit="D"),
            "treatment_group": "treatment",
            "propensity": 0.5,
            "converted": rng.random(n) < np.where(region == "north", 0.40, 0.05),
            "age": rng.integers(18, 80, n),
            "gender": rng.choice(["F", "M"], size=n),
            "income": rng.uniform(1e4, 2e5, n),
            **{c: rng.random(n) for c in ("loyalty_points", "tenure_years", "products_held")},
            **{c: rng.random(n) for c in ("digital_engagement", "website_visits", "past_purchases")},
            "region": region,
            "credit_score": rng.normal(650, 50, n),
            **{c: None for c in ARM_COLUMNS},  # one arm: its parameters carry nothing
        }
    )
    config = TrainConfig(validation_days=2, n_estimators=60, inverse_propensity_weighting=False)
    valid = examples[examples["decision_date"] >= "2026-11-05"]
    aucs = {}
    for name, spec in (
        ("extras", deployment_feature_spec(parse_extra_features(CONFIG))),
        ("fixed", FeatureSpec()),
    ):
        result = train_model(examples, config, spec=spec)
        scores = result.model.predict_proba(result.spec.transform(valid))[:, 1]
        aucs[name] = roc_auc_score(valid["converted"], scores)
    assert aucs["extras"] > 0.75 > 0.6 > aucs["fixed"]
