"""What each kind of inbox file holds, and the vectorized checks that parse it.

``parse`` returns the typed rows and, for every other row, the first problem found.
Checks that need the database (unknown decision, arm of another campaign) run in
SQL in :mod:`pipelines.ingest.loader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd

from pipelines.domain import CHANNELS, CUSTOMER_COLUMNS, EVENT_COLUMNS, EVENT_TYPES


@dataclass(frozen=True)
class Parsed:
    good: pd.DataFrame  # typed columns + line_no
    bad: pd.DataFrame  # line_no, row (text), reason


class _Checker:
    """Accumulates the first failing reason per row."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.reason = np.full(len(frame), None, dtype=object)
        self._stripped: dict[str, pd.Series] = {}

    def stripped(self, col: str) -> pd.Series:
        """``frame[col].str.strip()``, computed once per column (it costs ~1.5 s per million rows)."""
        if col not in self._stripped:
            self._stripped[col] = self.frame[col].str.strip()
        return self._stripped[col]

    def fail(self, mask: np.ndarray | pd.Series, reason: str | pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.reason == None)  # noqa: E711 (element-wise)
        if isinstance(reason, pd.Series):
            self.reason[mask] = reason.to_numpy(dtype=object)[mask]
        else:
            self.reason[mask] = reason

    def fail_showing(
        self, mask: np.ndarray | pd.Series, message: str, col: str, limit: int | None = 40
    ) -> None:
        """Fail with ``message`` followed by the row's ``col`` value (its first ``limit`` characters).

        The messages are built for the failing rows only: building them for every row cost
        more than the checks themselves on big files.
        """
        mask = np.asarray(mask, dtype=bool) & (self.reason == None)  # noqa: E711 (element-wise)
        if mask.any():
            values = self.frame[col][mask]
            shown = values.str.slice(0, limit) if limit else values
            self.reason[mask] = (message + shown).to_numpy(dtype=object)

    def required(self, *columns: str) -> None:
        for col in columns:
            self.fail(self.stripped(col) == "", f"{col} is missing")

    def integer(self, col: str) -> pd.Series:
        values = pd.to_numeric(self.frame[col], errors="coerce")
        finite = values.notna() & np.isfinite(values.fillna(0))  # "inf" parses as a float
        whole = finite & (values == np.floor(values.where(finite, 0)))
        self.fail_showing(~whole, col + " is not an integer: ", col)
        return values.where(whole, 0).astype(np.int64)

    def number(self, col: str, default: float | None = None, minimum: float | None = None) -> pd.Series:
        raw = self.frame[col]
        if default is not None:
            raw = raw.where(self.stripped(col) != "", str(default))
        values = pd.to_numeric(raw, errors="coerce")
        self.fail_showing(values.isna(), col + " is not a number: ", col)
        if minimum is not None:
            self.fail(values < minimum, f"{col} is below {minimum}")
        return values.fillna(0.0)

    def timestamp(self, col: str) -> pd.Series:
        values = pd.to_datetime(self.frame[col], errors="coerce", utc=True, format="ISO8601")
        self.fail_showing(values.isna(), col + " is not an ISO 8601 timestamp: ", col)
        return values

    def one_of(self, col: str, allowed: tuple[str, ...]) -> None:
        self.fail_showing(~self.frame[col].isin(allowed), "unknown " + col + " ", col)

    def split(self, typed: pd.DataFrame) -> Parsed:
        ok = self.reason == None  # noqa: E711
        good = typed.loc[ok].copy()
        good["line_no"] = self.frame["line_no"].to_numpy()[ok]
        cols = [c for c in self.frame.columns if c != "line_no"]
        bad_frame = self.frame.loc[~ok]
        bad = pd.DataFrame(
            {
                "line_no": bad_frame["line_no"].to_numpy(),
                "row": bad_frame[cols].astype(str).agg(",".join, axis=1).to_numpy()
                if len(bad_frame)
                else np.array([], dtype=object),
                "reason": self.reason[~ok],
            }
        )
        return Parsed(good, bad)


