"""Stage 3 of the day: `dbt build` the analytics marts (and run their tests) for logical date D.

dbt runs in-process (``dbt.cli.main.dbtRunner``) on the repository's ``dbt/`` project with
``dbt/profiles.yml``, whose connection comes from ``DBT_*`` variables derived here from the
configured database (``DATABASE_URL`` or the embedded pgserver, whose host is a socket
directory). dbt's target and log folders live under the campaignopt home, never in the repo.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy.engine import make_url

from pipelines.errors import PipelineError
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"

# dbt keeps process-wide state: one invocation at a time per process.
_DBT_LOCK = threading.Lock()

_TEST_TYPES = {"test", "unit_test"}


@dataclass(frozen=True)
class DbtResult:
    """What one `dbt build` did."""

    as_of_date: date
    success: bool
    models_built: int
    tests_passed: int
    tests_failed: int
    tests_warned: int
    skipped: int
    elapsed_seconds: float
    failures: list[str] = field(default_factory=list)
    target_path: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "as_of_date": self.as_of_date.isoformat(),
            "success": self.success,
            "models_built": self.models_built,
            "tests_passed": self.tests_passed,
            "tests_failed": self.tests_failed,
            "tests_warned": self.tests_warned,
            "skipped": self.skipped,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "failures": list(self.failures),
            "target_path": self.target_path,
        }


def dbt_env(database_url: str) -> dict[str, str]:
    """The ``DBT_*`` variables dbt/profiles.yml reads, from a SQLAlchemy/libpq URL.

    A unix-socket URL (``postgresql://user:@/db?host=/run/dir``) gives the socket directory
    as host, which libpq accepts.
    """
    url = make_url(database_url)

    def _query(name: str) -> str | None:
        value = url.query.get(name)
        if isinstance(value, tuple):
            value = value[0] if value else None
        return value

    host = url.host or _query("host") or "127.0.0.1"
    port = url.port or _query("port") or 5432
    if not url.database:
        raise PipelineError(f"the database URL names no database: {url.render_as_string(hide_password=True)}")
    return {
        "DBT_HOST": str(host),
        "DBT_PORT": str(port),
        "DBT_USER": url.username or "postgres",
        "DBT_PASSWORD": url.password or "",
        "DBT_DBNAME": url.database,
    }


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_dbt(
    as_of_date: date,
    select: str | None = None,
    settings: Settings | None = None,
    *,
    quiet: bool = True,
    full_refresh: bool = False,
) -> DbtResult:
    """Run ``dbt build`` for logical date ``as_of_date``; return what was built and tested.

    ``select`` is a dbt selection (e.g. ``"+arm_stats"`` or ``"tag:daily"``); None builds all.
    The growing marts are incremental (each model's header says what a build recomputes);
    ``full_refresh`` rebuilds them from all history instead, which gives the same rows.
    Raises PipelineError with one line naming the first failing model or test (and how many
    more failed) when the build fails; the full log is under ``<home>/dbt/logs``.
    """
    from dbt.cli.main import dbtRunner  # heavy: only when dbt runs

    from pipelines.db import database_url

    settings = settings or get_settings()
    dbt_home = settings.home / "dbt"
    target_path = dbt_home / "target"
    log_path = dbt_home / "logs"
    target_path.mkdir(parents=True, exist_ok=True)
    log_path.mkdir(parents=True, exist_ok=True)

    args = [
        "build",
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target_path),
        "--log-path", str(log_path),
        "--vars", f"{{as_of_date: '{as_of_date.isoformat()}'}}",
        "--no-use-colors",
    ]  # fmt: skip
    if quiet:
        args.append("--quiet")
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")

    env = dbt_env(database_url(settings))
    env.setdefault("DO_NOT_TRACK", "1")
    started = time.perf_counter()
    with _DBT_LOCK, _environ(env):
        log.info("dbt build for %s (select=%s)", as_of_date, select or "all")
        res = dbtRunner().invoke(args)
    elapsed = time.perf_counter() - started

    if res.exception is not None and res.result is None:
        reason = _first_line(str(res.exception)) or type(res.exception).__name__
        raise PipelineError(f"dbt build for {as_of_date} could not run: {reason}", res)

    results = list(getattr(res.result, "results", None) or [])
    models_built = tests_passed = tests_failed = tests_warned = skipped = 0
    failures: list[str] = []
    for r in results:
        kind = str(getattr(r.node, "resource_type", ""))
        status = str(r.status)
        if status == "skipped":
            skipped += 1
        elif kind in _TEST_TYPES:
            if status == "pass":
                tests_passed += 1
            elif status == "warn":
                tests_warned += 1
            else:
                tests_failed += 1
                failures.append(_describe_failure(r, kind, status))
        elif status in {"success", "partial success"}:
            if kind == "model":
                models_built += 1
        elif status == "error":
            failures.append(_describe_failure(r, kind, status))

    result = DbtResult(
        as_of_date=as_of_date,
        success=bool(res.success),
        models_built=models_built,
        tests_passed=tests_passed,
        tests_failed=tests_failed,
        tests_warned=tests_warned,
        skipped=skipped,
        elapsed_seconds=elapsed,
        failures=failures,
        target_path=str(target_path),
    )
    log.info(
        "dbt build for %s: %d models, %d tests passed, %d failed, %d warned, %d skipped in %.1fs",
        as_of_date, models_built, tests_passed, tests_failed, tests_warned, skipped, elapsed,
    )  # fmt: skip
    if not res.success:
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            msg = f"dbt build for {as_of_date} failed: {failures[0]}{more}; log: {log_path / 'dbt.log'}"
        else:
            reason = _first_line(str(res.exception)) if res.exception else "see the log"
            msg = f"dbt build for {as_of_date} failed: {reason}; log: {log_path / 'dbt.log'}"
        raise PipelineError(msg, result)
    return result


def _describe_failure(r: object, kind: str, status: str) -> str:
    node = r.node  # type: ignore[attr-defined]
    name = getattr(node, "name", "?")
    kind = kind.replace("_", " ")
    if status == "fail":
        failures = getattr(r, "failures", None)
        if kind == "unit test":
            return f"unit test {name} failed: actual differs from expected"
        rows = f" ({failures} failing row{'s' if failures != 1 else ''})" if failures is not None else ""
        return f"{kind} {name} failed{rows}"
    message = _first_line(getattr(r, "message", "") or "")
    return f"{kind} {name} errored: {message}" if message else f"{kind} {name} errored"


def _first_line(text: str) -> str:
    """The first meaningful line of a dbt message (they start with banners like 'Database Error')."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    banners = ("Runtime Error", "Database Error", "Compilation Error", "An error occurred")
    for ln in lines:
        if not ln.startswith(banners):
            return ln
    return lines[0] if lines else ""
