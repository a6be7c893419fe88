"""Stage 1 of the day: land the inbox files of a logical date in `raw`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pipelines.errors import IngestRejected
from pipelines.extra_features import configured_extra_features
from pipelines.ingest.loader import FileResult, checksum, load_file, reject_file
from pipelines.ingest.readers import SUFFIXES
from pipelines.ingest.records import replace_day_alert
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
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def rejected(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    def as_dict(self) -> dict:
        return {
            "logical_date": self.logical_date.isoformat(),
            "loaded": self.loaded,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "rejected": [f.source_file for f in self.rejected],
            "files": [asdict(f) for f in self.files],
        }


def inbox_folder(logical_date: date, inbox: Path | None = None) -> Path:
    """Files for day D are in ``<inbox>/<D>/``."""
    return (inbox or get_settings().inbox_dir) / logical_date.isoformat()


def ingest_day(
    engine: sa.Engine,
    logical_date: date,
    inbox: Path | None = None,
    max_bad_share: float | None = None,
    fail_on_rejected: bool = False,
) -> IngestReport:
    """Load every file of the day's inbox folder; a bad file never stops the others.

    Bad rows go to ops.quarantine and the rest of their file loads. A file that cannot be read
    (empty, corrupt, wrong columns, unknown kind) or whose bad share passes ``max_bad_share`` is
    rejected alone: recorded in ops.ingested_files with its reason, named in one critical
    ``ingest_rejected`` alert of the day, and tried again on the next run. The day goes on with
    what loaded; ``fail_on_rejected`` raises :class:`IngestRejected` (after everything is
    recorded) for a caller that wants a rejected file to stop it.
    """
    settings = get_settings()
    max_bad_share = settings.quarantine_max_share if max_bad_share is None else max_bad_share
    inbox = inbox or settings.inbox_dir
    folder = inbox_folder(logical_date, inbox)
    paths = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    known = [p for p in paths if p.suffix.lower() in SUFFIXES and kind_of(p.name) is not None]
    results = []
    for path in paths:
        if path not in known:
            reason = (
                f"not a known file: expected customers*, consents* or interactions* with "
                f"{', '.join(SUFFIXES)}"
            )
            results.append(
                reject_file(engine, checksum(path), _source(path, inbox), "unknown", logical_date, reason)
            )
    extras = configured_extra_features(settings)
    for path in sorted(known, key=lambda p: (_ORDER[kind_of(p.name).name], p.name)):  # type: ignore[union-attr]
        kind = kind_of(path.name, extras)
        assert kind is not None
        result = load_file(engine, path, _source(path, inbox), kind, logical_date, max_bad_share)
        log.info(
            "%s: %s, %d read, %d loaded, %d duplicates, %d quarantined%s",
            result.source_file,
            result.status,
            result.rows,
            result.loaded,
            result.duplicates,
            result.quarantined,
            f" ({result.reason})" if result.reason else "",
        )
        results.append(result)
    report = IngestReport(logical_date, results)
    rejected = [(r.source_file, r.reason or "rejected") for r in report.rejected]
    with engine.begin() as conn:
        replace_day_alert(conn, logical_date, rejected)
    for path, why in rejected:
        log.error("rejected %s: %s", path, why)
    if rejected and fail_on_rejected:
        raise IngestRejected(
            "ingestion rejected " + "; ".join(f"{p}: {why}" for p, why in rejected), report=report
        )
    return report


def _source(path: Path, inbox: Path) -> str:
    return str(path.relative_to(inbox))
