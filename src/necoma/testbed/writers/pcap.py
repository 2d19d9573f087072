"""DNS at resolver A as a classic pcap (Ethernet, microsecond timestamps), from struct templates."""
from __future__ import annotations

import struct
from pathlib import Path

from necoma.testbed import packets as P
from necoma.testbed.model import DnsTxn

_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _record(t: float, frame: bytes) -> bytes:
    sec = int(t)
    usec = int(round((t - sec) * 1e6))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame


def _frame(src: str, dst: str, sport: int, dport: int, msg: bytes, ident: int, to_host: bool) -> bytes:
    l4 = P.udp(src, dst, sport, dport, msg)
    return P.ethernet(P.ip_packet(src, dst, 17, l4, ident=ident), ":" in src, to_host)


def write_dns_pcap(path: Path, txns: list[DnsTxn]) -> int:
    """Query and response packets of every transaction, in time order. Returns the packet count."""
    pkts: list[tuple[float, int, bytes]] = []
    for n, tx in enumerate(txns):
        q = P.dns_message(tx.txid, tx.qname, tx.qtype, response=False)
        pkts.append((tx.time, 2 * n, _frame(tx.client, tx.server, tx.client_port, 53, q, tx.txid, False)))
        r = P.dns_message(tx.txid, tx.qname, tx.qtype, response=True, rcode=tx.rcode,
                          answers=[(a.rtype, a.ttl, a.data) for a in tx.answers])
        pkts.append((tx.time + tx.latency, 2 * n + 1,
                     _frame(tx.server, tx.client, 53, tx.client_port, r, tx.txid ^ 0x5A5A, True)))
    pkts.sort(key=lambda p: (p[0], p[1]))
    with open(path, "wb") as fh:
        fh.write(_GLOBAL)
        fh.write(b"".join(_record(t, f) for t, _, f in pkts))
    return len(pkts)
