"""Status file and Prometheus text metrics of `necoma collect`.

Both are rendered from one status snapshot (a plain dict, see
`Collector.status`), so the file, `necoma collect --stats` and the metrics
always agree. The HTTP server is a few lines of asyncio rather than
`prometheus_client`, whose default registry is process-global state and
which would add a dependency for one text endpoint.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# (metric, per-exporter counter key, help)
_COUNTERS = [
    ("datagrams", "datagrams", "Datagrams (or TCP syslog messages) received."),
    ("bytes", "bytes", "Payload bytes received."),
    ("records", "records", "Records decoded (flows, samples, messages)."),
    ("template_misses", "template_misses", "Data records dropped because their template never came."),
    ("sequence_gaps", "sequence_gaps", "Records the exporter sent that never arrived (exporter sequence numbers)."),
]


def write_status(path: Path, status: dict) -> None:
    """Replace the status file atomically: readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_status(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(status: dict) -> str:
    """Prometheus text exposition format 0.0.4."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP necoma_collect_{name} {help_}")
        out.append(f"# TYPE necoma_collect_{name} {kind}")

    protocols: dict[str, dict[str, dict]] = status.get("protocols", {})
    for metric, key, help_ in _COUNTERS:
        family(f"{metric}_total", "counter", help_)
        for proto, exporters in sorted(protocols.items()):
            for exp, c in sorted(exporters.items()):
                out.append(f'necoma_collect_{metric}_total{{protocol="{proto}",exporter="{_label(exp)}"}} {c.get(key, 0)}')
    family("rejected_total", "counter", "Datagrams or records rejected, by reason.")
    for proto, exporters in sorted(protocols.items()):
        for exp, c in sorted(exporters.items()):
            for reason, n in sorted(c.get("rejected", {}).items()):
                out.append(f'necoma_collect_rejected_total{{protocol="{proto}",exporter="{_label(exp)}",'
                           f'reason="{_label(reason)}"}} {n}')
    family("truncated_total", "counter",
           "Sampled headers cut mid-protocol by the agent's header length (decoded as far as they go; not errors).")
    for proto, exporters in sorted(protocols.items()):
        for exp, c in sorted(exporters.items()):
            for reason, n in sorted(c.get("truncated", {}).items()):
                out.append(f'necoma_collect_truncated_total{{protocol="{proto}",exporter="{_label(exp)}",'
                           f'reason="{_label(reason)}"}} {n}')
    family("last_seen_timestamp_seconds", "gauge", "When the exporter was last heard from (Unix time).")
    for proto, exporters in sorted(protocols.items()):
        for exp, c in sorted(exporters.items()):
            out.append(f'necoma_collect_last_seen_timestamp_seconds{{protocol="{proto}",exporter="{_label(exp)}"}} '
                       f'{c.get("last_seen", 0)}')
    family("rows_written_total", "counter", "Rows written to the lake, by table.")
    for table, n in sorted(status.get("rows_written", {}).items()):
        out.append(f'necoma_collect_rows_written_total{{table="{_label(table)}"}} {n}')
    family("kernel_drops_total", "counter",
           "Datagrams the kernel dropped for a UDP listener because its receive buffer was full.")
    for listen, n in sorted(status.get("kernel_drops", {}).items()):
        out.append(f'necoma_collect_kernel_drops_total{{listen="{_label(listen)}"}} {n}')
    for name, kind, help_ in [
        ("buffered_rows", "gauge", "Decoded rows held in memory for the lake (capped by collect.max_buffered_rows)."),
        ("pauses_total", "counter", "Times reception paused because the lake writer fell behind."),
        ("paused_seconds", "gauge", "Seconds reception has spent paused for the lake writer."),
        ("flushes_total", "counter", "Flushes to the lake."),
        ("write_errors_total", "counter", "Lake writes that failed (their rows are retried at the next flush)."),
        ("pending_rows", "gauge", "Rows whose lake write failed, waiting to be retried."),
        ("last_flush_seconds", "gauge", "Duration of the last lake write."),
        ("start_time_seconds", "gauge", "When the collector started (Unix time)."),
    ]:
        family(name, kind, help_)
        key = name.removesuffix("_total") if name != "start_time_seconds" else "started"
        out.append(f"necoma_collect_{name} {status.get(key, 0)}")
    return "\n".join(out) + "\n"


class MetricsServer:
    """GET /metrics on 127.0.0.1:PORT; anything else is 404. Requests are tiny and time-limited."""

    def __init__(self, snapshot: Callable[[], dict]) -> None:
        self.snapshot = snapshot
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, reuse_address=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) >= 2 and parts[0] in (b"GET", b"HEAD") and parts[1].split(b"?")[0] in (b"/metrics", b"/"):
                body = render_metrics(self.snapshot()).encode()
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
                if parts[0] == b"HEAD":
                    body = b""
            else:
                body, status, ctype = b"not found: try /metrics\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await asyncio.wait_for(writer.drain(), 5.0)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass  # a broken or slow client gets nothing; others are unaffected
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
