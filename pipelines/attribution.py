"""Attribution windows: which events count for a decision, and when the decision matures.

A campaign gives its window as a duration, ``attribution_window: 30m | 4h | 2d`` (or, as
before, ``attribution_window_days: 2``); the unit written chooses the rule:

- days (``d``): calendar UTC days, the marts' rule since the start. A decision of day d is
  attributed the events whose UTC day is in [d, d + w]; it matures when day d + w is over, at
  d + w + 1, 00:00 UTC. ``attribution_window_days: 0`` (the same day only) keeps working.
- minutes and hours (``m``, ``h``): exact timestamps. Events with occurred_at in
  [decided_at, decided_at + window] count; the decision matures at decided_at + window.

The daily marts built as of day A (dbt/models/intermediate/int_decisions_attributed.sql) see the
decisions of days before A and count one as matured when it matured by the run's cut-off, the
end of day A (A + 1, 00:00 UTC); for day windows that is the old ``d + w <= A``. The real-time
snapshot (pipelines/realtime/snapshot.py) folds every other real-time decision once it matures.

A matured decision without any attributed event (of any type) gets the campaign's
``default_reward`` (0 unless set), as Azure Personalizer's default reward after its reward wait
time; one with events gets the reward they say (0 for an open without a conversion, under a
conversion reward). Training labels (``converted``) stay the observed conversions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
UNIT_NAMES = {"m": "minute", "h": "hour", "d": "day"}
MIN_SECONDS = 60  # 1m
MAX_SECONDS = 90 * 86400  # 90d, the old attribution_window_days bound
MAX_DAYS = 90

_DURATION = re.compile(r"([0-9]+)([mhd])")
_DECIMAL = re.compile(r"([0-9]*\.[0-9]+)([hd])")
_HELP = "write a whole number and a unit m, h or d, e.g. 30m, 4h or 2d"


@dataclass(frozen=True)
class AttributionWindow:
    """``amount`` units of ``unit`` (m, h or d); build with :func:`parse_window` or :meth:`of_days`."""

    amount: int
    unit: str

    @classmethod
    def of_days(cls, days: int) -> AttributionWindow:
        return cls(days, "d")

    @property
    def by_day(self) -> bool:
        """Whether the calendar-day rule applies (else exact timestamps)."""
        return self.unit == "d"

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def describe(self) -> str:
        """'2 days', '1 minute': for people."""
        return f"{self.amount} {UNIT_NAMES[self.unit]}{'' if self.amount == 1 else 's'}"

    def matures_at(self, decision_date: date, decided_at: datetime) -> datetime:
        """The instant the window closes and the decision counts."""
        if self.by_day:
            return midnight_after(decision_date + timedelta(days=self.amount))
        return decided_at + self.length

    def attributes(self, decision_date: date, decided_at: datetime, occurred_at: datetime) -> bool:
        """Whether an event that occurred at ``occurred_at`` counts for the decision."""
        if self.by_day:
            day = occurred_at.astimezone(UTC).date()
            return decision_date <= day <= decision_date + timedelta(days=self.amount)
        return decided_at <= occurred_at <= decided_at + self.length


def midnight_after(day: date) -> datetime:
    """The end of UTC day ``day``: the next day, 00:00 UTC (a mart as of ``day`` cuts off there)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def parse_window(text: object) -> AttributionWindow:
    """'30m', '4h', '2d' -> the window; ValueError with one line saying what is wrong otherwise.

    Whole numbers only (``90m``, not ``1.5h``): a window is a count of units, and an integer
    keeps the definition, the columns and the SQL exact."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration: {_HELP} (or give attribution_window_days)")
    match = _DURATION.fullmatch(text)
    if match is None:
        decimal = _DECIMAL.fullmatch(text)
        if decimal is not None:
            smaller = {"h": ("m", 60), "d": ("h", 24)}[decimal.group(2)]
            amount = float(decimal.group(1)) * smaller[1]
            if amount.is_integer():
                raise ValueError(f"{text!r}: whole numbers only, write {int(amount)}{smaller[0]}")
        if text.strip().startswith("-"):
            raise ValueError(f"{text!r} is negative: the window must be at least 1m")
        raise ValueError(f"{text!r} is not a duration: {_HELP}")
    window = AttributionWindow(int(match.group(1)), match.group(2))
    if window.seconds < MIN_SECONDS:
        raise ValueError(f"{text!r} is too short: the window must be at least 1m")
    if window.seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is too long: the window must be at most {MAX_DAYS}d")
    return window


def stored_window(window_text: str | None, window_days: int | None) -> AttributionWindow:
    """The window of a stored definition: ``attribution_window`` (minutes or hours) when set,
    else ``attribution_window_days`` (read as stg_ops__campaigns reads them)."""
    if window_text is not None:
        return parse_window(window_text)
    if window_days is None:
        raise ValueError("the stored campaign has no attribution window")
    return AttributionWindow.of_days(window_days)
