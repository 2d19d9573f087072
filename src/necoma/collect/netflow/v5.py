"""NetFlow v5: a fixed 24-byte header and up to 30 fixed 48-byte records.

The v5 record is expressed as a template of IPFIX IEs so that it goes through
the same bulk decoder as v9/IPFIX (times are sysUptime-relative, IE 21/22).
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from necoma.collect.netflow.templates import FieldSpec, Template

HEADER = struct.Struct(">HHIIIIBBH")
RECORD_LENGTH = 48
MAX_COUNT = 30  # Cisco's limit; a larger count is hostile, not a big datagram

_PAD = 210  # paddingOctets: an IE that maps to no column
V5_TEMPLATE = Template(
    tid=0,
    fields=tuple(FieldSpec(ie, length) for ie, length in (
        (8, 4), (12, 4), (15, 4),  # srcaddr, dstaddr, nexthop
        (10, 2), (14, 2),  # input, output ifIndex
        (2, 4), (1, 4),  # dPkts, dOctets
        (22, 4), (21, 4),  # First, Last (sysUptime ms)
        (7, 2), (11, 2), (_PAD, 1), (6, 1), (4, 1), (5, 1),  # ports, pad1, tcp_flags, prot, tos
        (16, 2), (17, 2), (9, 1), (13, 1), (_PAD, 2),  # src_as, dst_as, masks, pad2
    )),
)
assert V5_TEMPLATE.record_length == RECORD_LENGTH


class V5Header(NamedTuple):
    count: int
    uptime_ms: int
    unix_secs: int
    unix_nsecs: int
    sequence: int
    engine_type: int
    engine_id: int
    sampling: int  # 2-bit mode, 14-bit interval

    @property
    def export_ms(self) -> int:
        return self.unix_secs * 1000 + min(self.unix_nsecs, 999_999_999) // 1_000_000

    @property
    def domain(self) -> int:
        """v5 has no source id; engine type and id name the flow cache instead."""
        return (self.engine_type << 8) | self.engine_id

    @property
    def sampling_rate(self) -> int:
        return (self.sampling & 0x3FFF) or 1


def parse_v5(data: bytes) -> tuple[V5Header | None, bytes, int, str | None]:
    """(header, record bytes, records present, problem). The problem is a rejection reason."""
    if len(data) < HEADER.size:
        return None, b"", 0, "v5_short_header"
    _, count, uptime, secs, nsecs, seq, etype, eid, sampling = HEADER.unpack_from(data)
    h = V5Header(count, uptime, secs, nsecs, seq, etype, eid, sampling)
    if count == 0 or count > MAX_COUNT:
        return h, b"", 0, "v5_bad_count"
    present = min(count, (len(data) - HEADER.size) // RECORD_LENGTH)
    body = data[HEADER.size:HEADER.size + present * RECORD_LENGTH]
    return h, body, present, ("v5_truncated" if present < count else None)
