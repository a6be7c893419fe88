"""Stages 2 and 5 of the day: Great Expectations checks of a landed batch and of a send list.

The suites are code in ``expectations/suites.py``. Each call builds an ephemeral GX context,
runs one checkpoint over a query asset, keeps the result in GX's validation results store on
disk (``<home>/gx/validation_results``, one JSON file per run: ``validation_history`` reads
them back) and adds its page to the data docs site under ``<home>/gx/data_docs``. Because the
store keeps every result, the site keeps every page (GX removes pages whose result is not in
the store); the pages are rewritten to load no file from the internet (``pipelines.data_docs``).
Measured here: context 0.02 s, validation 0.5-1 s, data docs 1-2 s
(GX compiles its page templates per context; ``data_docs=False`` skips them); importing
great_expectations costs 10+ s once per process. A failing suite raises ValidationFailed naming the failed
expectations; the report (with the data docs page) rides on the exception.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import make_url

from pipelines.errors import ValidationFailed
from pipelines.settings import Settings, get_settings

log = logging.getLogger(__name__)

SUITES_FILE = Path(__file__).resolve().parents[1] / "expectations" / "suites.py"
_SUITES_MODULE = "campaignopt_expectations_suites"
DOCS_SITE = "campaignopt"
# The index lists the most recent results (every page stays; GX reads each listed result per build).
INDEX_LIMIT = 500


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one suite on one batch."""

    suite: str
    batch: str  # e.g. "interactions 2026-03-20" or "campaign 3 list 2026-03-20"
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)  # failed expectation names
    details: dict[str, str] = field(default_factory=dict)  # name -> what was observed
    rows: int | None = None
    data_docs_path: str | None = None  # the page of this validation result
    data_docs_index: str | None = None
    elapsed_seconds: float = 0.0
    run_name: str | None = None  # with the run time, the key of the result kept in GX's store
    run_time: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "batch": self.batch,
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": list(self.failed),
            "details": dict(self.details),
            "rows": self.rows,
            "data_docs_path": self.data_docs_path,
            "data_docs_index": self.data_docs_index,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "run_name": self.run_name,
            "run_time": self.run_time,
        }

    def summary(self) -> str:
        """One line: what failed (with what was observed) or that all passed."""
        if self.success:
            return f"{self.suite} on {self.batch}: all {self.evaluated} expectations passed"
        parts = [f"{n} ({self.details[n]})" if self.details.get(n) else n for n in self.failed]
        docs = f"; data docs: {self.data_docs_path}" if self.data_docs_path else ""
        return (
            f"{self.suite} on {self.batch}: {len(self.failed)} of {self.evaluated} expectations "
            f"failed: {', '.join(parts)}{docs}"
        )


@dataclass(frozen=True)
class StoredValidation:
    """One validation result as kept in GX's validation results store."""

    suite: str
    run_name: str
    run_time: datetime
    success: bool
    evaluated: int
    failed: list[str]
    data_docs_path: str | None  # its page, when the site has it


def gx_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).home / "gx"


def data_docs_dir(settings: Settings | None = None) -> Path:
    return gx_dir(settings) / "data_docs"


def validation_results_dir(settings: Settings | None = None) -> Path:
    return gx_dir(settings) / "validation_results"


