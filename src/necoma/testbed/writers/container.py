"""Datagram files: UDP payloads with their send times, for replay and import.

A pcap of UDP would do, but it would also carry made-up IP/UDP headers and
force every reader through a packet parser; this container holds exactly
what a collector's socket receives, and the time it was sent. Layout
(little-endian):

    magic   8 bytes  b"NECOMADG"
    version u16      1
    meta    u32 length, then that many bytes of UTF-8 JSON:
            {"protocol": "netflow"|"sflow", "format": "netflow9"|"ipfix"|"sflow5",
             "exporter": "192.0.2.1", "sampling_rate": 10, ...}
    records, to the end of the file:
            u64 send time in microseconds since the epoch
            u32 length
            length bytes of datagram

`exporter` is the address the datagrams came from; import uses it as the
`exporter` column, replay sends from its own socket.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

MAGIC = b"NECOMADG"
_REC = struct.Struct("<QI")


class DatagramWriter:
    def __init__(self, path: Path, meta: dict) -> None:
        self._fh = open(path, "wb")
        raw = json.dumps(meta, sort_keys=True).encode()
        self._fh.write(MAGIC + struct.pack("<HI", 1, len(raw)) + raw)
        self.count = 0

    def write(self, t: float, data: bytes) -> None:
        self._fh.write(_REC.pack(int(round(t * 1e6)), len(data)) + data)
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "DatagramWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_meta(path: Path) -> dict:
    with open(path, "rb") as fh:
        return _header(fh, path)


def _header(fh, path: Path) -> dict:
    head = fh.read(14)
    if len(head) < 14 or head[:8] != MAGIC:
        raise ValueError(f"{path}: not a necoma datagram file")
    version, n = struct.unpack("<HI", head[8:])
    if version != 1:
        raise ValueError(f"{path}: unsupported datagram file version {version}")
    return json.loads(fh.read(n))


def read_datagrams(path: Path) -> tuple[dict, Iterator[tuple[float, bytes]]]:
    """(meta, iterator of (send time in epoch seconds, datagram)); a truncated tail ends the iterator."""
    fh = open(path, "rb")
    meta = _header(fh, path)

    def records() -> Iterator[tuple[float, bytes]]:
        with fh:
            while head := fh.read(_REC.size):
                if len(head) < _REC.size:
                    return
                t_us, n = _REC.unpack(head)
                data = fh.read(n)
                if len(data) < n:
                    return
                yield t_us / 1e6, data

    return meta, records()