def day_bounds(logical_date: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = datetime.combine(logical_date, time(0), tzinfo=UTC)
    return pd.Timestamp(start), pd.Timestamp(start + timedelta(days=1))


# -- interactions -------------------------------------------------------------------------
INTERACTION_COLUMNS = EVENT_COLUMNS


def parse_interactions(frame: pd.DataFrame, logical_date: date) -> Parsed:
    check = _Checker(frame)
    check.required("event_id", "decision_id", "customer_id")
    campaign_id = check.integer("campaign_id")
    arm_id = check.integer("arm_id")
    check.one_of("event_type", EVENT_TYPES)
    value = check.number("value", default=0.0, minimum=0.0)
    occurred_at = check.timestamp("occurred_at")
    start, end = day_bounds(logical_date)
    # Late or early events belong to another day's file; keeping days apart keeps re-runs exact.
    check.fail((occurred_at < start) | (occurred_at >= end), f"occurred_at is not on {logical_date}")
    typed = pd.DataFrame(
        {
            "event_id": check.stripped("event_id"),
            "decision_id": check.stripped("decision_id"),
            "customer_id": check.stripped("customer_id"),
            "campaign_id": campaign_id,
            "arm_id": arm_id,
            "event_type": frame["event_type"],
            "value": value.round(2),
            "occurred_at": occurred_at,
        }
    )
    return check.split(typed)


# -- customer snapshots -------------------------------------------------------------------
CUSTOMER_FILE_COLUMNS = ("customer_id", *CUSTOMER_COLUMNS)


def parse_customers(frame: pd.DataFrame, logical_date: date) -> Parsed:
    check = _Checker(frame)
    check.required("customer_id", "gender")
    age = check.integer("age")
    check.fail((age < 0) | (age > 120), "age is outside 0..120")
    income = check.number("income", minimum=0.0)
    loyalty = check.integer("loyalty_points")
    tenure = check.number("tenure_years", minimum=0.0)
    products = check.integer("products_held")
    engagement = check.number("digital_engagement", minimum=0.0)
    check.fail(engagement > 1.0, "digital_engagement is above 1")
    visits = check.integer("website_visits")
    purchases = check.integer("past_purchases")
    for name, values in (
        ("loyalty_points", loyalty),
        ("products_held", products),
        ("website_visits", visits),
    ):
        check.fail(values < 0, f"{name} is negative")
    check.fail(purchases < 0, "past_purchases is negative")
    typed = pd.DataFrame(
        {
            "snapshot_date": logical_date,
            "customer_id": check.stripped("customer_id"),
            "age": age,
            "gender": check.stripped("gender"),
            "income": income.round(2),
            "loyalty_points": loyalty,
            "tenure_years": tenure,
            "products_held": products,
            "digital_engagement": engagement,
            "website_visits": visits,
            "past_purchases": purchases,
        }
    )
    return check.split(typed)


# -- consents -----------------------------------------------------------------------------
CONSENT_COLUMNS = ("customer_id", "channel", "granted", "recorded_at")
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def parse_consents(frame: pd.DataFrame, logical_date: date) -> Parsed:
    check = _Checker(frame)
    check.required("customer_id")
    check.one_of("channel", CHANNELS)
    granted_text = frame["granted"].str.strip().str.lower()
    bad_granted = ~granted_text.isin(_TRUE + _FALSE)
    check.fail_showing(bad_granted, "granted is not a boolean: ", "granted", limit=None)
    recorded = check.timestamp("recorded_at")
    _, end = day_bounds(logical_date)
    check.fail(recorded >= end, f"recorded_at is after {logical_date}")
    typed = pd.DataFrame(
        {
            "customer_id": check.stripped("customer_id"),
            "channel": frame["channel"],
            "recorded_at": recorded,
            "granted": granted_text.isin(_TRUE),
        }
    )
    return check.split(typed)


@dataclass(frozen=True)
class FileKind:
    name: str
    columns: tuple[str, ...]
    parse: object  # Callable[[pd.DataFrame, date], Parsed]
    table: str
    key: tuple[str, ...]


KINDS = {
    "interactions": FileKind(
        "interactions", INTERACTION_COLUMNS, parse_interactions, "raw.interactions", ("event_id",)
    ),
    "customers": FileKind(
        "customers", CUSTOMER_FILE_COLUMNS, parse_customers, "raw.customers", ("snapshot_date", "customer_id")
    ),
    "consents": FileKind(
        "consents", CONSENT_COLUMNS, parse_consents, "raw.consents", ("customer_id", "channel", "recorded_at")
    ),
}


def kind_of(filename: str) -> FileKind | None:
    """A file's kind from its name's prefix: interactions*, customers*, consents*."""
    for name, kind in KINDS.items():
        if filename.startswith(name):
            return kind
    return None
