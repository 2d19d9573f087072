"""Shared by the reflection attacks: reflected UDP responses, optionally IP-fragmented, as flows.

A fragmented datagram is exported by routers as two flows: the first
fragments with the UDP ports, and the later fragments with ports 0 (routers
cannot see ports in non-first fragments). The sFlow writer makes the right
raw headers for each kind.
"""
from __future__ import annotations

import numpy as np

from necoma.testbed.model import FRAG_FIRST, FRAG_LATER, FRAG_NONE, Scenario

MTU_PAYLOAD = 1480  # IPv4 fragment data per 1500-byte packet


def fragment_sizes(udp_len: int) -> list[int]:
    """IP total lengths of the fragments of one IPv4 datagram carrying `udp_len` bytes of UDP (header included)."""
    if udp_len + 20 <= 1500:
        return [udp_len + 20]
    sizes, left = [], udp_len
    while left > 0:
        chunk = min(MTU_PAYLOAD, left)
        sizes.append(chunk + 20)
        left -= chunk
    return sizes


def reflected(sc: Scenario, *, t0: float, t1: float, src: str, dst: str, sport: int, dport: int, rate: float,
              udp_len: int, app: int, label: str, minute_flows: bool = True) -> None:
    """`rate` datagrams/s of `udp_len`-byte UDP from src to dst for [t0, t1], in one-minute flow records."""
    frags = fragment_sizes(udp_len)
    edges = np.arange(t0, t1, 60.0) if minute_flows else np.array([t0])
    ends = np.minimum(np.append(edges[1:], t1), t1)
    dgrams = np.maximum(1, ((ends - edges) * rate).astype(np.int64))
    if len(frags) == 1:
        sc.flows.add(start=edges, end=ends, src=src, dst=dst, sport=sport, dport=dport, proto=17,
                     packets=dgrams, bytes=dgrams * frags[0], app=app, frag=FRAG_NONE, label=label)
        return
    sc.flows.add(start=edges, end=ends, src=src, dst=dst, sport=sport, dport=dport, proto=17,
                 packets=dgrams, bytes=dgrams * frags[0], app=app, frag=FRAG_FIRST, label=label)
    later = len(frags) - 1
    sc.flows.add(start=edges, end=ends, src=src, dst=dst, sport=0, dport=0, proto=17,
                 packets=dgrams * later, bytes=dgrams * sum(frags[1:]), app=app, frag=FRAG_LATER, label=label)
