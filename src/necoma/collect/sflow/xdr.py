"""sFlow v5 datagram framing: the header and the walk over tagged samples and records.

sFlow v5 (sflow.org/sflow_version_5.txt) is XDR: big-endian 32-bit words, and
every sample and record is a (data format, length) pair followed by `length`
bytes. That length is what keeps a decoder safe: a structure we do not know, or
one that is broken inside, is skipped by its length, and the structures after it
are still sound. Only a length that runs past its container breaks the walk.

Everything here is pure and raises `Malformed(reason)` on hostile input; the
decoder turns reasons into counted rejections.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

VERSION = 5
U32 = struct.Struct(">I")
U32X2 = struct.Struct(">II")
_HDR_REST = struct.Struct(">IIII")  # sub-agent id, datagram sequence, uptime ms, sample count

# sample formats (enterprise 0)
FLOW_SAMPLE, COUNTER_SAMPLE, FLOW_SAMPLE_EXPANDED, COUNTER_SAMPLE_EXPANDED = 1, 2, 3, 4


class Malformed(Exception):
    """Input that breaks the sFlow structure; `reason` is the rejection counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Header:
    agent: str  # agent address text: the exporter of every row of this datagram
    sub_agent: int
    sequence: int
    uptime_ms: int
    n_samples: int
    offset: int  # where the first sample starts


def read_address(data: bytes, off: int, end: int) -> tuple[str | None, int]:
    """An sFlow address (type 1 IPv4, 2 IPv6, 0 unknown) -> (text or None, next offset)."""
    if off + 4 > end:
        raise Malformed("truncated_address")
    (kind,) = U32.unpack_from(data, off)
    off += 4
    if kind == 0:
        return None, off
    size = 4 if kind == 1 else 16 if kind == 2 else 0
    if not size:
        raise Malformed("bad_address_type")
    if off + size > end:
        raise Malformed("truncated_address")
    raw = data[off:off + size]
    text = ipaddress.IPv4Address(raw).compressed if size == 4 else ipaddress.IPv6Address(raw).compressed
    return text, off + size


def read_header(data: bytes) -> Header:
    if len(data) < 8:
        raise Malformed("truncated_datagram_header")
    (version,) = U32.unpack_from(data, 0)
    if version != VERSION:
        raise Malformed("unknown_version")
    agent, off = read_address(data, 4, len(data))
    if agent is None:
        raise Malformed("bad_address_type")  # rows need an exporter; no agent sends type 0
    if off + 16 > len(data):
        raise Malformed("truncated_datagram_header")
    sub_agent, seq, uptime, n = _HDR_REST.unpack_from(data, off)
    return Header(agent, sub_agent, seq, uptime, n, off + 16)


def split_tagged(data: bytes, off: int, end: int, count: int, what: str) -> tuple[list[tuple[int, int, int]], str | None]:
    """(data format, body start, body end) of `count` tagged structures in [off, end), and
    the reason the walk stopped early (None when all `count` were found).

    A structure whose length runs past `end` stops the walk: nothing after it can be
    located, but everything before it is sound. `count` comes from the wire; it cannot
    make us loop more than the bytes allow, since every structure takes at least 8 bytes.
    """
    out = []
    unpack = U32X2.unpack_from
    for _ in range(count):
        if off + 8 > end:
            return out, f"{what}_count_exceeds_data"
        fmt, length = unpack(data, off)
        off += 8
        if length > end - off:
            return out, f"{what}_length_overflow"
        out.append((fmt, off, off + length))
        off += length
    # Bytes left after the last structure are ignored, as sflowtool does: they hold
    # nothing we could locate, and rejecting for them would lose sound data.
    return out, None


def records(data: bytes, off: int, end: int, count: int) -> list[tuple[int, int, int]]:
    """The records of one sample: all of them, or Malformed (a sample is kept whole or not at all)."""
    check_count(count, off, end, "record")
    found, error = split_tagged(data, off, end, count, "record")
    if error:
        raise Malformed(error)
    return found


def check_count(count: int, off: int, end: int, what: str) -> None:
    """Reject counts that cannot fit before iterating (each structure takes >= 8 bytes)."""
    if count > (end - off) // 8:
        raise Malformed(f"{what}_count_exceeds_data")
