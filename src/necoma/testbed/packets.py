"""Packet bytes from struct templates: Ethernet, IPv4/IPv6, UDP/TCP, DNS messages, NTP.

Fast on purpose (a few microseconds a packet, no scapy): the generator writes
hundreds of thousands of packets. Checksums are real, so tshark and scapy
read the files without complaint.
"""
from __future__ import annotations

import ipaddress
import struct
from functools import lru_cache

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
MAC_ROUTER = bytes.fromhex("020000000001")
MAC_HOST = bytes.fromhex("020000000002")


@lru_cache(maxsize=65536)
def packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ethernet(payload: bytes, v6: bool, to_host: bool = True) -> bytes:
    dst, src = (MAC_HOST, MAC_ROUTER) if to_host else (MAC_ROUTER, MAC_HOST)
    return dst + src + struct.pack("!H", ETH_IPV6 if v6 else ETH_IPV4) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, total_len: int | None = None, ident: int = 0,
         ttl: int = 64, frag_offset: int = 0, more_fragments: bool = False) -> bytes:
    """IPv4 header + payload; `total_len` may exceed the payload (a truncated header sample)."""
    length = total_len if total_len is not None else 20 + len(payload)
    flags_off = (0x2000 if more_fragments else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident & 0xFFFF, flags_off, ttl, proto, 0,
                      packed(src), packed(dst))
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def ipv6(src: str, dst: str, nxt: int, payload: bytes, *, payload_len: int | None = None, hop: int = 64) -> bytes:
    plen = payload_len if payload_len is not None else len(payload)
    return struct.pack("!IHBB", 0x60000000, plen, nxt, hop) + packed(src) + packed(dst) + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = packed(src), packed(dst)
    if len(s) == 4:
        return s + d + struct.pack("!BBH", 0, proto, length)
    return s + d + struct.pack("!IxxxB", length, proto)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, length: int | None = None,
        with_checksum: bool = True) -> bytes:
    ulen = length if length is not None else 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, ulen, 0)
    if not with_checksum or length is not None:
        return hdr + payload  # IPv4 allows 0; truncated samples cannot carry a true checksum anyway
    c = checksum(_pseudo(src, dst, 17, ulen) + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


def tcp(sport: int, dport: int, flags: int, *, seq: int = 1, ack: int = 0, payload: bytes = b"",
        syn_options: bool = False) -> bytes:
    """TCP header (checksum left 0: only ever used in sampled, truncated headers)."""
    opts = b"\x02\x04\x05\xb4" if syn_options else b""
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts + payload


def ip_packet(src: str, dst: str, proto: int, l4: bytes, **kw) -> bytes:
    if ":" in src:
        total = kw.pop("total_len", None)
        return ipv6(src, dst, proto, l4, payload_len=None if total is None else total - 40)
    return ipv4(src, dst, proto, l4, **kw)


# --- DNS ---------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def dns_name(name: str) -> bytes:
    out = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p)
    return out + b"\0"


def _rdata(rtype: int, data: str) -> bytes:
    if rtype in (1, 28):
        return packed(data)
    if rtype in (2, 5, 12):
        return dns_name(data)
    if rtype == 15:
        return struct.pack("!H", 10) + dns_name(data)
    if rtype == 16:
        raw = data.encode()[:255]
        return bytes([len(raw)]) + raw
    return data.encode()


def dns_message(txid: int, qname: str, qtype: int, *, response: bool, rcode: int = 0,
                answers: list[tuple[int, int, str]] = (), edns: bool = True, rd: bool = True) -> bytes:
    """A DNS message with one question; answers are (type, ttl, data), a chain as resolvers send it.

    The first answer is owned by the question name (compressed to a pointer);
    a record after a CNAME is owned by the CNAME's target.
    """
    flags = (0x8000 | 0x0080 if response else 0) | (0x0100 if rd else 0) | (rcode & 0xF)
    msg = struct.pack("!HHHHHH", txid, flags, 1, len(answers), 0, 1 if edns else 0)
    msg += dns_name(qname) + struct.pack("!HH", qtype, 1)
    owner = b"\xc0\x0c"
    for rtype, ttl, data in answers:
        rd_ = _rdata(rtype, data)
        msg += owner + struct.pack("!HHIH", rtype, 1, ttl, len(rd_)) + rd_
        if rtype == 5:
            owner = dns_name(data)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)  # OPT: UDP payload size 1232
    return msg


# --- NTP ---------------------------------------------------------------------------------

def ntp_client(mode: int) -> bytes:
    """48-byte NTPv4 packet in `mode` 3 (client) or 4 (server)."""
    return struct.pack("!BBbb", (4 << 3) | mode, 2 if mode == 4 else 0, 6, -20) + b"\0" * 44


def ntp_monlist(response: bool, size: int) -> bytes:
    """Mode 7 (private) MON_GETLIST_1 (request code 42), padded to `size` bytes of UDP payload."""
    # byte 0: R (response) | M (more) | version 2 | mode 7; byte 2: implementation 3 (XNTPD)
    first = (0x80 | 0x40 if response else 0) | (2 << 3) | 7
    head = struct.pack("!BBBB", first, 0, 3, 42)
    body = struct.pack("!HH", 6, 72) if response else struct.pack("!HH", 0, 0)  # err|nitems, mbz|itemsize
    return (head + body).ljust(size, b"\0")
