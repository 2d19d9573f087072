"""sFlow v5 counter samples (formats 2 and 4): generic interface counters -> `interfaces` rows.

Only the generic interface counters (record 1, the ifTable view every agent
sends) become rows; Ethernet, VLAN, processor and enterprise counter records
are skipped by their length.
"""
from __future__ import annotations

import struct

from necoma.collect.sflow.xdr import COUNTER_SAMPLE_EXPANDED, Malformed, records

_COMPACT = struct.Struct(">III")  # seq, source id, n records
_EXPANDED = struct.Struct(">IIII")  # seq, source id type, source id index, n records
GENERIC = struct.Struct(">IIQIIQIIIIIIQIIIIII")

# columns of necoma.schemas.INTERFACES after time and exporter, and where each sits in GENERIC
INTERFACE_COLUMNS = (
    ("if_index", 0), ("if_type", 1), ("if_speed", 2), ("if_direction", 3), ("if_status", 4),
    ("in_octets", 5), ("in_ucast_pkts", 6), ("in_mcast_pkts", 7), ("in_bcast_pkts", 8),
    ("in_discards", 9), ("in_errors", 10), ("out_octets", 12), ("out_ucast_pkts", 13),
    ("out_mcast_pkts", 14), ("out_bcast_pkts", 15), ("out_discards", 16), ("out_errors", 17),
)


def parse_counter_sample(data: bytes, start: int, end: int, fmt: int) -> list[tuple[int, ...]]:
    """The generic counter blocks of one counter sample, each as the GENERIC tuple."""
    layout = _EXPANDED if fmt == COUNTER_SAMPLE_EXPANDED else _COMPACT
    if start + layout.size > end:
        raise Malformed("truncated_counter_sample")
    n_records = layout.unpack_from(data, start)[-1]
    off = start + layout.size
    blocks = []
    for rfmt, rstart, rend in records(data, off, end, n_records):
        if rfmt != 1:
            continue
        if rend - rstart < GENERIC.size:
            raise Malformed("truncated_generic_counters")
        blocks.append(GENERIC.unpack_from(data, rstart))
    return blocks
