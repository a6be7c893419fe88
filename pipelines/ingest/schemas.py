"""What each kind of inbox file holds, and the vectorized checks that parse it.

``parse`` returns the typed rows and, for every other row, the first problem found.
Checks that need the database (unknown decision, arm of another campaign) run in
SQL in :mod:`pipelines.ingest.loader`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.domain import CHANNELS, CUSTOMER_COLUMNS, EVENT_COLUMNS, EVENT_TYPES
from pipelines.extra_features import STORE_COLUMN, ExtraFeature, configured_extra_features

# PostgreSQL's limits for the landing columns (migration 0001): integer is int4, money is numeric(14, 2).
INT4_MAX = 2_147_483_647
NUMERIC_14_2_MAX = 999_999_999_999.99
# Ids are index keys: a btree entry holds at most ~2,700 bytes, so a longer id would fail the
# whole file at insert. 200 characters is far above any real id and far below that limit.
MAX_TEXT_LENGTH = 200
_CONTROL = r"[\x00-\x1f\x7f]"  # NUL cannot be stored in PostgreSQL text; the others are never valid in ids


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

    def fail(self, mask: np.ndarray | pd.Series, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.reason == None)  # noqa: E711 (element-wise)
        self.reason[mask] = reason

    def fail_showing(
        self, mask: np.ndarray | pd.Series, message: str, col: str, limit: int | None = 40, after: str = ""
    ) -> None:
        """Fail with ``message`` + the row's ``col`` value (its first ``limit`` characters) + ``after``.

        The messages are built for the failing rows only: building them for every row cost
        more than the checks themselves on big files.
        """
        mask = np.asarray(mask, dtype=bool) & (self.reason == None)  # noqa: E711 (element-wise)
        if mask.any():
            values = self.stripped(col)[mask]
            shown = values.str.slice(0, limit) if limit else values
            self.reason[mask] = (message + shown + after).to_numpy(dtype=object)

    def required(self, *columns: str) -> None:
        for col in columns:
            self.fail(self.stripped(col) == "", f"{col} is missing")

    def text(self, *columns: str) -> None:
        """Text that PostgreSQL and its indexes take: no control characters, not too long."""
        for col in columns:
            self.fail(
                self.frame[col].str.contains(_CONTROL, regex=True),
                f"{col} contains a control character (a NUL byte, tab or line break)",
            )
            lengths = self.stripped(col).str.len()
            mask = np.asarray(lengths > MAX_TEXT_LENGTH, dtype=bool) & (self.reason == None)  # noqa: E711
            if mask.any():
                self.reason[mask] = (
                    f"{col} is " + lengths[mask].astype(str) + f" characters long (at most {MAX_TEXT_LENGTH})"
                ).to_numpy(dtype=object)

    def integer(self, col: str, minimum: int = 0, maximum: int = INT4_MAX) -> pd.Series:
        values = _to_number(self.stripped(col), pa.int64())
        finite = values.notna() & np.isfinite(values.fillna(0))  # "inf" parses as a float
        whole = finite & (values == np.floor(values.where(finite, 0)))
        self.fail_showing(~whole, col + " is not an integer: ", col)
        outside = whole & ((values < minimum) | (values > maximum))
        self.fail_showing(outside, col + " ", col, after=f" is out of range ({minimum} to {maximum:,})")
        return values.where(whole & ~outside, 0).astype(np.int64)

    def number(
        self,
        col: str,
        minimum: float | None = None,
        maximum: float | None = None,
        optional: bool = False,
    ) -> pd.Series:
        """Parsed floats. ``optional``: empty, null or NaN is NaN (stored as NULL), never 0."""
        text = self.stripped(col)
        values = _to_number(text, pa.float64())
        missing = (text == "") | text.str.lower().isin(("nan", "null", "none"))
        if optional:
            self.fail_showing(values.isna() & ~missing, col + " is not a number: ", col)
        else:
            self.fail(missing, f"{col} is missing")
            self.fail_showing(values.isna(), col + " is not a number: ", col)
        self.fail_showing(np.isinf(values.fillna(0)), col + " ", col, after=" is not a finite number")
        if minimum is not None:
            self.fail_showing(values < minimum, col + " ", col, after=f" is below {minimum:g}")
        if maximum is not None:
            self.fail_showing(values > maximum, col + " ", col, after=f" is above {maximum:,}")
        return values.where(np.isfinite(values.fillna(0)))

    def timestamp(self, col: str) -> pd.Series:
        values = pd.to_datetime(self.stripped(col), errors="coerce", utc=True, format="ISO8601")
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
        row = (
            bad_frame[cols[0]].str.cat([bad_frame[c] for c in cols[1:]], sep=",").to_numpy(dtype=object)
            if len(bad_frame)
            else np.array([], dtype=object)
        )
        bad = pd.DataFrame(
            {"line_no": bad_frame["line_no"].to_numpy(), "row": row, "reason": self.reason[~ok]}
        )
        return Parsed(good, bad)


def _to_number(text: pd.Series, fast: pa.DataType) -> pd.Series:
    """Floats of ``text``, NaN where it is no number. Arrow's cast when every value parses
    (3x faster than pandas on clean files), else pandas, which marks the bad ones."""
    try:
        parsed = pa.array(text, type=pa.string()).cast(fast)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(text, errors="coerce")
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index, dtype=np.float64)


def day_bounds(logical_date: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = datetime.combine(logical_date, time(0), tzinfo=UTC)
    return pd.Timestamp(start), pd.Timestamp(start + timedelta(days=1))


# An inbox for day D is cut a little after midnight: events of the first minutes of D + 1 are
# normal. Later ones are "from the future" for D (a clock or export error) and are quarantined.
# Keyed by D, never by now(), so that a re-run of D decides the same.
FUTURE_GRACE = timedelta(hours=1)


def latest_accepted(logical_date: date) -> pd.Timestamp:
    """The end (exclusive) of what D's inbox may hold: the end of D plus :data:`FUTURE_GRACE`.

    Events before D are late arrivals, not errors: they load and count for their decisions.
    """
    return day_bounds(logical_date)[1] + FUTURE_GRACE


# -- interactions -------------------------------------------------------------------------
INTERACTION_COLUMNS = EVENT_COLUMNS
# ``value`` may be absent (a file of impressions has none): every row then stores NULL.
INTERACTION_REQUIRED = tuple(c for c in EVENT_COLUMNS if c != "value")


def parse_interactions(frame: pd.DataFrame, logical_date: date) -> Parsed:
    check = _Checker(frame)
    check.required("event_id", "decision_id", "customer_id")
    check.text("event_id", "decision_id", "customer_id")
    campaign_id = check.integer("campaign_id", minimum=1)
    arm_id = check.integer("arm_id", minimum=1)
    check.one_of("event_type", EVENT_TYPES)
    # No value is invented: a missing, null or NaN value is stored as NULL whatever the event
    # type. dbt values a conversion without value at its campaign's conversion_value.
    value = check.number("value", minimum=0.0, maximum=NUMERIC_14_2_MAX, optional=True)
    occurred_at = check.timestamp("occurred_at")
    limit = latest_accepted(logical_date)
    check.fail_showing(
        occurred_at >= limit,
        "occurred_at ",
        "occurred_at",
        after=f" is after {limit:%Y-%m-%d %H:%M} UTC, the end of {logical_date} plus "
        f"{FUTURE_GRACE.total_seconds() / 3600:g} h of grace: an event from the future",
    )
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


def parse_customers(frame: pd.DataFrame, logical_date: date, extras: tuple[ExtraFeature, ...] = ()) -> Parsed:
    """The snapshot rows; ``extras`` (the deployment's own features) go into one JSON object per row."""
    check = _Checker(frame)
    check.required("customer_id", "gender")
    check.text("customer_id", "gender")
    age = check.integer("age", maximum=120)
    income = check.number("income", minimum=0.0, maximum=NUMERIC_14_2_MAX)
    loyalty = check.integer("loyalty_points")
    tenure = check.number("tenure_years", minimum=0.0)
    products = check.integer("products_held")
    engagement = check.number("digital_engagement", minimum=0.0, maximum=1.0)
    visits = check.integer("website_visits")
    purchases = check.integer("past_purchases")
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
            STORE_COLUMN: _extras_json(check, extras),
        }
    )
    return check.split(typed)


