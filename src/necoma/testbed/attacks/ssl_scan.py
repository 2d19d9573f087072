"""TLS scan: one source SYN-probes 443 (and 8443, 993) across thousands of our addresses.

Like `nmap -sS -p 443,8443,993`: one 44-byte SYN per address and port, a
few SYN-ACKs back from hosts that listen, a few RSTs, mostly silence.
"""
from __future__ import annotations

import ipaddress

import numpy as np

from necoma.testbed.model import TCP_ACK, TCP_RST, TCP_SYN, Scenario
from necoma.testbed.network import SITE_A, SITE_B, Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 9.0, 10.5
TARGETS = 4000  # addresses probed at scale 1
PORTS = ((443, 1.0), (8443, 0.35), (993, 0.25))  # port, share of targets probed on it


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "ssl_scan")
    scanner = f"203.0.113.{int(rng.integers(10, 250))}"
    n = min(int(TARGETS * sc.scale), 60000)  # each site has 65280 client addresses to sweep
    nets = [SITE_A, SITE_B]
    idx = rng.choice(65536 - 256, size=n, replace=False) + 256  # sweeps whole sites, skipping the server /24
    site = rng.integers(0, 2, n)
    targets = np.array([str(nets[s].network_address + int(i)) for s, i in zip(site, idx)], dtype=object)
    t0, t1 = sc.at(START_H), sc.at(END_H)
    sport = int(rng.integers(40000, 60000))  # nmap keeps one source port
    for port, share in PORTS:
        sel = targets[rng.random(n) < share]
        t = np.sort(rng.uniform(t0, t1, len(sel)))
        sc.flows.add(start=t, end=t, src=scanner, dst=sel, sport=sport, dport=port, proto=6, packets=1, bytes=44,
                     flags=TCP_SYN, label="ssl_scan")
        answer = rng.random(len(sel))
        synack, rst = answer < 0.03, (answer >= 0.03) & (answer < 0.10)
        sc.flows.add(start=t[synack] + 0.002, end=t[synack] + 0.002, src=sel[synack], dst=scanner, sport=port,
                     dport=sport, proto=6, packets=1, bytes=44, flags=TCP_SYN | TCP_ACK, label="ssl_scan")
        sc.flows.add(start=t[rst] + 0.002, end=t[rst] + 0.002, src=sel[rst], dst=scanner, sport=port,
                     dport=sport, proto=6, packets=1, bytes=40, flags=TCP_RST | TCP_ACK, label="ssl_scan")
    prefixes = {str(ipaddress.ip_network(f"{t}/24", strict=False)) for t in targets}
    return [attack_record("ssl_scan", t0, t1, scanners=[scanner], details={
        "ports": [p for p, _ in PORTS], "targets": n, "target_prefixes_24": len(prefixes), "answered_share": 0.03})]
