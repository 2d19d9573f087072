"""Background DNS at the two resolvers, and the recursion traffic their cache misses cause.

Clients of site A (and dual-stack clients over IPv6) use resolver A, whose
traffic is captured to `dns.pcap`; site B uses resolver B, which writes a
BIND query log. Names are Zipf-popular; about 7 % of lookups fail in the
ordinary ways: typos, search-suffix retries, Chromium's random intranet
probes, stale CDN names, PTR lookups without a reverse zone. Our MX looks
up recipients' MX records (a few fail). None of these failures clusters the
way the dns_failure attack does: many unrelated hosts, unrelated names.
"""
from __future__ import annotations

import numpy as np

from necoma.testbed import names
from necoma.testbed.background import start_times
from necoma.testbed.model import APP_DNS_Q, APP_DNS_R, DnsAnswer, DnsTxn, Scenario
from necoma.testbed.network import (
    MAIL_SERVER, RESOLVER_A, RESOLVER_A6, RESOLVER_B, Hosts, hashed_ip, inside_site, server_ip,
)

LOOKUPS_PER_DAY = 12000  # at scale 1
CACHE_MISS = 0.25

A, NS, CNAME, PTR, MX, TXT, AAAA, SRV = 1, 2, 5, 12, 15, 16, 28, 33


def answer_for(qname: str, qtype: int) -> list[DnsAnswer]:
    """A plausible answer for an existing name (CNAME to a CDN for some www names)."""
    ans: list[DnsAnswer] = []
    target = qname
    if qname.startswith(("www.", "cdn.", "static.")) and hash_bucket(qname) < 3:
        target = f"{qname.split('.', 1)[1].replace('.', '-')}.edgekey.net"
        ans.append(DnsAnswer(CNAME, 300, target))
    if qtype == AAAA:
        ans.append(DnsAnswer(AAAA, 300, server_ip(target, v6=True)))
    elif qtype == MX:
        ans.append(DnsAnswer(MX, 3600, f"mx.{qname}"))
    elif qtype == TXT:
        ans.append(DnsAnswer(TXT, 3600, "v=spf1 -all"))
    else:
        ans.append(DnsAnswer(A, 300, server_ip(target)))
    return ans


def hash_bucket(name: str, buckets: int = 10) -> int:
    return sum(name.encode()) % buckets


def resolver_of(client: str) -> tuple[str, bool]:
    """(resolver address, captured?) for a client: site B uses resolver B (query log only)."""
    if ":" in client:
        return RESOLVER_A6, True
    return (RESOLVER_B, False) if inside_site(client) == "B" else (RESOLVER_A, True)


def add_lookup(sc: Scenario, rng: np.random.Generator, t: float, client: str, qname: str, qtype: int,
               rcode: int, answers: list[DnsAnswer] | None = None, label: str = "background") -> None:
    """One client lookup at its resolver, plus upstream flows when it misses the cache."""
    server, captured = resolver_of(client)
    miss = rcode != 0 or rng.random() < CACHE_MISS
    latency = float(rng.uniform(0.015, 0.09)) if miss else float(rng.uniform(0.0002, 0.002))
    txn = DnsTxn(time=t, client=client, client_port=int(rng.integers(1024, 65535)), server=server,
                 txid=int(rng.integers(0, 65536)), qname=qname, qtype=qtype, rcode=rcode,
                 answers=answers if answers is not None else [], latency=latency, label=label)
    (sc.dns_pcap if captured else sc.dns_log).append(txn)
    if miss:  # the resolver asks an authoritative server: seen by the border exporters
        auth = hashed_ip("ns." + qname.split(".", 1)[-1], "198.18.0.0/16")
        rsrc = RESOLVER_B if server == RESOLVER_B else RESOLVER_A
        sport = int(rng.integers(1024, 65535))
        size = 120 + 16 * len(txn.answers)
        sc.flows.add(start=t + 0.001, end=t + 0.001, src=rsrc, dst=auth, sport=sport, dport=53, proto=17,
                     packets=1, bytes=40 + len(qname) + 30, app=APP_DNS_Q, label=label)
        sc.flows.add(start=t + latency, end=t + latency, src=auth, dst=rsrc, sport=53, dport=sport, proto=17,
                     packets=1, bytes=size, app=APP_DNS_R, label=label)


def background_dns(sc: Scenario, hosts: Hosts, domains: list[str]) -> None:
    rng = sc.rng("background", "dns")
    t = start_times(sc, rng, int(LOOKUPS_PER_DAY * sc.scale))
    n = len(t)
    clients = hosts.clients
    activity = rng.lognormal(0, 0.8, len(clients))
    who = rng.choice(len(clients), size=n, p=activity / activity.sum())
    weights = names.zipf_weights(len(domains))
    kind = rng.random(n)
    popular = rng.choice(len(domains), size=n, p=weights)
    anyname = rng.integers(0, len(domains), n)
    for i in range(n):
        client = clients[who[i]]
        v6 = client in hosts.v6_of
        if v6 and rng.random() < 0.5:
            client = hosts.v6_of[client]  # the stub talks to the resolver over IPv6
        dom = domains[popular[i]] if kind[i] < 0.93 else domains[anyname[i]]
        k = kind[i]
        if k < 0.93:
            qname = names.fqdn(rng, dom)
            qtype = AAAA if v6 and rng.random() < 0.5 else A
            add_lookup(sc, rng, float(t[i]), client, qname, qtype, 0, answer_for(qname, qtype))
        elif k < 0.945:
            add_lookup(sc, rng, float(t[i]), client, names.typo(rng, dom), A, 3)
        elif k < 0.96:
            add_lookup(sc, rng, float(t[i]), client, names.search_suffix(rng, names.fqdn(rng, dom)), A, 3)
        elif k < 0.972:
            add_lookup(sc, rng, float(t[i]), client, names.chrome_probe(rng), A, 3)
        elif k < 0.98:
            add_lookup(sc, rng, float(t[i]), client, names.cdn_miss(rng), A, 3)
        elif k < 0.99:
            a = hosts.internet_clients[int(rng.integers(0, 2000))].split(".")
            ptr = ".".join(reversed(a)) + ".in-addr.arpa"
            add_lookup(sc, rng, float(t[i]), client, ptr, PTR, 3 if rng.random() < 0.4 else 0,
                       [DnsAnswer(PTR, 3600, f"host-{a[3]}.isp.example.net")])
        else:
            add_lookup(sc, rng, float(t[i]), client, f"_ldap._tcp.dc._msdcs.{names.SEARCH_SUFFIXES[0]}", SRV, 0,
                       [])
    # our MX resolving recipient domains: nearly all succeed; a few recipients mistype their domain.
    for ti in start_times(sc, rng, int(500 * sc.scale)):
        dom = domains[int(rng.integers(0, len(domains)))]
        if rng.random() < 0.04:
            add_lookup(sc, rng, float(ti), MAIL_SERVER, names.typo(rng, dom)[4:], MX, 3)
        else:
            add_lookup(sc, rng, float(ti), MAIL_SERVER, dom, MX, 0, answer_for(dom, MX))
