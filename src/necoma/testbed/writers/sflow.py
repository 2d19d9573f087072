"""sFlow v5 (sflow.org/sflow_version_5.txt) from the core switch: 1-in-N packet samples with raw headers, and interface counters.

Each flow's packets are sampled binomially at 1/N, each sample gets a time
inside the flow and the first 128 bytes of a packet that flow would carry
(Ethernet, IPv4/IPv6, TCP/UDP, and the application's first bytes: NTP mode,
mode 7 monlist, DNS message, QUIC, TLS). IP fragments are sampled as such:
first fragments with the UDP header and MF set, later ones with an offset
and no L4 header. Interface counters of the uplink (1) and LAN (2) ports
follow every minute, scaled from the samples.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from necoma.testbed import packets as P
from necoma.testbed.model import (
    APP_DNS_Q, APP_DNS_R, APP_NTP_CLIENT, APP_NTP_MONLIST_REQ, APP_NTP_MONLIST_RESP, APP_NTP_SERVER, APP_QUIC,
    APP_SMTP, APP_TLS, FRAG_FIRST, FRAG_LATER, TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN,
)
from necoma.testbed.network import inside_site
from necoma.testbed.writers.container import DatagramWriter

HEADER_BYTES = 128
SAMPLES_PER_DATAGRAM = 7
COUNTER_INTERVAL_S = 60.0
UPLINK, LAN = 1, 2


def _u32(*v: int) -> bytes:
    return struct.pack(f">{len(v)}I", *v)


def _payload(app: int, size: int, sport: int, dport: int, txid: int) -> bytes:
    if app in (APP_NTP_CLIENT, APP_NTP_SERVER):
        return P.ntp_client(3 if app == APP_NTP_CLIENT else 4)
    if app in (APP_NTP_MONLIST_REQ, APP_NTP_MONLIST_RESP):
        return P.ntp_monlist(app == APP_NTP_MONLIST_RESP, min(size, 96))
    if app == APP_DNS_Q:
        return P.dns_message(txid, "example.com", 1, response=False)
    if app == APP_DNS_R:
        big = size > 512
        msg = P.dns_message(txid, "isc.org" if big else "example.com", 255 if big else 1, response=True,
                            answers=[(16, 3600, "v=spf1 " + "x" * 200)] if big else [(1, 300, "198.18.0.1")])
        return msg[:size]
    if app == APP_QUIC:
        return bytes([0x40 | (txid & 0x3F)]) + txid.to_bytes(2, "big") * 20
    if app == APP_TLS:
        return b"\x17\x03\x03" + min(size, 16384).to_bytes(2, "big") + b"\0" * 40
    if app == APP_SMTP:
        return b"250 2.0.0 Ok\r\n" if sport == 25 else b"MAIL FROM:<a@b>\r\n"
    return b"\0" * 40


def header(src: str, dst: str, proto: int, sport: int, dport: int, flags: int, app: int, frag: int, ip_len: int,
           rng: np.random.Generator) -> bytes:
    """The first HEADER_BYTES of one packet of this flow, as the switch copies it."""
    v6 = ":" in src
    ident = int(rng.integers(0, 65536))
    l4_room = ip_len - (40 if v6 else 20)
    if frag == FRAG_LATER:
        m = int(rng.integers(1, 3))
        ip = P.ipv4(src, dst, proto, b"\0" * 64, total_len=ip_len, ident=ident, frag_offset=1480 * m,
                    more_fragments=m == 1)
    elif proto == 17:
        data = _payload(app, max(l4_room - 8, 0), sport, dport, ident)[:HEADER_BYTES]
        if frag == FRAG_FIRST:
            udp_len = 3208 if app == APP_DNS_R else 4000  # the whole datagram, as in a real first fragment
            l4 = P.udp(src, dst, sport, dport, data, length=udp_len)
            ip = P.ipv4(src, dst, 17, l4, total_len=ip_len, ident=ident, more_fragments=True)
        else:
            l4 = P.udp(src, dst, sport, dport, data, length=max(l4_room, 8))
            ip = P.ip_packet(src, dst, 17, l4, total_len=ip_len, ident=ident)
    elif proto == 6:
        if flags & TCP_SYN and not flags & (TCP_PSH | 0x01):
            f = flags  # scans: the packet is exactly the SYN / SYN-ACK / RST
        elif flags & TCP_RST and not flags & TCP_PSH:
            f = flags
        else:
            f = TCP_ACK | (TCP_PSH if rng.random() < 0.3 else 0)
        data = _payload(app, max(l4_room - 20, 0), sport, dport, ident) if l4_room > 40 else b""
        l4 = P.tcp(sport, dport, f, seq=ident * 7919, ack=(ident * 104729) & 0xFFFFFFFF if f & TCP_ACK else 0, payload=data,
                   syn_options=bool(f & TCP_SYN))
        ip = P.ip_packet(src, dst, 6, l4, total_len=ip_len, ident=ident)
    else:
        ip = P.ip_packet(src, dst, proto, b"\0" * 40, total_len=ip_len, ident=ident)
    # The packet is ip_len long: a payload template longer than that is cut, as the wire would.
    return P.ethernet(ip[:ip_len], v6, inside_site(dst) is not None)[:HEADER_BYTES]


def _flow_sample(seq: int, rate: int, in_if: int, out_if: int, frame_len: int, hdr: bytes) -> bytes:
    rec = _u32(1, frame_len, 4, len(hdr)) + hdr + b"\0" * (-len(hdr) % 4)
    body = _u32(seq, in_if, rate, seq * rate, 0, in_if, out_if, 1) + _u32(1, len(rec)) + rec
    return _u32(1, len(body)) + body


def _counter_sample(seq: int, if_index: int, c: dict) -> bytes:
    rec = (_u32(if_index, 6) + struct.pack(">Q", 10_000_000_000) + _u32(1, 3) + struct.pack(">Q", c["in_octets"])
           + _u32(c["in_pkts"] & 0xFFFFFFFF, 0, 0, 0, 0, 0) + struct.pack(">Q", c["out_octets"])
           + _u32(c["out_pkts"] & 0xFFFFFFFF, 0, 0, 0, 0, 0))
    body = _u32(seq, if_index, 1) + _u32(1, len(rec)) + rec
    return _u32(2, len(body)) + body


def write_sflow(path: Path, cols: dict[str, np.ndarray], *, agent: str, rate: int, rng: np.random.Generator,
                boot: float, t0: float, t1: float) -> int:
    """Sample every flow 1-in-`rate`, write datagrams; returns the number of flow samples."""
    k = rng.binomial(np.maximum(cols["packets"], 0), 1.0 / rate)
    idx = np.repeat(np.arange(len(k)), k)
    when = cols["start"][idx] + rng.random(len(idx)) * np.maximum(cols["end"][idx] - cols["start"][idx], 0.0)
    order = np.argsort(when, kind="stable")
    idx, when = idx[order], when[order]
    counters = {i: {"in_octets": 0, "in_pkts": 0, "out_octets": 0, "out_pkts": 0} for i in (UPLINK, LAN)}
    ticks = np.arange(t0 + COUNTER_INTERVAL_S, t1 + COUNTER_INTERVAL_S, COUNTER_INTERVAL_S)
    agent_addr = _u32(1) + P.packed(agent)
    meta = {"protocol": "sflow", "format": "sflow5", "exporter": agent, "sampling_rate": rate,
            "header_bytes": HEADER_BYTES, "counter_interval_s": COUNTER_INTERVAL_S}
    dgram_seq, flow_seq, ctr_seq, pending, tick, last_t = 0, 0, 0, [], 0, 0.0
    with DatagramWriter(path, meta) as out:

        def send(now: float, samples: list[bytes]) -> None:
            nonlocal dgram_seq
            dgram_seq += 1
            head = _u32(5) + agent_addr + _u32(0, dgram_seq, int((now - boot) * 1000) & 0xFFFFFFFF, len(samples))
            out.write(now, head + b"".join(samples))

        for r, t in zip(idx, when):
            while tick < len(ticks) and ticks[tick] <= t:  # counters are due before this sample
                if pending:
                    send(float(ticks[tick]), pending)
                    pending = []
                ctr_seq += 1
                send(float(ticks[tick]), [_counter_sample(ctr_seq, i, counters[i]) for i in (UPLINK, LAN)])
                tick += 1
            if pending and t - last_t > 1.0:  # an agent sends within a second even when traffic is sparse
                send(last_t, pending)
                pending = []
            src, dst = cols["src"][r], cols["dst"][r]
            pk = max(int(cols["packets"][r]), 1)
            ip_len = int(min(max(cols["bytes"][r] // pk, 40 if ":" not in src else 60), 1500))
            hdr = header(src, dst, int(cols["proto"][r]), int(cols["sport"][r]), int(cols["dport"][r]),
                         int(cols["flags"][r]), int(cols["app"][r]), int(cols["frag"][r]), ip_len, rng)
            inbound = inside_site(dst) is not None
            in_if, out_if = (UPLINK, LAN) if inbound else (LAN, UPLINK)
            counters[in_if]["in_octets"] += (ip_len + 18) * rate
            counters[in_if]["in_pkts"] += rate
            counters[out_if]["out_octets"] += (ip_len + 18) * rate
            counters[out_if]["out_pkts"] += rate
            flow_seq += 1
            if not pending:
                last_t = float(t)
            pending.append(_flow_sample(flow_seq, rate, in_if, out_if, ip_len + 18, hdr))
            if len(pending) >= SAMPLES_PER_DATAGRAM:
                send(float(t), pending)
                pending = []
        if pending:
            send(float(when[-1]), pending)
    return len(idx)
