"""sFlow v5 flow samples (formats 1 and 3) and the flow records we use.

A flow sample describes one sampled packet: the sampler's rate and interfaces,
then records. We keep the raw packet header (record 1, decoded later in bulk by
necoma.collect.packet), the sampled IPv4/IPv6 summaries (records 3 and 4, for
agents that send no header), the VLANs of extended switch (1001) and the AS
numbers of extended gateway (1003). Other records, including enterprise ones,
are skipped by their length: the sample keeps what we understood.

A sample is parsed completely before anything is kept, so a sample that turns
out malformed half-way leaves no partial rows behind.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from necoma.collect.sflow.xdr import (
    FLOW_SAMPLE_EXPANDED, U32, Malformed, check_count, read_address, records,
)

# sFlow header_protocol -> pcap LINKTYPE understood by necoma.collect.packet
LINKTYPES = {1: 1, 11: 228, 12: 229}  # Ethernet, raw IPv4, raw IPv6

UNKNOWN_IF = 0x3FFFFFFF  # "interface not known / internal" in sFlow's interface words
MAX_HEADER = 65535  # header bytes we accept per sample; agents send ~128, pcap snaplen caps at 64 KiB

_COMPACT = struct.Struct(">IIIIIIII")  # seq, source id, rate, pool, drops, input, output, n records
_EXPANDED = struct.Struct(">IIIIIIIIIII")  # seq, id type, id index, rate, pool, drops, in fmt/val, out fmt/val, n
_RAW = struct.Struct(">IIII")  # header protocol, frame length, stripped, header length
_IPV4 = struct.Struct(">II4s4sIIII")
_IPV6 = struct.Struct(">II16s16sIIII")
_SWITCH = struct.Struct(">IIII")


@dataclass(slots=True)
class FlowSample:
    rate: int
    input_if: int | None
    output_if: int | None
    linktype: int | None = None  # set when a decodable raw header is present
    frame_length: int | None = None  # bytes on the wire, as the agent counts them (FCS included)
    stripped: int = 0
    header: bytes = b""
    ip: tuple | None = None  # (src, dst, protocol, src_port, dst_port, tcp_flags, tos, length, version)
    src_vlan: int | None = None
    src_as: int | None = None
    dst_as: int | None = None
    unsupported_header: bool = False  # raw header of a protocol we cannot decode (e.g. 802.11)


def _interface(fmt: int, value: int) -> int | None:
    """Only format 0 names one ifIndex; formats 1 (discard reason) and 2 (several) do not."""
    return value if fmt == 0 and value != UNKNOWN_IF else None


def parse_flow_sample(data: bytes, start: int, end: int, fmt: int) -> FlowSample:
    if fmt == FLOW_SAMPLE_EXPANDED:
        if start + _EXPANDED.size > end:
            raise Malformed("truncated_flow_sample")
        _, _, _, rate, _, _, in_fmt, in_val, out_fmt, out_val, n_records = _EXPANDED.unpack_from(data, start)
        off = start + _EXPANDED.size
        sample = FlowSample(rate, _interface(in_fmt, in_val), _interface(out_fmt, out_val))
    else:
        if start + _COMPACT.size > end:
            raise Malformed("truncated_flow_sample")
        _, _, rate, _, _, inp, out, n_records = _COMPACT.unpack_from(data, start)
        off = start + _COMPACT.size
        sample = FlowSample(rate, _interface(inp >> 30, inp & UNKNOWN_IF), _interface(out >> 30, out & UNKNOWN_IF))
    if rate == 0:
        raise Malformed("zero_sampling_rate")  # rows must be scalable by their rate
    for rfmt, rstart, rend in records(data, off, end, n_records):
        _RECORDS.get(rfmt, _skip)(sample, data, rstart, rend)
    return sample


def _skip(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    """Unknown or enterprise record: its length already took us past it."""


def _raw_header(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    if start + _RAW.size > end:
        raise Malformed("truncated_raw_header")
    proto, frame_length, stripped, hlen = _RAW.unpack_from(data, start)
    hstart = start + _RAW.size
    if hlen > end - hstart:
        raise Malformed("header_length_overflow")
    if hlen > MAX_HEADER or hlen > frame_length:
        # a capture cannot exceed its frame; agents differ on whether the FCS they
        # report as `stripped` is inside frame_length, so that is not checked
        raise Malformed("header_longer_than_frame")
    if sample.linktype is not None or sample.unsupported_header:
        return  # one header per sample: later copies add nothing
    linktype = LINKTYPES.get(proto)
    sample.frame_length, sample.stripped = frame_length, stripped
    if linktype is None:
        sample.unsupported_header = True
        return
    sample.linktype = linktype
    sample.header = bytes(data[hstart:hstart + hlen])


def _sampled_ip(sample: FlowSample, data: bytes, start: int, end: int, layout: struct.Struct,
                version: int) -> None:
    if start + layout.size > end:
        raise Malformed("truncated_sampled_ip")
    length, proto, src, dst, sport, dport, flags, tos = layout.unpack_from(data, start)
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    sample.ip = (cls(src).compressed, cls(dst).compressed, proto & 0xFF, sport & 0xFFFF,
                 dport & 0xFFFF, flags & 0xFF, tos & 0xFF, length, version)


def _ipv4(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    _sampled_ip(sample, data, start, end, _IPV4, 4)


def _ipv6(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    _sampled_ip(sample, data, start, end, _IPV6, 6)


def _switch(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    if start + _SWITCH.size > end:
        raise Malformed("truncated_extended_switch")
    src_vlan = _SWITCH.unpack_from(data, start)[0]
    sample.src_vlan = src_vlan if src_vlan <= 0xFFFF else None


def _gateway(sample: FlowSample, data: bytes, start: int, end: int) -> None:
    """Extended gateway: next hop, router AS, source AS, source peer AS, destination AS path."""
    _, off = read_address(data, start, end)
    if off + 16 > end:
        raise Malformed("truncated_extended_gateway")
    _, src_as, _, n_segments = struct.unpack_from(">IIII", data, off)
    off += 16
    check_count(n_segments, off, end, "as_path_segment")
    dst_as = None
    for _ in range(n_segments):
        if off + 8 > end:
            raise Malformed("truncated_extended_gateway")
        _, n_as = struct.unpack_from(">II", data, off)
        off += 8
        if n_as > (end - off) // 4:
            raise Malformed("as_path_length_overflow")
        if n_as:
            # the destination AS is the last AS of the path (as sflowtool and nfdump read it)
            (dst_as,) = U32.unpack_from(data, off + 4 * (n_as - 1))
        off += 4 * n_as
    sample.src_as = src_as
    sample.dst_as = dst_as


_RECORDS = {1: _raw_header, 3: _ipv4, 4: _ipv6, 1001: _switch, 1003: _gateway}
