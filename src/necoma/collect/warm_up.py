"""Pay first-use costs before reception starts.

The first bulk decode and the first Parquet write of a process are slow
(numpy and Arrow kernels, the zstd codec: ~70 ms measured here, against 3 ms
afterwards). Paid while datagrams arrive, that pause holds the event loop
longer than a 4 MiB socket buffer lasts at 800 k records/s, and the kernel
drops. So the collector decodes one made-up datagram per protocol in a
throwaway decoder and writes the rows to memory, before it listens.
"""
from __future__ import annotations

import logging
import struct
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from necoma.collect.decoder import Decoder
from necoma.lake.writer import conform

log = logging.getLogger(__name__)


def _netflow_v5() -> bytes:
    """A NetFlow v5 export packet with one record (v5 shares the bulk decoder with v9 and IPFIX)."""
    now = int(time.time())
    header = struct.pack(">HHIIIIBBH", 5, 1, 1000, now, 0, 0, 0, 0, 0)
    record = struct.pack(">IIIHHIIIIHHBBBBHHBBH", 0x0A000001, 0x0A000002, 0, 0, 0, 1, 60, 500, 900,
                         1234, 53, 0, 0, 17, 0, 0, 0, 0, 0, 0)
    return header + record


def _netflow_v9() -> list[bytes]:
    """A NetFlow v9 template, then two data packets: the second goes through the compiled batch walk."""
    now = int(time.time())
    fields = ((8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (22, 4), (21, 4))
    tpl = struct.pack(">HH", 256, len(fields)) + b"".join(struct.pack(">HH", *f) for f in fields)
    rec = struct.pack(">IIHHBIIII", 0x0A000001, 0x0A000002, 1234, 53, 17, 1, 60, 500, 900)
    out = []
    for seq in range(3):
        sets = struct.pack(">HH", 0, 4 + len(tpl)) + tpl if seq == 0 else b""
        sets += struct.pack(">HH", 256, 4 + len(rec)) + rec
        out.append(struct.pack(">HHIIII", 9, 1, 1000, now, seq, 0) + sets)
    return out


SAMPLES = {
    "netflow": _netflow_v5,
    "syslog": lambda: b"<13>1 2026-01-01T00:00:00Z host app - - - warm-up",
}


def warm_up(protocol: str, make: "callable[[], Decoder]", compression: str) -> None:
    """Decode a sample in a throwaway decoder (live counters untouched) and write its rows to memory."""
    try:
        dec = make()
        sample = SAMPLES.get(protocol)
        if sample is not None:
            dec.feed(sample(), "127.0.0.1", time.time())
        if protocol == "netflow" and hasattr(dec, "feed_many"):  # numba kernels: loaded (or compiled) now
            raw = _netflow_v9()
            lens = np.array([len(d) for d in raw], np.int64)
            offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
            # A writable buffer, as the live receive buffer is: numba compiles a read-only array
            # (np.frombuffer of bytes) as another type, so the live path would compile its own
            # version on the first batch received, seconds of reception lost on a fresh install.
            buf = np.frombuffer(bytearray(b"".join(raw)), np.uint8)
            dec.feed_many(buf, offs, lens, ["127.0.0.2"] * len(raw), time.time())
        for name, table in dec.drain(time.time()).items():
            pq.write_table(conform(name, table), pa.BufferOutputStream(), compression=compression)
    except Exception:  # only an optimisation: never a reason not to start
        log.debug("warm-up of %s failed", protocol, exc_info=True)