def suites() -> ModuleType:
    """The suite definitions (expectations/suites.py), loaded once from their file."""
    module = sys.modules.get(_SUITES_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(_SUITES_MODULE, SUITES_FILE)
        if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the repo
            raise ValidationFailed(f"cannot load the expectation suites from {SUITES_FILE}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_SUITES_MODULE] = module
        spec.loader.exec_module(module)
    return module


def validate_interactions(
    logical_date: date,
    settings: Settings | None = None,
    *,
    raise_on_failure: bool = True,
    data_docs: bool = True,
) -> ValidationReport:
    """Run the ``interactions_batch`` suite on the rows landed for ``logical_date``.

    Raises ValidationFailed (its ``report`` attached) when an expectation fails, unless
    ``raise_on_failure`` is False. ``data_docs=False`` skips the HTML (about 1-2 s).
    """
    s = suites()
    settings = settings or get_settings()
    history = s.interactions_history_query(logical_date, settings.volume_lookback_days)
    return _run(
        suite=s.interactions_batch_suite(logical_date, _volume_floor(history, settings)),
        query=s.interactions_batch_query(logical_date),
        batch=f"interactions {logical_date.isoformat()}",
        settings=settings,
        raise_on_failure=raise_on_failure,
        data_docs=data_docs,
    )


def validate_send_list(
    campaign_id: int,
    list_date: date,
    holdout_share: float,
    settings: Settings | None = None,
    *,
    raise_on_failure: bool = True,
    data_docs: bool = True,
) -> ValidationReport:
    """Run the ``send_list`` suite on campaign ``campaign_id``'s batch decisions of ``list_date``.

    The control share must lie within ``holdout_share`` +- max(0.03, 3 standard errors), and
    the list must not be far smaller than the campaign's recent lists (see ``expectations/suites.py``).
    """
    s = suites()
    settings = settings or get_settings()
    query = s.send_list_query(campaign_id, list_date)
    n_rows = _count(query, settings)
    history = s.send_list_history_query(campaign_id, list_date, settings.volume_lookback_days)
    return _run(
        suite=s.send_list_suite(holdout_share, n_rows, _volume_floor(history, settings)),
        query=query,
        batch=f"campaign {campaign_id} list {list_date.isoformat()}",
        settings=settings,
        raise_on_failure=raise_on_failure,
        data_docs=data_docs,
        rows=n_rows,
    )


def validation_history(settings: Settings | None = None, suite: str | None = None) -> list[StoredValidation]:
    """Every validation result kept in GX's store (optionally of one suite), oldest first."""
    settings = settings or get_settings()
    context = _context(settings)
    store = context.validation_results_store
    docs = data_docs_dir(settings)
    kept: list[StoredValidation] = []
    for key in store.list_keys():
        if suite is not None and key.expectation_suite_identifier.name != suite:
            continue
        result = store.get(key)
        page = docs.joinpath("validations", *key.to_tuple()).with_suffix(".html")
        kept.append(
            StoredValidation(
                suite=key.expectation_suite_identifier.name,
                run_name=key.run_id.run_name,
                run_time=key.run_id.run_time,
                success=bool(result.success),
                evaluated=len(result.results),
                failed=[_expectation_name(r) for r in result.results if not r.success],
                data_docs_path=str(page) if page.is_file() else None,
            )
        )
    return sorted(kept, key=lambda v: v.run_time)


# -- internals ------------------------------------------------------------------------------
def _count(query: str, settings: Settings | None) -> int:
    import sqlalchemy as sa

    from pipelines.db import get_engine

    with get_engine(settings).connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from ({query}) as q")).scalar_one())


def _volume_floor(history_query: str, settings: Settings):
    """The volume floor from the earlier batches' row counts (None while history is short)."""
    import sqlalchemy as sa

    from pipelines.db import get_engine

    with get_engine(settings).connect() as conn:
        counts = [int(n) for _, n in conn.execute(sa.text(history_query))]
    return suites().volume_floor(
        counts, min_history=settings.volume_min_history, min_share=settings.volume_min_share
    )


def _context(settings: Settings):
    """An in-memory GX context that keeps validation results on disk, with one data docs site.

    Suites, checkpoints and validation definitions stay in memory: they are code, rebuilt per
    call, and a shared suite file would make concurrent validations see each other's suites.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    docs = data_docs_dir(settings)
    docs.mkdir(parents=True, exist_ok=True)
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(validation_results_dir(settings)),
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": INDEX_LIMIT,
                },
            }
        },
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _add_datasource(context, url: str):
    """Postgres data source; a unix-socket URL (no host) goes through the generic SQL source."""
    if make_url(url).host:
        return context.data_sources.add_postgres(name="campaignopt", connection_string=url)
    with warnings.catch_warnings():  # "a more specific PostgresDatasource may be more appropriate"
        warnings.simplefilter("ignore")
        return context.data_sources.add_sql(name="campaignopt", connection_string=url)


def _run(
    *,
    suite,
    query: str,
    batch: str,
    settings: Settings | None,
    raise_on_failure: bool,
    data_docs: bool,
    rows: int | None = None,
) -> ValidationReport:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    from pipelines.db import database_url

    settings = settings or get_settings()
    started = time.perf_counter()
    context = _context(settings)
    datasource = _add_datasource(context, database_url(settings))
    run_id = RunIdentifier(run_name=batch.replace(" ", "-"))  # the key of the kept result: name + time
    try:
        asset = datasource.add_query_asset(name=suite.name, query=query)
        batch_definition = asset.add_batch_definition_whole_table("batch")
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[definition],
                actions=[],  # the docs are built below, under a lock
                result_format={"result_format": "SUMMARY"},
            )
        )
        result = checkpoint.run(run_id=run_id)  # also stores the result (validation results store)
        (identifier, suite_result), *_ = result.run_results.items()
        page = _build_docs(context, identifier, suite.name, settings) if data_docs else None
    finally:
        try:
            datasource.get_engine().dispose()
        except Exception:  # noqa: BLE001 - closing connections must not hide the outcome
            pass

    failed: list[str] = []
    details: dict[str, str] = {}
    for r in suite_result.results:
        if not r.success:
            name = _expectation_name(r)
            failed.append(name)
            explain = (r.expectation_config.meta or {}).get("explain")
            details[name] = _observed(r) + (f"; expected {explain}" if explain else "")
    if rows is None:  # the batch size, from any expectation that counted rows
        counts = (r.result.get("element_count") for r in suite_result.results if r.result)
        rows = next((int(c) for c in counts if c is not None), None)
    index = data_docs_dir(settings) / "index.html"
    report = ValidationReport(
        suite=suite.name,
        batch=batch,
        success=bool(suite_result.success),
        evaluated=len(suite_result.results),
        failed=failed,
        details=details,
        rows=rows,
        data_docs_path=page,
        data_docs_index=str(index) if data_docs and index.exists() else None,
        elapsed_seconds=time.perf_counter() - started,
        run_name=run_id.run_name,
        run_time=run_id.to_tuple()[1],
    )
    log.info("%s (%.2fs)", report.summary(), report.elapsed_seconds)
    if raise_on_failure and not report.success:
        raise ValidationFailed(report.summary(), report)
    return report


def _expectation_name(r) -> str:
    config = r.expectation_config
    return (config.meta or {}).get("name") or f"{config.type}({config.kwargs.get('column', '')})"


def _build_docs(context, identifier, suite_name: str, settings: Settings) -> str | None:
    """Add this result's page (and refresh the index), then make the new pages work offline."""
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    from pipelines.data_docs import build_lock, make_site_offline

    # GX deletes the pages of suites missing from the (in-memory) suite store: register every
    # suite name so the other suite's page stays. Only this suite's page is rendered.
    for name in (suites().INTERACTIONS_BATCH, suites().SEND_LIST):
        if name != suite_name:
            context.suites.add(gx.ExpectationSuite(name=name))
    docs = data_docs_dir(settings)
    with build_lock(docs):
        since_ns = time.time_ns() - 2_000_000_000  # file times come from a coarser clock
        context.build_data_docs(
            site_names=[DOCS_SITE],
            resource_identifiers=[identifier, ExpectationSuiteIdentifier(name=suite_name)],
        )
        make_site_offline(docs, since_ns)
    return _docs_page(context, identifier)


def _docs_page(context, identifier) -> str | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
    except Exception:  # noqa: BLE001 - the docs are a convenience, never the outcome
        return None
    url = (urls or [{}])[0].get("site_url")
    return url.removeprefix("file://") if url else None


def _observed(r) -> str:
    """What a failed expectation saw, briefly: 'k of n rows' or the observed value."""
    res = r.result or {}
    if r.exception_info and r.exception_info.get("raised_exception"):
        msg = str(r.exception_info.get("exception_message") or "error").strip().splitlines()
        return f"error: {msg[0][:200] if msg else 'error'}"
    if res.get("unexpected_count") is not None:
        n = res.get("element_count")
        sample = res.get("partial_unexpected_list") or []
        shown = ", ".join(_short(v) for v in sample[:3])
        return f"{res['unexpected_count']} of {n} rows" + (f", e.g. {shown}" if shown else "")
    if "observed_value" in res:
        return f"observed {_short(res['observed_value'])}"
    return ""


def _short(value: object) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
