"""Back-pressure of the live collector: a stalled lake writer pauses reception, memory stays
capped, and every datagram is accounted for as stored or as a kernel drop (real UDP, loopback)."""
from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time

from necoma.collect import listener
from necoma.collect.endpoints import open_udp_socket
from necoma.collect.metrics import render_metrics
from necoma.config import Settings
from necoma.lake.writer import LakeWriter

SENT = 6_000
CAP = 1_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stalled_writer_pauses_reception_and_every_datagram_is_accounted(tmp_path, monkeypatch):
    # A small socket buffer, so the kernel drops while reception is paused.
    monkeypatch.setattr(listener, "open_udp_socket", functools.partial(open_udp_socket, rcvbuf=64 * 1024))
    stall = threading.Event()
    real_write = LakeWriter.write
    peak = {"buffered": 0}

    def slow_write(self, table, data):  # the first writes wait: a disk that stalls
        if not stall.is_set():
            time.sleep(1.5)
            stall.set()
        real_write(self, table, data)

    monkeypatch.setattr(LakeWriter, "write", slow_write)
    port = _free_port()
    settings = Settings(data_dir=tmp_path, lake={"batch_rows": 200},
                        collect={"flush_seconds": 0.2, "max_buffered_rows": CAP})
    c = listener.Collector(settings, {"syslog": [f"127.0.0.1:{port}"]}, duration=6.0)
    real_drain = c._drain

    def watched_drain(final: bool = False) -> None:
        real_drain(final)
        peak["buffered"] = max(peak["buffered"], c.buffered_rows())

    c._drain = watched_drain

    def send() -> None:
        time.sleep(0.5)  # the collector is listening by then
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(SENT):  # ~2,000/s: the collector keeps up unless paused
                s.sendto(b"<13>1 2026-12-03T01:02:03Z host app - - - message %d" % i, ("127.0.0.1", port))
                if i % 20 == 19:
                    time.sleep(0.01)

    sender = threading.Thread(target=send)
    sender.start()
    written = asyncio.run(c.run())
    sender.join()

    status = json.loads((tmp_path / "collect-stats.json").read_text())
    (drops,) = status["kernel_drops"].values()
    received = status["protocols"]["syslog"]["127.0.0.1"]["datagrams"]
    assert status["pauses"] >= 1 and status["paused_seconds"] > 0
    assert drops > 0, "the stall should have filled the 64 KiB socket buffer"
    assert received + drops == SENT  # nothing lost without a count
    assert written["syslog"] == received == status["rows_written"]["syslog"]
    # Memory: the cap, plus what one drain can add before the check runs.
    assert peak["buffered"] < CAP + 2_000
    assert status["buffered_rows"] == 0
    text = render_metrics(status)
    assert f'necoma_collect_kernel_drops_total{{listen="syslog udp 127.0.0.1:{port}"}} {drops}' in text
    assert "necoma_collect_pauses_total 1" in text or status["pauses"] > 1


def test_warm_up_samples_decode_cleanly():
    # The warm-up must exercise the real bulk decode (its failures are only logged at debug).
    from necoma.collect.warm_up import SAMPLES

    cs = Settings().collect
    for proto, sample in SAMPLES.items():
        dec = listener.make_decoder(proto, cs)
        dec.feed(sample(), "127.0.0.1", time.time())
        tables = dec.drain(time.time())
        st = dec.stats.of("127.0.0.1")
        assert st.records == 1 and not st.rejected, (proto, st)
        assert sum(t.num_rows for t in tables.values()) == 1


def test_overlapping_writes_leave_a_status_that_counts_both(tmp_path, monkeypatch):
    """Two writer threads: the newer batch may finish first; the last write to finish writes the
    status, with the newest snapshot and every row of both batches."""
    import pyarrow as pa

    first_started, release = threading.Event(), threading.Event()
    real_write = LakeWriter.write

    def write(self, table, data):
        if data.num_rows == 3:  # the older batch stalls until the newer one is written
            first_started.set()
            release.wait(10)
        real_write(self, table, data)

    monkeypatch.setattr(LakeWriter, "write", write)
    c = listener.Collector(Settings(data_dir=tmp_path), {"syslog": ["127.0.0.1:5514"]})  # not bound here

    def rows(n: int) -> pa.Table:
        return pa.table({"time": pa.array([1_796_000_000_000_000] * n, pa.timestamp("us", tz="UTC")),
                         "host": ["h"] * n, "message": ["m"] * n})

    older = threading.Thread(target=c._write, args=([("syslog", rows(3))], {"state": "running"}, 1))
    older.start()
    assert first_started.wait(10)
    c._write([("syslog", rows(5))], {"state": "stopped"}, 2)  # finishes first: a write is still going on
    assert json.loads(c.stats_file.read_text())["buffered_rows"] == 3  # the stalled batch, still held
    release.set()
    older.join()
    st = json.loads(c.stats_file.read_text())
    assert st["state"] == "stopped" and st["rows_written"] == {"syslog": 8} and st["buffered_rows"] == 0
    c._pool.shutdown()


def test_warm_up_compiles_what_live_reception_runs():
    """After the warm-up, a batch in the live receive buffer's type (a writable array over a
    reused bytearray) must run already-compiled kernels: a signature compiled on the first
    real batch stalls reception for seconds on a fresh install (53 % loss measured at 2.4 M
    records/s when the warm-up passed a read-only array)."""
    import numpy as np

    from necoma.collect import wire_jit
    from necoma.collect.netflow import v9_kernel
    from necoma.collect.warm_up import _netflow_v9, warm_up

    cs = Settings().collect
    warm_up("netflow", lambda: listener.make_decoder("netflow", cs), "zstd")
    kernels = [getattr(m, n) for m in (v9_kernel, wire_jit) for n in dir(m)
               if hasattr(getattr(m, n), "signatures") and getattr(m, n).signatures]
    assert v9_kernel.walk in kernels and v9_kernel.gather in kernels
    before = {k: len(k.signatures) for k in kernels}

    raw = _netflow_v9()
    buf = bytearray(1 << 16)  # as endpoints.UdpEndpoint / recvmmsg.BatchReceiver receive into
    at = 0
    offs, lens = [], []
    for d in raw:
        buf[at:at + len(d)] = d
        offs.append(at)
        lens.append(len(d))
        at += len(d)
    dec = listener.make_decoder("netflow", cs)
    dec.feed_many(np.frombuffer(buf, np.uint8), np.array(offs, np.int64), np.array(lens, np.int64),
                  ["127.0.0.9"] * len(raw), time.time())
    assert sum(t.num_rows for t in dec.drain(time.time() + 60).values()) == len(raw)  # one record each, every one decoded
    grown = {k.__name__: (before[k], len(k.signatures)) for k in kernels if len(k.signatures) != before[k]}
    assert not grown, f"compiled on the first live batch, not in the warm-up: {grown}"
