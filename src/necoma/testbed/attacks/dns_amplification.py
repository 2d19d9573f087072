"""DNS amplification through open resolvers at a victim inside our network that never asked.

Spoofed ANY/TXT/RRSIG queries (sent elsewhere, not seen here) make open
resolvers return ~3 KB responses, IPv4-fragmented into three packets, to the
victim's address. The victim sent no query to any of them, which is what
separates this from a host that really asked for a big record.
"""
from __future__ import annotations

from necoma.testbed.attacks._reflect import reflected
from necoma.testbed.model import APP_DNS_R, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 16.0, 16.25
RESPONSES_PER_S = 30.0  # per resolver
RESPONSE_UDP_LEN = 3200 + 8
QUERY_NAMES = (("isc.org", 255), ("ripe.net", 255), ("dnssec-deployment.org", 46), ("spf.example.org", 16))


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "dns_amplification")
    n = max(10, int(30 * sc.scale ** 0.5))
    resolvers = sc.take(sc.open_resolvers, n, rng)  # published open resolvers
    victim = sc.take(hosts.site_b, 1, rng)[0]
    t0, t1 = sc.at(START_H), sc.at(END_H)
    for r in resolvers:
        port = int(rng.integers(1024, 65535))
        a0 = t0 + float(rng.uniform(0, 30))
        reflected(sc, t0=a0, t1=t1, src=r, dst=victim, sport=53, dport=port,
                  rate=RESPONSES_PER_S * float(rng.uniform(0.7, 1.3)), udp_len=RESPONSE_UDP_LEN, app=APP_DNS_R,
                  label="dns_amplification")
    return [attack_record("dns_amplification", t0, t1, victims=[victim], amplifiers=resolvers,
                          domains=[q for q, _ in QUERY_NAMES], details={
                              "qtypes": sorted({t for _, t in QUERY_NAMES}), "response_udp_length": RESPONSE_UDP_LEN,
                              "fragments_per_response": 3, "amplifiers_on_open_resolver_list": True,
                              "victim_sent_queries": False})]
