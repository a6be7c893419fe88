"""Stage 1 of the day: land the inbox files of a logical date in `raw`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pipelines.errors import IngestRejected
from pipelines.ingest.loader import FileResult, load_file
from pipelines.ingest.readers import SUFFIXES
from pipelines.ingest.schemas import kind_of
from pipelines.settings import get_settings

log = logging.getLogger(__name__)

# Customers and consents first: eligibility for the day's decisions reads them.
_ORDER = {"customers": 0, "consents": 1, "interactions": 2}


@dataclass(frozen=True)
class IngestReport:
    logical_date: date
    files: list[FileResult]

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def as_dict(self) -> dict:
        return {
            "logical_date": self.logical_date.isoformat(),
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "files": [asdict(f) for f in self.files],
        }


def inbox_folder(logical_date: date, inbox: Path | None = None) -> Path:
    """Files for day D are in ``<inbox>/<D>/``."""
    return (inbox or get_settings().inbox_dir) / logical_date.isoformat()


def ingest_day(
    engine: sa.Engine, logical_date: date, inbox: Path | None = None, max_bad_share: float | None = None
) -> IngestReport:
    """Load every file of the day's inbox folder; fail after loading when a file was rejected.

    Files of an unknown kind or type are refused with a message naming them; the other
    files still load, so a retry after fixing the inbox only adds what was missing.
    """
    settings = get_settings()
    max_bad_share = settings.quarantine_max_share if max_bad_share is None else max_bad_share
    inbox = inbox or settings.inbox_dir
    folder = inbox_folder(logical_date, inbox)
    paths = sorted(folder.iterdir()) if folder.is_dir() else []
    unknown = [
        p.name for p in paths if p.is_file() and (p.suffix.lower() not in SUFFIXES or kind_of(p.name) is None)
    ]
    files = sorted(
        (p for p in paths if p.is_file() and p.name not in unknown),
        key=lambda p: (_ORDER[kind_of(p.name).name], p.name),  # type: ignore[union-attr]
    )
    results = []
    for path in files:
        kind = kind_of(path.name)
        assert kind is not None
        source = str(path.relative_to(inbox))
        result = load_file(engine, path, source, kind, logical_date, max_bad_share)
        log.info(
            "%s: %s, %d loaded, %d quarantined", source, result.status, result.loaded, result.quarantined
        )
        results.append(result)
    report = IngestReport(logical_date, results)
    rejected = [r for r in results if r.status == "rejected"]
    problems = [
        f"{r.source_file}: {r.quarantined} of {r.rows} rows bad ({r.bad_share:.1%} > {max_bad_share:.1%})"
        for r in rejected
    ] + [
        f"{folder.name}/{name}: not a known file (expected customers*, consents*, interactions* "
        f"with {', '.join(SUFFIXES)})"
        for name in unknown
    ]
    if problems:
        raise IngestRejected(
            "ingestion refused " + "; ".join(problems) + " — see ops.quarantine for the rows", report=report
        )
    return report
