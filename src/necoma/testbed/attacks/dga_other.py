"""Bots of other DGA families (random letters, word pairs, hex hashes): for generic DGA and DNS-anomaly analyses."""
from __future__ import annotations

from necoma.analyze.dga import families
from necoma.testbed.background_dns import A, add_lookup
from necoma.testbed.model import APP_GENERIC, TCP_SESSION, DnsAnswer, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 10.0, 18.0
# family -> (bots at scale 1, names per day, seconds between bursts, names per burst)
PLAN = {"lcg_random": (4, 300, 1800.0, 25), "wordpair": (3, 200, 2700.0, 15), "hexhash": (2, 150, 3600.0, 20)}


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "dga_other")
    records = []
    for k, (family, (n_bots, per_day, every, burst)) in enumerate(PLAN.items()):
        bots = sc.take(hosts.site_a, max(2, int(n_bots * sc.scale ** 0.5)), rng)
        names = families.domains(family, sc.day, per_day, family_seed=101 + k)
        live = names[int(rng.integers(0, per_day))]
        cnc = f"198.51.100.{100 + k}"
        queried: set[str] = set()
        t0, t1 = sc.at(START_H), sc.at(END_H)
        for bot in bots:
            t = t0 + float(rng.uniform(0, every))
            while t < t1:
                for j in rng.choice(per_day, size=burst, replace=False):
                    name = names[int(j)]
                    queried.add(name)
                    if name == live:
                        add_lookup(sc, rng, t, bot, name, A, 0, [DnsAnswer(A, 300, cnc)], label="dga_other")
                        sport = int(rng.integers(32768, 61000))
                        sc.flows.add(start=t + 0.1, end=t + 2.0, src=bot, dst=cnc, sport=sport, dport=80, proto=6,
                                     packets=6, bytes=1800, flags=TCP_SESSION, app=APP_GENERIC, label="dga_other")
                    else:
                        add_lookup(sc, rng, t, bot, name, A, 3, label="dga_other")
                    t += float(rng.uniform(0.3, 3.0))
                t += every * float(rng.uniform(0.7, 1.3))
        records.append(attack_record("dga_other", t0, t1, bots=bots, cnc=[cnc] if live in queried else [],
                                     domains=sorted(queried),
                                     details={"family": family, "resolving_domain": live}))
    return records
