"""Multi-vector UDP reflection (beyond NTP and DNS): SSDP, SNMP and memcached reflectors at one victim.

Spoofed requests (not visible here) make devices on the Internet answer a
victim in our network that never asked: SSDP M-SEARCH replies (~320 IP
bytes), SNMP GetBulk responses (~1200), memcached `stats` replies split by
memcached into ~1428-byte datagrams. No response is IP-fragmented, so this
attack exercises the reflection detector without the fragmentation one.
"""
from __future__ import annotations

from necoma.testbed.attacks._reflect import reflected
from necoma.testbed.model import APP_GENERIC, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 18.0, 18.25
# service -> (UDP port, response IP length, responses per second per reflector, reflectors at scale 1)
VECTORS = {"ssdp": (1900, 320, 120.0, 25), "snmp": (161, 1200, 40.0, 12), "memcached": (11211, 1428, 60.0, 6)}


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "reflection")
    victim = sc.take(hosts.site_a, 1, rng)[0]
    t0, t1 = sc.at(START_H), sc.at(END_H)
    reflectors: dict[str, list[str]] = {}
    for service, (port, ip_len, rate, n) in VECTORS.items():
        reflectors[service] = sc.take(hosts.attack_pool[:1000], max(3, int(n * sc.scale ** 0.5)), rng)
        for r in reflectors[service]:
            reflected(sc, t0=t0 + float(rng.uniform(0, 20)), t1=t1, src=r, dst=victim, sport=port,
                      dport=int(rng.integers(1024, 65535)), rate=rate * float(rng.uniform(0.7, 1.3)),
                      udp_len=ip_len - 20, app=APP_GENERIC, label="reflection")
    return [attack_record("reflection", t0, t1, victims=[victim],
                          amplifiers=[r for rs in reflectors.values() for r in rs],
                          details={"services": {s: {"port": v[0], "response_ip_length": v[1],
                                                    "reflectors": sorted(reflectors[s])} for s, v in VECTORS.items()},
                                   "spoofed": True})]
