"""UDP fragmentation flood: many sources send large UDP datagrams, each in three IPv4 fragments, at one victim.

Like `hping3 --udp -f -d ...`: the victim's reassembly buffers fill with
fragments; non-first fragments carry no ports, so port-based filters miss them.
"""
from __future__ import annotations

from necoma.testbed.attacks._reflect import reflected
from necoma.testbed.model import APP_GENERIC, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 11.0, 11.0 + 10 / 60
DATAGRAMS_PER_S = 40.0  # per source
UDP_LEN = 4000


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "udp_fragmentation")
    sources = sc.take(hosts.attack_pool[:1000], max(8, int(20 * sc.scale ** 0.5)), rng)
    victim = sc.take(hosts.site_a, 1, rng)[0]
    t0, t1 = sc.at(START_H), sc.at(END_H)
    for s in sources:
        reflected(sc, t0=t0 + float(rng.uniform(0, 10)), t1=t1, src=s, dst=victim,
                  sport=int(rng.integers(1024, 65535)), dport=int(rng.integers(1, 65535)),
                  rate=DATAGRAMS_PER_S * float(rng.uniform(0.6, 1.4)), udp_len=UDP_LEN, app=APP_GENERIC,
                  label="udp_fragmentation")
    return [attack_record("udp_fragmentation", t0, t1, victims=[victim], attackers=sources,
                          details={"udp_length": UDP_LEN, "fragments_per_datagram": 3})]
