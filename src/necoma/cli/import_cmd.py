"""`necoma import`: load files into the lake."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from necoma.cli.common import console, err_console, fail, settings_from
from necoma.collect.importing import ImportFailed, ImportReport, run_import

app = typer.Typer(help="Import files into the lake (pcap, DNS query logs, URL feeds, IP lists).", no_args_is_help=True)

_FORCE = typer.Option(False, "--force", help="Import again even if this exact file (same SHA-256) was imported; replaces its earlier rows.")


def _report(ctx: typer.Context, report: ImportReport) -> None:
    settings = settings_from(ctx)
    rows = ", ".join(f"{n} {t}" for t, n in sorted(report.rows.items())) or "no rows"
    if report.already_imported:
        console.print(f"{report.path}: skipped, {report.notes[0]} ({rows})")
        return
    console.print(f"{report.path}: imported {rows}; rejected {report.rejects.total}")
    for line in report.rejects.summary(settings.imports.max_reasons):
        err_console.print(f"  rejected: {line}", highlight=False)
    for note in report.notes:
        err_console.print(f"  note: {note}", highlight=False)


def _run(ctx: typer.Context, kind: str, files: list[Path], force: bool, **options) -> None:
    settings = settings_from(ctx)
    failed = 0
    for path in files:
        try:
            _report(ctx, run_import(kind, path, settings, force=force, **options))
        except ImportFailed as exc:
            failed += 1
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("pcap")
def pcap(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="pcap or pcapng files, gzipped or not."),
    force: bool = _FORCE,
) -> None:
    """Import packet captures into `packets`, `dns` and aggregated `flows`.

    Ethernet, 802.1Q, Linux cooked and raw IP; IPv4 and IPv6; DNS over UDP and
    TCP. A damaged capture imports everything before the damage and says where
    it stopped.
    """
    _run(ctx, "pcap", files, force)


@app.command("dnslog")
def dnslog(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="BIND querylog or Unbound log-queries/log-replies files."),
    year: Optional[int] = typer.Option(None, help="Year for log lines whose timestamps have none (Unbound syslog style); default: the file's modification year."),
    force: bool = _FORCE,
) -> None:
    """Import DNS server query logs (BIND querylog, Unbound log-queries and log-replies) into `dns`."""
    _run(ctx, "dnslog", files, force, year=year)


@app.command("urls")
def urls(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="One URL per line, or CSV with a header (see --column)."),
    kind: str = typer.Option("phishing", help="What the URLs are: phishing, spam, malware, ..."),
    feed: Optional[str] = typer.Option(None, help="Feed name stored with each row; default: the file name."),
    column: Optional[str] = typer.Option(None, help="CSV column holding the URL (default: 'url' when the file has a header)."),
    force: bool = _FORCE,
) -> None:
    """Import a URL feed (phishing, spam, ...) into `urls`."""
    _run(ctx, "urls", files, force, url_kind=kind, feed=feed, column=column)


@app.command("iplist")
def iplist(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="One IP address or CIDR per line; '#' starts a comment."),
    name: str = typer.Option(..., "--name", help="List name, e.g. open-resolvers, allow, deny."),
    force: bool = _FORCE,
) -> None:
    """Import an IP list (open resolvers, allow/deny lists) into `iplists`."""
    _run(ctx, "iplist", files, force, list_name=name)
