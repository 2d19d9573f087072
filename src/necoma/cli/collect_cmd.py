"""`necoma collect`: run the live NetFlow/IPFIX, sFlow and syslog listeners, or show their counters."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from necoma.cli.common import console, err_console, fail, settings_from
from necoma.collect.endpoints import ListenError
from necoma.collect.metrics import read_status


def _ago(t: float, now: float) -> str:
    """Compact age: 5s, 12m, 3h, else the UTC date."""
    if not t:
        return "never"
    s = max(0.0, now - t)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.0f}h" if s < 172800 else time.strftime("%Y-%m-%d", time.gmtime(t))


def _stats_table(status: dict, path: Path) -> Table:
    now = time.time()
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, title=f"necoma collect: pid {status.get('pid')}, {status.get('state')}, "
                        f"updated {_ago(status.get('updated', 0), now)} ago ({path})")
    # Short headers so the table fits 80 columns; addresses fold rather than being cut.
    for col in ("proto", "exporter", "dgrams", "records", "rejected", "cut", "tmpl miss", "seq gaps", "seen ago"):
        table.add_column(col, justify="left" if col in ("proto", "exporter", "rejected") else "right",
                         overflow="fold", min_width=9 if col in ("exporter", "rejected") else None)
    for proto, exporters in sorted(status.get("protocols", {}).items()):
        for exp, c in sorted(exporters.items()):
            rejected = c.get("rejected", {})
            n = sum(rejected.values())
            why = ", ".join(f"{k} {r}" for r, k in sorted(rejected.items(), key=lambda kv: -kv[1]))
            table.add_row(proto, exp, f"{c.get('datagrams', 0):,}", f"{c.get('records', 0):,}",
                          f"{n:,} ({why})" if n else "0", f"{sum(c.get('truncated', {}).values()):,}",
                          f"{c.get('template_misses', 0):,}",
                          f"{c.get('sequence_gaps', 0):,}", _ago(c.get("last_seen", 0), now))
    rows = ", ".join(f"{n:,} {t}" for t, n in sorted(status.get("rows_written", {}).items())) or "none"
    table.caption = (f"cut = sampled headers ending mid-DNS (normal for sFlow, kept as decoded); "
                     f"rows written: {rows}; flushes {status.get('flushes', 0)}; "
                     f"write errors {status.get('write_errors', 0)}; pending rows {status.get('pending_rows', 0)}")
    return table


def collect(
    ctx: typer.Context,
    netflow: Optional[list[str]] = typer.Option(
        None, "--netflow", metavar="ADDR",
        help="Listen for NetFlow v5/v9 and IPFIX on UDP ADDR (HOST:PORT or [IPv6]:PORT). Repeatable; "
             "replaces collect.netflow from necoma.toml."),
    sflow: Optional[list[str]] = typer.Option(
        None, "--sflow", metavar="ADDR",
        help="Listen for sFlow v5 on UDP ADDR. Repeatable; replaces collect.sflow."),
    syslog: Optional[list[str]] = typer.Option(
        None, "--syslog", metavar="ADDR",
        help="Listen for syslog (RFC 3164 and 5424) on UDP and TCP ADDR; TCP takes octet-counted or "
             "newline-framed messages. Repeatable; replaces collect.syslog."),
    duration: Optional[float] = typer.Option(
        None, "--duration", metavar="SECONDS", min=0.0,
        help="Stop after this many seconds, flushing everything (default: run until SIGTERM or Ctrl-C)."),
    flush_seconds: Optional[float] = typer.Option(
        None, "--flush-seconds", metavar="SECONDS", min=0.001,
        help="Write received records to the lake at least this often; replaces collect.flush_seconds."),
    stats_file: Optional[Path] = typer.Option(
        None, "--stats-file", metavar="FILE",
        help="Status file with per-exporter counters, rewritten at each flush; replaces collect.stats_file "
             "(default <data_dir>/collect-stats.json)."),
    metrics_port: Optional[int] = typer.Option(
        None, "--metrics-port", metavar="PORT", min=1, max=65535,
        help="Serve Prometheus text metrics at http://127.0.0.1:PORT/metrics; replaces collect.metrics_port."),
    stats: bool = typer.Option(
        False, "--stats",
        help="Print the counters of the running (or last) collector from its status file as a table, and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also log debug detail (socket errors, per-event notes)."),
) -> None:
    """Receive NetFlow/IPFIX, sFlow and syslog and write them to the lake.

    Records go to the `flows`, `packets`, `interfaces` and `syslog` tables every
    flush interval. SIGTERM and SIGINT (Ctrl-C) stop reception and flush
    everything already received before exit. Bad datagrams are counted per
    exporter and reason (see --stats), never fatal.
    """
    settings = settings_from(ctx)
    updates = {k: v for k, v in {"flush_seconds": flush_seconds, "stats_file": stats_file,
                                 "metrics_port": metrics_port}.items() if v is not None}
    if updates:
        settings = settings.model_copy(update={"collect": settings.collect.model_copy(update=updates)})
    status_path = settings.collect.stats_file or settings.data_dir / "collect-stats.json"
    if stats:
        try:
            console.print(_stats_table(read_status(status_path), status_path))
        except FileNotFoundError:
            fail(f"no status file at {status_path}: has `necoma collect` run with these settings?", 1)
        except ValueError as exc:
            fail(f"{status_path}: not a status file ({exc})", 1)
        return

    from necoma.collect.listener import listen_from, run_collector

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # necoma's own start/stop and first-rejection lines are always shown.
    logging.getLogger("necoma").setLevel(logging.DEBUG if verbose else logging.INFO)
    listen = listen_from(settings.collect, {"netflow": netflow, "sflow": sflow, "syslog": syslog})
    try:
        rows = run_collector(settings, listen, stats_file=status_path, duration=duration)
    except ListenError as exc:
        fail(str(exc))
    summary = ", ".join(f"{n} {t}" for t, n in sorted(rows.items())) or "no rows"
    err_console.print(f"necoma collect: stopped; wrote {summary} to {settings.lake_path}; "
                      f"counters in {status_path}", highlight=False)
