"""`necoma testbed import DIR`: load a scenario directory into the lake, quickly and only once.

Files go through the same code as production data: the pcap and text
importers by `run_import` (deduplicated by content hash in the import
ledger), and the NetFlow/IPFIX/sFlow datagram files through the live
collectors' decoders (`NetflowDecoder`, `SflowDecoder`, `SyslogDecoder`),
fed each datagram with its recorded send time as the reception time, so
rows are exactly what `necoma collect` would have stored from a replay.
Datagram and syslog files are recorded in the same ledger (kinds
`testbed-netflow`, `testbed-sflow`, `testbed-syslog`), so re-importing is
a no-op.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from necoma.collect.importing import ImportFailed, run_import
from necoma.config import Settings
from necoma.lake.ledger import ImportLedger, LedgerEntry, file_digest
from necoma.lake.writer import LakeWriter
from necoma.testbed.network import SYSLOG_RELAY
from necoma.testbed.truth import load_truth
from necoma.testbed.writers.container import read_datagrams
from necoma.testbed.writers.text import read_syslog

DRAIN_EVERY = 5000  # datagrams between decoder drains: bounds memory, keeps Parquet files few


@dataclass
class FileResult:
    path: Path
    kind: str
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    skipped: bool = False  # already imported (same content)
    note: str = ""


def _decoder(protocol: str, settings: Settings):
    if protocol == "netflow":
        from necoma.collect.netflow import NetflowDecoder

        return NetflowDecoder.from_settings(settings.collect)
    if protocol == "sflow":
        from necoma.collect.sflow import SflowDecoder

        return SflowDecoder()
    from necoma.collect.syslog import SyslogDecoder

    return SyslogDecoder()


def _rejected(decoder) -> int:
    return sum(sum(st.rejected.values()) + st.template_misses for st in decoder.stats.exporters.values())


def _feed_file(path: Path, kind: str, protocol: str, datagrams: Callable[[], tuple[str, Iterable]],
               settings: Settings, force: bool) -> FileResult:
    """Feed one file's datagrams to a decoder and write the rows, recorded in the import ledger."""
    digest = file_digest(path)
    ledger = ImportLedger(settings.state_db)
    try:
        previous = ledger.get(digest, kind)
        if previous and not force:
            return FileResult(path, kind, previous.rows, previous.rejected, skipped=True)
        decoder = _decoder(protocol, settings)
        writer = LakeWriter(settings.lake_path, tag=f"{kind}-{digest[:12]}-{uuid.uuid4().hex[:6]}",
                            batch_rows=settings.lake.batch_rows, compression=settings.lake.compression,
                            row_group_rows=settings.lake.row_group_rows)
        exporter, items = datagrams()
        last = 0.0
        try:
            for n, (t, data) in enumerate(items, 1):
                decoder.feed(data, exporter, t)
                last = t
                if n % DRAIN_EVERY == 0:
                    for table, rows in decoder.drain(t).items():
                        writer.write(table, rows)
            # A late "now" releases anything still waiting for a template, as a collector would on shutdown.
            for table, rows in decoder.drain(last + 3600.0).items():
                writer.write(table, rows)
            writer.close()
        except Exception:
            writer._pending.clear()
            for f in writer.files_written:
                f.unlink(missing_ok=True)
            raise
        result = FileResult(path, kind, dict(writer.rows_written), _rejected(decoder))
        ledger.record(LedgerEntry(digest, kind, str(path), time.time(), result.rows, result.rejected,
                                  [str(f) for f in writer.files_written]))
        if previous:
            for f in previous.files:
                Path(f).unlink(missing_ok=True)
        return result
    finally:
        ledger.close()


def _run(kind: str, path: Path, settings: Settings, force: bool, **options) -> FileResult:
    report = run_import(kind, path, settings, force=force, **options)
    return FileResult(path, kind, dict(report.rows), report.rejects.total, report.already_imported,
                      "; ".join(report.notes[:1]) if not report.already_imported else "")


def import_scenario(directory: Path, settings: Settings, *, force: bool = False,
                    progress: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """Import every file of a scenario directory; returns one result per file."""
    directory = Path(directory)
    truth = load_truth(directory)
    year = int(truth["day"][:4])
    results: list[FileResult] = []

    def done(r: FileResult) -> None:
        results.append(r)
        if progress:
            progress(r)

    text_files = (("dns.pcap", "pcap", {}), ("dns-query.log", "dnslog", {"year": year}),
                  ("urls.csv", "urls", {"url_kind": "phishing", "feed": "testbed-phishing"}),
                  ("spam.txt", "urls", {"url_kind": "spam", "feed": "testbed-spam"}),
                  ("open-resolvers.txt", "iplist", {"list_name": "open-resolvers"}))
    for name, kind, options in text_files:
        path = directory / name
        if path.is_file():
            try:
                done(_run(kind, path, settings, force, **options))
            except ImportFailed as exc:
                done(FileResult(path, kind, note=f"failed: {exc}"))
            except ModuleNotFoundError as exc:
                done(FileResult(path, kind, skipped=True, note=f"importer not available ({exc.name})"))
    for sub, protocol in (("netflow", "netflow"), ("sflow", "sflow")):
        for path in sorted((directory / sub).glob("*.bin")):
            def datagrams(path=path):
                meta, items = read_datagrams(path)
                return meta["exporter"], items
            try:
                done(_feed_file(path, f"testbed-{protocol}", protocol, datagrams, settings, force))
            except ModuleNotFoundError as exc:
                done(FileResult(path, f"testbed-{protocol}", skipped=True, note=f"decoder not available ({exc.name})"))
    path = directory / "syslog.log"
    if path.is_file():
        try:
            done(_feed_file(path, "testbed-syslog", "syslog", lambda: (SYSLOG_RELAY, read_syslog(path, year)),
                            settings, force))
        except ModuleNotFoundError as exc:
            done(FileResult(path, "testbed-syslog", skipped=True, note=f"syslog decoder not available ({exc.name})"))
    return results
