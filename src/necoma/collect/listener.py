"""The live collector: listeners → decoders → lake, with a status file and metrics.

One asyncio loop receives on every endpoint and feeds the decoders. Every
DRAIN_SECONDS the loop drains the decoders (they bulk-decode what was fed);
once `lake.batch_rows` rows are buffered, or `flush_seconds` have passed, the
batch goes to one of LAKE_WRITERS writer threads that turn batches into
Parquet files (Arrow and zstd release the GIL), so reception never waits for
the disk.
Rows held for the lake are capped (`collect.max_buffered_rows`): above the
cap the UDP readers pause until the writer catches up, and what the kernel
then drops is counted per socket (`kernel_drops`), never silent. SIGTERM and
SIGINT stop reception, read what the kernel already holds, and flush
everything before exit.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from necoma.collect.decoder import Decoder
from necoma.collect.endpoints import (
    UDP_RCVBUF, ListenAddress, ListenError, TcpSyslogEndpoint, UdpEndpoint, open_udp_socket, parse_address,
)
from necoma.collect.metrics import MetricsServer, write_status
from necoma.collect.syslog import SyslogDecoder
from necoma.collect.warm_up import warm_up
from necoma.config import CollectSettings, Settings
from necoma.lake.writer import LakeWriter

log = logging.getLogger(__name__)

PROTOCOLS = ("netflow", "sflow", "syslog")
DRAIN_SECONDS = 0.25  # decoders are drained this often (short pauses in reception)
# Every recvfrom releases the GIL; the writer thread then holds it for up to the
# interpreter's switch interval (5 ms by default), and a 4 MiB socket buffer lasts
# ~50 ms at 1.2 M records/s. A shorter interval cut kernel drops 2-3x here.
GIL_SWITCH_SECONDS = 0.0005
RESUME_FRACTION = 0.5  # paused readers resume once buffered rows fall below this share of the cap
MAX_RETRY_BATCHES = 100  # failed lake writes kept for retry; older ones are dropped, counted in the log
# Parquet files written at once. Encoding is CPU-bound and releases the GIL: a second writer
# keeps the lake up with reception at high rates, and on a machine whose cores other jobs share.
LAKE_WRITERS = 2
STATUS_SECONDS = 1.0  # while writes overlap, the status file is still rewritten this often


def make_decoder(protocol: str, cs: CollectSettings) -> Decoder:
    """One decoder per protocol, shared by all its listen addresses."""
    if protocol == "syslog":
        return SyslogDecoder()
    try:
        if protocol == "netflow":
            from necoma.collect.netflow import NetflowDecoder

            return NetflowDecoder(template_wait_seconds=cs.template_wait_seconds,
                                  max_pending_datagrams=cs.max_pending_datagrams, background_decode=True)
        if protocol == "sflow":
            from necoma.collect.sflow import SflowDecoder

            return SflowDecoder()
    except ImportError as exc:
        raise ListenError(f"the {protocol} decoder is not available in this build: {exc}") from None
    raise ListenError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


@dataclass
class _WriteState:
    """Owned by the writer thread; the loop only reads copies of its counters."""

    rows_written: dict[str, int] = field(default_factory=dict)
    retry: list[tuple[str, pa.Table]] = field(default_factory=list)
    flushes: int = 0
    write_errors: int = 0
    last_flush_seconds: float = 0.0


class Collector:
    """Runs the listeners named in `listen` ({protocol: [addresses]}) until stopped."""

    def __init__(self, settings: Settings, listen: dict[str, list[str]], *, stats_file: Path | None = None,
                 metrics_port: int | None = None, duration: float | None = None) -> None:
        self.settings = settings
        self.cs = settings.collect
        self.addresses = {p: [parse_address(a) for a in addrs] for p, addrs in listen.items() if addrs}
        if not self.addresses:
            raise ListenError("nothing to listen on: give --netflow, --sflow or --syslog, or [collect] in necoma.toml")
        self.decoders: dict[str, Decoder] = {p: make_decoder(p, self.cs) for p in self.addresses}
        self.stats_file = stats_file or self.cs.stats_file or settings.data_dir / "collect-stats.json"
        self.metrics_port = metrics_port if metrics_port is not None else self.cs.metrics_port
        self.duration = duration
        self._local = threading.local()  # each writer thread's own LakeWriter (whole files of its own)
        self._wlock = threading.Lock()  # guards _w and the status bookkeeping below across writer threads
        self._writing = 0  # writes in progress
        self._writing_rows = 0
        self._seq = 0  # submits so far (loop thread)
        self._status_seq = -1  # the newest status snapshot handed to a writer, and that snapshot
        self._status: dict = {}
        self._status_at = 0.0
        self.started = time.time()
        self.listening: dict[str, list[str]] = {}
        self.state = "starting"
        self._w = _WriteState()
        self._batch: list[tuple[str, pa.Table]] = []  # drained, not yet handed to the writer
        self._batch_rows = 0
        self._inflight_rows = 0  # handed to the writer, not yet written
        self._writes: set[asyncio.Future] = set()
        self._udp: list[UdpEndpoint] = []
        self._paused_since: float | None = None
        self.pauses = 0
        self.paused_seconds = 0.0
        self._pool = ThreadPoolExecutor(max_workers=LAKE_WRITERS, thread_name_prefix="lake-writer")

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> dict[str, int]:
        """Listen until SIGTERM/SIGINT or `duration`; return rows written per table."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        udp: list[UdpEndpoint] = []
        tcp: list[TcpSyslogEndpoint] = []
        metrics: MetricsServer | None = None
        for proto in self.addresses:
            warm_up(proto, lambda: make_decoder(proto, self.cs), self.settings.lake.compression)
        try:
            for proto, addrs in self.addresses.items():
                for addr in addrs:
                    udp.append(UdpEndpoint(loop, open_udp_socket(addr), self.decoders[proto]))
                    self.listening.setdefault(proto, []).append(f"udp {addr}")
                    if proto == "syslog":
                        dec = self.decoders[proto]
                        assert isinstance(dec, SyslogDecoder)
                        ep = TcpSyslogEndpoint(dec)
                        await ep.start(addr)
                        tcp.append(ep)
                        self.listening[proto].append(f"tcp {addr}")
            if self.metrics_port:
                metrics = MetricsServer(self.status)
                try:
                    await metrics.start("127.0.0.1", self.metrics_port)
                except OSError as exc:
                    raise ListenError(f"cannot serve metrics on 127.0.0.1:{self.metrics_port}: "
                                      f"{exc.strerror or exc}") from None
                self.listening["metrics"] = [f"http 127.0.0.1:{self.metrics_port}/metrics"]
        except BaseException:
            for ep in udp:
                loop.remove_reader(ep.sock.fileno())
                ep.sock.close()
            for t in tcp:
                await t.close(grace=0)
            self._pool.shutdown()
            raise
        self._udp = udp
        if udp:
            got = min(ep.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for ep in udp)
            if got < UDP_RCVBUF:  # Linux reports twice the usable size
                log.warning("UDP receive buffers are %d bytes, not %d: bursts may be lost; "
                            "raise sysctl net.core.rmem_max", got, UDP_RCVBUF)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig, stop)
        self.state = "running"
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, GIL_SWITCH_SECONDS))
        log.info("collecting: %s", "; ".join(f"{p}: {', '.join(a)}" for p, a in self.listening.items()))
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            if self.duration is not None:
                await asyncio.wait_for(stop.wait(), self.duration)
            else:
                await stop.wait()
        except TimeoutError:
            pass
        finally:
            self.state = "stopping"
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            for ep in udp:
                ep.close()
            for t in tcp:
                await t.close()
            self.state = "stopped"
            await self.flush(final=True)
            if metrics is not None:
                metrics.close()
            self._pool.shutdown(wait=True)
            sys.setswitchinterval(switch)
            # Only now: a second Ctrl-C during the final flush must not interrupt it.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return dict(self._w.rows_written)

    def _on_signal(self, sig: signal.Signals, stop: asyncio.Event) -> None:
        if stop.is_set() or self.state != "running":
            log.info("%s: already stopping, still flushing", signal.Signals(sig).name)
        else:
            log.info("%s: flushing and stopping", signal.Signals(sig).name)
        stop.set()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        # Drain often (a drain runs in the loop thread: decoders are not thread-safe),
        # hand a batch to the writer when it is big enough or old enough.
        loop = asyncio.get_running_loop()
        tick = min(DRAIN_SECONDS, self.cs.flush_seconds)
        last_write = loop.time()
        while not stop.is_set():
            await asyncio.sleep(tick)
            self._drain()
            due = loop.time() - last_write >= self.cs.flush_seconds - tick / 2
            if due or self._batch_rows >= self.settings.lake.batch_rows:
                last_write = loop.time()
                self._submit()
            self._apply_backpressure()

    def _drain(self, final: bool = False) -> None:
        now = time.time()
        for proto, dec in self.decoders.items():
            try:
                # At exit, a time past every template wait: data still waiting for
                # its template is counted as a template miss rather than vanishing.
                if final:
                    tables = dec.drain(now + self.cs.template_wait_seconds + 1)
                elif getattr(dec, "background", False):  # decodes still running come at a later drain
                    tables = dec.drain(now, wait=False)
                else:
                    tables = dec.drain(now)
            except Exception:  # a decoder bug must not stop collection of the others
                log.exception("%s decoder failed to drain", proto)
                continue
            for name, t in tables.items():
                if t.num_rows:
                    self._batch.append((name, t))
                    self._batch_rows += t.num_rows

    def _submit(self) -> asyncio.Future:
        """Hand the drained batch to a writer thread (up to LAKE_WRITERS writes at once)."""
        batch, rows = self._batch, self._batch_rows
        self._batch, self._batch_rows = [], 0
        self._inflight_rows += rows
        self._seq += 1
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._write, batch, self.status(), self._seq)
        self._writes.add(fut)
        fut.add_done_callback(lambda f, rows=rows: self._written(f, rows))
        return fut

    def _written(self, fut: asyncio.Future, rows: int) -> None:
        self._writes.discard(fut)
        self._inflight_rows -= rows
        if not fut.cancelled() and fut.exception() is not None:
            log.error("lake writer failed: %s", fut.exception())
        self._apply_backpressure()

    def buffered_rows(self) -> int:
        """Decoded rows held in memory for the lake: drained, in the writer's queue, or awaiting retry."""
        return self._batch_rows + self._inflight_rows + sum(t.num_rows for _, t in list(self._w.retry))

    def _apply_backpressure(self) -> None:
        held, cap = self.buffered_rows(), self.cs.max_buffered_rows
        if self._paused_since is None and held >= cap and self.state == "running":
            self._paused_since = time.monotonic()
            self.pauses += 1
            log.warning("%d rows wait for the lake (cap %d): reception paused until the writer catches up; "
                        "datagrams the kernel drops meanwhile are counted as kernel_drops", held, cap)
            for ep in self._udp:
                ep.pause()
        elif self._paused_since is not None and held < cap * RESUME_FRACTION:
            self.paused_seconds += time.monotonic() - self._paused_since
            self._paused_since = None
            for ep in self._udp:
                ep.resume()

    async def flush(self, final: bool = False) -> None:
        """Drain every decoder in the loop thread; write the batch, and all before it, in the writer thread."""
        self._drain(final)
        self._submit()
        # Shielded: a cancelled flush must not abandon a write half-way.
        await asyncio.shield(asyncio.gather(*self._writes, return_exceptions=True))

    def _lake_writer(self) -> LakeWriter:
        lw = getattr(self._local, "writer", None)
        if lw is None:
            lake = self.settings.lake
            lw = self._local.writer = LakeWriter(self.settings.lake_path, tag=f"collect-{os.getpid()}",
                                                 batch_rows=lake.batch_rows, compression=lake.compression,
                                                 row_group_rows=lake.row_group_rows)
        return lw

    def _write(self, batch: list[tuple[str, pa.Table]], status: dict, seq: int) -> None:
        """Writer thread: Parquet files, then the status file that counts them."""
        w = self._w
        with self._wlock:
            todo = w.retry + batch
            w.retry = []
            rows = sum(t.num_rows for _, t in todo)
            self._writing += 1
            self._writing_rows += rows
        writer = self._lake_writer()
        failed: list[tuple[str, pa.Table]] = []
        t0 = time.perf_counter()
        for i, (name, table) in enumerate(todo):
            try:
                writer.write(name, table)
                writer.flush(name)
                with self._wlock:
                    w.rows_written[name] = w.rows_written.get(name, 0) + table.num_rows
            except Exception:
                with self._wlock:
                    w.write_errors += 1
                log.exception("writing %d %s rows to the lake failed; retrying at the next flush",
                              table.num_rows, name)
                failed = todo[i:]
                break
        with self._wlock:
            w.retry = failed + w.retry
            if len(w.retry) > MAX_RETRY_BATCHES:
                lost = w.retry[:-MAX_RETRY_BATCHES]
                log.error("lake unwritable: dropping %d rows", sum(t.num_rows for _, t in lost))
                w.retry = w.retry[-MAX_RETRY_BATCHES:]
            w.flushes += 1
            w.last_flush_seconds = round(time.perf_counter() - t0, 6)
            self._writing -= 1
            self._writing_rows -= rows
            if seq > self._status_seq:  # an older snapshot never replaces a newer one
                self._status_seq, self._status = seq, status
            # The last write to finish always writes the status: then everything submitted is
            # written or awaits retry. While writes overlap, at least every STATUS_SECONDS.
            if self._writing == 0 or time.monotonic() - self._status_at >= STATUS_SECONDS:
                self._status_at = time.monotonic()
                out = {**self._status, **self._write_counters()}
                out["buffered_rows"] = out["pending_rows"] + self._writing_rows
                try:
                    write_status(self.stats_file, out)
                except OSError as exc:
                    log.error("cannot write status file %s: %s", self.stats_file, exc)

    # ------------------------------------------------------------ status

    def _write_counters(self) -> dict:
        w = self._w  # read without the lock by the loop thread: a snapshot may be a write behind
        return {"rows_written": dict(w.rows_written), "flushes": w.flushes, "write_errors": w.write_errors,
                "last_flush_seconds": w.last_flush_seconds,
                "pending_rows": sum(t.num_rows for _, t in list(w.retry))}

    def _intake(self) -> dict:
        """Reception health: back-pressure and what the kernel dropped per UDP socket."""
        paused = self.paused_seconds
        if self._paused_since is not None:
            paused += time.monotonic() - self._paused_since
        return {"buffered_rows": self.buffered_rows(), "pauses": self.pauses, "paused_seconds": round(paused, 3),
                "kernel_drops": {ep.name: ep.kernel_drops() for ep in self._udp}}

    def status(self) -> dict:
        """Snapshot of every counter, taken in the loop thread (decoders are not shared with the writer)."""
        return {
            "pid": os.getpid(), "state": self.state, "started": self.started, "updated": time.time(),
            "lake": str(self.settings.lake_path), "listening": self.listening,
            "protocols": {p: d.stats.as_dict() for p, d in self.decoders.items()},
            **self._write_counters(), **self._intake(),
        }


def listen_from(cs: CollectSettings, overrides: dict[str, list[str] | None]) -> dict[str, list[str]]:
    """Addresses per protocol: command-line ones replace the config's for that protocol."""
    return {p: list(overrides.get(p) or getattr(cs, p)) for p in PROTOCOLS}


def run_collector(settings: Settings, listen: dict[str, list[str]], **kw) -> dict[str, int]:
    return asyncio.run(Collector(settings, listen, **kw).run())


__all__ = ["Collector", "ListenAddress", "ListenError", "listen_from", "make_decoder", "run_collector"]
