"""A circuit breaker for one worker's database: after a connection failure, requests stop trying
the database (no connect timeout per request) and the worker decides offline; only the background
thread probes, no sooner than ``open_seconds`` after the failure, and closes the circuit once the
database answers and the spool is replayed.

Only connection failures open it (the server gone, refused, shut down, a connection lost mid-
transaction), not query errors such as a deadlock: those are the request's, not the database's.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa

# SQLSTATE classes of a database that is not there: connection exceptions (08...), and the
# server shutting down or starting (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
# connect now). A connection error raised by the driver before any server reply has no SQLSTATE.
_DOWN_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (rather than that a query failed)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_DOWN_SQLSTATES)


def one_line(exc: BaseException) -> str:
    """The driver's first line (e.g. 'connection refused'), never a URL or password."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[-1].strip()[:160]}" if text else type(orig).__name__


class Circuit:
    """Closed (use the database) or open since a failure (skip it until the probe succeeds)."""

    def __init__(self, open_seconds: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self.opened_at: datetime | None = None  # wall clock, for /readyz
        self.reason: str | None = None
        self._probe_after = 0.0

    def is_open(self) -> bool:
        return self.opened_at is not None  # one attribute read: the hot path's only cost

    def trip_on(self, exc: BaseException) -> bool:
        """Open the circuit if ``exc`` is a connection failure; whether it was one."""
        if not is_connection_error(exc):
            return False
        self.trip(one_line(exc))
        return True

    def trip(self, reason: str) -> None:
        """Open (or keep open) the circuit; the next probe is ``open_seconds`` away."""
        with self._lock:
            if self.opened_at is None:
                self.opened_at = datetime.now(UTC)
            self.reason = reason
            self._probe_after = self._clock() + self.open_seconds

    def probe_due(self) -> bool:
        return self.is_open() and self._clock() >= self._probe_after

    def close(self) -> None:
        with self._lock:
            self.opened_at, self.reason = None, None

    def status(self) -> str | None:
        """One line for /readyz, or None when closed."""
        opened, reason = self.opened_at, self.reason
        if opened is None:
            return None
        return f"database circuit open since {opened:%H:%M:%S} UTC ({reason})"
