"""DNS failure patterns (Jiang et al., ICNP 2010): groups of hosts failing on the same names.

- spam bots look up MX records of a shared recipient list; most of the
  domains are dead (NXDOMAIN) or broken (SERVFAIL);
- trojans keep resolving their dead C&C names every few minutes.
Each group forms a dense co-cluster in the host × failed-name graph, unlike
the scattered failures of the background (typos, search suffixes, probes).
"""
from __future__ import annotations

import numpy as np

from necoma.testbed import names as name_gen
from necoma.testbed.background_dns import MX, A, add_lookup
from necoma.testbed.model import DnsAnswer, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 13.0, 17.0
SPAM_DOMAINS, TROJAN_NAMES = 120, 12


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "dns_failure")
    t0, t1 = sc.at(START_H), sc.at(END_H)
    spam_bots = sc.take(hosts.site_a, max(3, int(6 * sc.scale ** 0.5)), rng)
    recipients = [f"{name_gen.chrome_probe(rng)[:9]}-mail.{rng.choice(['com', 'net', 'biz', 'info'])}"
                  for _ in range(SPAM_DOMAINS)]
    failed_spam: set[str] = set()
    for bot in spam_bots:
        mine = rng.choice(SPAM_DOMAINS, size=int(SPAM_DOMAINS * 0.6), replace=False)
        for j, t in zip(mine, np.sort(rng.uniform(t0, t1, len(mine)))):
            dom = recipients[int(j)]
            if int(j) % 10 == 0:  # a few recipient domains still exist
                add_lookup(sc, rng, float(t), bot, dom, MX, 0, [DnsAnswer(MX, 3600, f"mx.{dom}")], label="dns_failure")
                continue
            add_lookup(sc, rng, float(t), bot, dom, MX, 2 if int(j) % 7 == 0 else 3, label="dns_failure")
            failed_spam.add(dom)
    trojans = sc.take(hosts.site_a, max(3, int(5 * sc.scale ** 0.5)), rng)
    cnc_names = [f"update-{name_gen.chrome_probe(rng)[:6]}.{rng.choice(['info', 'org', 'ru'])}"
                 for _ in range(TROJAN_NAMES)]
    asked: set[str] = set()
    for bot in trojans:
        t = t0 + float(rng.uniform(0, 300))
        while t < t1:
            name = cnc_names[int(rng.integers(0, TROJAN_NAMES))]
            asked.add(name)
            add_lookup(sc, rng, t, bot, name, A, 3 if rng.random() < 0.8 else 2, label="dns_failure")
            t += float(rng.uniform(200, 400))
    return [
        attack_record("dns_failure", t0, t1, bots=spam_bots, domains=sorted(failed_spam),
                      details={"pattern": "spam_mx", "qtype": "MX", "recipient_domains": SPAM_DOMAINS}),
        attack_record("dns_failure", t0, t1, bots=trojans, domains=sorted(asked),
                      details={"pattern": "trojan_cnc", "qtype": "A"}),
    ]
