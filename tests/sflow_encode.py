"""A small sFlow v5 encoder (sflow.org/sflow_version_5.txt) for tests and the testbed.

Builds well-formed datagrams from parts, so tests can state exactly what an
exporter sent; hostile variants are made by editing the bytes afterwards.
Every function returns XDR bytes: big-endian 32-bit words, opaque data padded
to a multiple of 4.

    dgram = datagram([flow_sample([raw_header(frame)], seq=1, rate=100)], seq=7)
"""
from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence


def u32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


def u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def opaque(data: bytes) -> bytes:
    """XDR variable-length opaque: length word, data, zero padding to 4."""
    return u32(len(data)) + data + b"\0" * (-len(data) % 4)


def address(addr: str) -> bytes:
    """sFlow address: type 1 (IPv4) or 2 (IPv6), then the address bytes."""
    ip = ipaddress.ip_address(addr)
    return u32(1 if ip.version == 4 else 2) + ip.packed


def tagged(fmt: int, body: bytes, enterprise: int = 0) -> bytes:
    """A sample or record: data format (enterprise << 12 | format), length, body."""
    return u32((enterprise << 12) | fmt, len(body)) + body


# --- datagram ---------------------------------------------------------------------------

def datagram(samples: Sequence[bytes], *, agent: str = "192.0.2.1", sub_agent: int = 0,
             seq: int = 1, uptime_ms: int = 1000, version: int = 5) -> bytes:
    return u32(version) + address(agent) + u32(sub_agent, seq, uptime_ms, len(samples)) + b"".join(samples)


# --- samples ----------------------------------------------------------------------------

def flow_sample(records: Sequence[bytes], *, seq: int = 1, source_type: int = 0, source_index: int = 1,
                rate: int = 1, pool: int = 0, drops: int = 0, input_if: int = 1, output_if: int = 2,
                expanded: bool = False) -> bytes:
    """Flow sample (format 1) or expanded flow sample (format 3).

    input_if/output_if are the whole 32-bit compact words (format bits included) for
    format 1; for format 3 they are the value with format 0.
    """
    pool = pool or seq * rate
    if expanded:
        body = u32(seq, source_type, source_index, rate, pool, drops, 0, input_if, 0, output_if, len(records))
        return tagged(3, body + b"".join(records))
    body = u32(seq, (source_type << 24) | source_index, rate, pool, drops, input_if, output_if, len(records))
    return tagged(1, body + b"".join(records))


def counter_sample(records: Sequence[bytes], *, seq: int = 1, source_type: int = 0, source_index: int = 1,
                   expanded: bool = False) -> bytes:
    """Counter sample (format 2) or expanded counter sample (format 4)."""
    if expanded:
        return tagged(4, u32(seq, source_type, source_index, len(records)) + b"".join(records))
    return tagged(2, u32(seq, (source_type << 24) | source_index, len(records)) + b"".join(records))


# --- flow records -----------------------------------------------------------------------

HEADER_ETHERNET, HEADER_IPV4, HEADER_IPV6 = 1, 11, 12


def raw_header(frame: bytes, *, protocol: int = HEADER_ETHERNET, frame_length: int | None = None,
               stripped: int = 0, max_header: int = 128) -> bytes:
    """Raw packet header (record 1): the first max_header bytes of frame."""
    header = frame[:max_header]
    length = len(frame) + stripped if frame_length is None else frame_length
    return tagged(1, u32(protocol, length, stripped) + opaque(header))


def sampled_ipv4(src: str, dst: str, *, length: int = 60, protocol: int = 6, src_port: int = 0,
                 dst_port: int = 0, tcp_flags: int = 0, tos: int = 0) -> bytes:
    body = (u32(length, protocol) + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + u32(src_port, dst_port, tcp_flags, tos))
    return tagged(3, body)


def sampled_ipv6(src: str, dst: str, *, length: int = 80, protocol: int = 17, src_port: int = 0,
                 dst_port: int = 0, tcp_flags: int = 0, priority: int = 0) -> bytes:
    body = (u32(length, protocol) + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + u32(src_port, dst_port, tcp_flags, priority))
    return tagged(4, body)


def ext_switch(src_vlan: int = 0, src_priority: int = 0, dst_vlan: int = 0, dst_priority: int = 0) -> bytes:
    return tagged(1001, u32(src_vlan, src_priority, dst_vlan, dst_priority))


def ext_router(next_hop: str = "192.0.2.254", src_mask: int = 24, dst_mask: int = 24) -> bytes:
    return tagged(1002, address(next_hop) + u32(src_mask, dst_mask))


def ext_gateway(*, src_as: int, dst_path: Sequence[int] = (), next_hop: str = "192.0.2.254", as_: int = 64500,
                src_peer_as: int = 0, communities: Sequence[int] = (), local_pref: int = 100) -> bytes:
    """Extended gateway (record 1003); dst_path is one AS_SEQUENCE segment (empty: no segment)."""
    segments = u32(2, len(dst_path), *dst_path) if dst_path else b""
    body = (address(next_hop) + u32(as_, src_as, src_peer_as, 1 if dst_path else 0) + segments
            + u32(len(communities), *communities) + u32(local_pref))
    return tagged(1003, body)


# --- counter records --------------------------------------------------------------------

GENERIC_FIELDS = (
    "if_index", "if_type", "if_speed", "if_direction", "if_status", "in_octets", "in_ucast_pkts",
    "in_mcast_pkts", "in_bcast_pkts", "in_discards", "in_errors", "in_unknown_protos", "out_octets",
    "out_ucast_pkts", "out_mcast_pkts", "out_bcast_pkts", "out_discards", "out_errors", "promiscuous",
)
_GENERIC = struct.Struct(">IIQIIQIIIIIIQIIIIII")


def generic_counters(**fields: int) -> bytes:
    """Generic interface counters (counter record 1); unnamed fields are 0."""
    unknown = set(fields) - set(GENERIC_FIELDS)
    if unknown:
        raise TypeError(f"unknown generic counter fields: {sorted(unknown)}")
    return tagged(1, _GENERIC.pack(*(fields.get(name, 0) for name in GENERIC_FIELDS)))


def ethernet_counters() -> bytes:
    """Ethernet interface counters (counter record 2): 13 zero words, to exercise skipping."""
    return tagged(2, u32(*([0] * 13)))