def _extras_json(check: _Checker, extras: tuple[ExtraFeature, ...]) -> pd.Series | str:
    """Each row's extra features as JSON text for the jsonb column; an empty value is left out
    (null), a numeric one must be a finite number. A column the frame lacks is null throughout."""
    if not extras:
        return "{}"
    fragments = []
    for feature in (f for f in extras if f.name in check.frame.columns):
        key = json.dumps(feature.name) + ":"
        if feature.kind == "numeric":
            values = check.number(feature.name, optional=True)
            encoded = values.map(repr, na_action="ignore")
        else:
            check.text(feature.name)
            text = check.stripped(feature.name)
            encoded = text.where(text != "").map(json.dumps, na_action="ignore")
        fragment = pd.Series("", index=check.frame.index, dtype=object)
        present = encoded.notna().to_numpy()
        fragment[present] = key + encoded[present].astype(str)
        fragments.append(fragment)
    rows = zip(*(f.tolist() for f in fragments), strict=True) if fragments else ((),) * len(check.frame)
    return pd.Series(
        ["{" + ",".join(p for p in parts if p) + "}" for parts in rows], index=check.frame.index, dtype=object
    )


# -- consents -----------------------------------------------------------------------------
CONSENT_COLUMNS = ("customer_id", "channel", "granted", "recorded_at")
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def parse_consents(frame: pd.DataFrame, logical_date: date) -> Parsed:
    check = _Checker(frame)
    check.required("customer_id")
    check.text("customer_id")
    check.one_of("channel", CHANNELS)
    granted_text = frame["granted"].str.strip().str.lower()
    bad_granted = ~granted_text.isin(_TRUE + _FALSE)
    check.fail_showing(bad_granted, "granted is not a boolean: ", "granted", limit=None)
    recorded = check.timestamp("recorded_at")
    # A consent decides who may be contacted on D: one recorded after D is not D's to use.
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
    required: tuple[str, ...]  # a file without one of these columns is rejected


