"""Run one file import: dedup by content hash, write atomically, report counts.

Every importer has the same contract (see `necoma.collect.importers`):
`import_file(path, writer, rejects, **options) -> list[str]` decodes `path`,
writes rows with `writer.write(table, rows)`, counts every bad record in
`rejects`, and returns notes for the user (e.g. where a damaged file stopped).
It never raises on bad records; it raises `ImportError_` only when the file as
a whole cannot be read at all.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from necoma.collect.importers import IMPORTERS
from necoma.collect.rejects import Rejects
from necoma.config import Settings
from necoma.lake.ledger import ImportLedger, LedgerEntry, file_digest
from necoma.lake.writer import LakeWriter


class ImportFailed(Exception):
    """The whole file could not be imported; nothing was written."""


@dataclass
class ImportReport:
    kind: str
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    rejects: Rejects = field(default_factory=Rejects)
    notes: list[str] = field(default_factory=list)
    already_imported: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def run_import(kind: str, path: Path, settings: Settings, *, force: bool = False, **options) -> ImportReport:
    try:
        importer = IMPORTERS[kind]
    except KeyError:
        raise ImportFailed(f"unknown import kind {kind!r}; known: {', '.join(sorted(IMPORTERS))}") from None
    path = Path(path)
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    digest = file_digest(path)
    ledger = ImportLedger(settings.state_db)
    try:
        previous = ledger.get(digest, kind)
        report = ImportReport(kind, path)
        if previous and not force:
            report.already_imported = True
            report.rows = previous.rows
            report.notes.append(
                f"already imported on {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(previous.imported_at))} UTC"
                f" (same SHA-256 {digest[:12]}…); use --force to import again"
            )
            return report
        tag = f"{kind}-{digest[:12]}-{uuid.uuid4().hex[:6]}"
        writer = LakeWriter(
            settings.lake_path, tag=tag, batch_rows=settings.lake.batch_rows,
            compression=settings.lake.compression, row_group_rows=settings.lake.row_group_rows,
        )
        try:
            report.notes.extend(importer(path, writer, report.rejects, **options) or [])
            writer.close()
        except Exception:
            # Remove what this import wrote so a retry starts clean; earlier data is untouched.
            writer._pending.clear()
            for f in writer.files_written:
                f.unlink(missing_ok=True)
            raise
        report.rows = dict(writer.rows_written)
        ledger.record(LedgerEntry(digest, kind, str(path), time.time(), report.rows, report.rejects.total,
                                  [str(f) for f in writer.files_written]))
        if previous:  # --force: the new rows are safely stored, now drop the old copy
            for f in previous.files:
                Path(f).unlink(missing_ok=True)
        return report
    finally:
        ledger.close()
