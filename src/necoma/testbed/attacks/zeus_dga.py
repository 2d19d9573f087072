"""GameOver ZeuS botnet: bots walk the day's DGA list; the few registered names lead to the C&C.

Like newGOZ falling back from P2P, each bot periodically starts at a random
index and tries consecutive names of the day's 1000 until one resolves, a
fraction of a second apart. Nearly all answers are NXDOMAIN; the handful of
names the operators registered resolve to the C&C servers, which the bot
then contacts over HTTPS and beacons to every ~10 minutes.
"""
from __future__ import annotations

from necoma.analyze.dga import gameover_zeus
from necoma.testbed.background_dns import A, add_lookup
from necoma.testbed.model import APP_TLS, TCP_SESSION, DnsAnswer, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 7.0, 19.0
REGISTERED = 6  # names of the day the operators registered
BURST_EVERY_S = 3600.0
MAX_TRIES = 60  # names per burst before the bot gives up until the next burst


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "zeus_dga")
    n_a = max(3, int(7 * sc.scale ** 0.5))
    bots = sc.take(hosts.site_a, n_a, rng) + sc.take(hosts.site_b, max(2, n_a // 2), rng)
    names = gameover_zeus.domains(sc.day)
    registered = {int(i) for i in rng.choice(len(names), size=REGISTERED, replace=False)}
    cnc = [f"198.51.100.{int(x)}" for x in rng.choice(range(10, 60), size=2, replace=False)]
    cnc_of = {i: cnc[k % len(cnc)] for k, i in enumerate(sorted(registered))}
    queried: set[str] = set()
    t0, t1 = sc.at(START_H), sc.at(END_H)
    first = t1
    for bot in bots:
        t = t0 + float(rng.uniform(0, BURST_EVERY_S))
        while t < t1:
            i, q = int(rng.integers(0, len(names))), t
            found = None
            for _ in range(MAX_TRIES):
                name = names[i % len(names)]
                queried.add(name)
                first = min(first, q)
                if i % len(names) in registered:
                    ip = cnc_of[i % len(names)]
                    add_lookup(sc, rng, q, bot, name, A, 0, [DnsAnswer(A, 60, ip)], label="zeus_dga")
                    found = ip
                    break
                add_lookup(sc, rng, q, bot, name, A, 3, label="zeus_dga")
                q += float(rng.uniform(0.2, 1.5))
                i += 1
            if found:  # contact the C&C, then beacon until the next burst
                b = q + 0.2
                while b < min(t + BURST_EVERY_S, t1):
                    sport = int(rng.integers(32768, 61000))
                    up, down = int(rng.integers(2000, 9000)), int(rng.integers(800, 30000))
                    sc.flows.add(start=b, end=b + 1.5, src=bot, dst=found, sport=sport, dport=443, proto=6,
                                 packets=up // 1000 + 4, bytes=up, flags=TCP_SESSION, app=APP_TLS, label="zeus_dga")
                    sc.flows.add(start=b + 0.05, end=b + 1.5, src=found, dst=bot, sport=443, dport=sport, proto=6,
                                 packets=down // 1400 + 3, bytes=down, flags=TCP_SESSION, app=APP_TLS, label="zeus_dga")
                    b += float(rng.uniform(500, 700))
            t += BURST_EVERY_S * float(rng.uniform(0.8, 1.2))
    reg_names = sorted(names[i] for i in registered if names[i] in queried)
    return [attack_record("zeus_dga", first, t1, bots=bots, cnc=cnc, domains=sorted(queried), details={
        "dga": "gameover_zeus", "day": sc.day.isoformat(), "registered_domains": reg_names,
        "all_registered": sorted(names[i] for i in registered), "cnc_port": 443})]