KINDS = {
    "interactions": FileKind(
        "interactions",
        INTERACTION_COLUMNS,
        parse_interactions,
        "raw.interactions",
        ("event_id",),
        INTERACTION_REQUIRED,
    ),
    "customers": FileKind(
        "customers",
        CUSTOMER_FILE_COLUMNS,
        parse_customers,
        "raw.customers",
        ("snapshot_date", "customer_id"),
        CUSTOMER_FILE_COLUMNS,
    ),
    "consents": FileKind(
        "consents",
        CONSENT_COLUMNS,
        parse_consents,
        "raw.consents",
        ("customer_id", "channel", "recorded_at"),
        CONSENT_COLUMNS,
    ),
}


def customers_kind(extras: tuple[ExtraFeature, ...]) -> FileKind:
    """The customers file with the deployment's extra feature columns, each of them required."""
    columns = CUSTOMER_FILE_COLUMNS + tuple(f.name for f in extras)
    return replace(
        KINDS["customers"], columns=columns, parse=partial(parse_customers, extras=extras), required=columns
    )


def kind_of(filename: str, extras: tuple[ExtraFeature, ...] | None = None) -> FileKind | None:
    """A file's kind from its name's prefix: interactions*, customers*, consents*. A customers
    file has the ``extras`` columns too (default: the configured CUSTOMER_EXTRA_FEATURES)."""
    for name, kind in KINDS.items():
        if filename.startswith(name):
            if name == "customers":
                return customers_kind(configured_extra_features() if extras is None else extras)
            return kind
    return None
