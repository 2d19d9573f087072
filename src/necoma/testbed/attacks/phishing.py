"""Phishing campaign: spam senders mail our users, the URLs reach the feeds, victims resolve and visit the phishing host.

Multi-layer on purpose: SMTP flows and postfix syslog (senders), the spam
and phishing feeds (URLs), DNS lookups of the phishing host names (victims,
domains) and HTTPS/HTTP flows from victims to the phishing servers.
"""
from __future__ import annotations

import numpy as np

from necoma.testbed.background_dns import A, add_lookup
from necoma.testbed.background_logs import mail_log
from necoma.testbed.model import APP_SMTP, APP_TLS, TCP_SESSION, DnsAnswer, FeedUrl, Scenario
from necoma.testbed.network import MAIL_SERVER, Hosts
from necoma.testbed.truth import attack_record

SPAM_H = (8.5, 9.5)  # the mails arrive
VISIT_H = (9.0, 13.0)  # users click
FEED_DELAY_H = 1.25  # the URLs reach the public feeds this long after the first mail
BRAND = "PayPal"


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "phishing")
    tag = "".join(chr(97 + int(c)) for c in rng.integers(0, 26, 5))
    phish_hosts = [f"paypal-account-verify-{tag}.com", f"secure-login-{tag}.top"]
    servers = [f"198.51.100.{int(x)}" for x in rng.choice(range(150, 200), size=2, replace=False)]
    urls = [f"https://{phish_hosts[0]}/signin/{tag}/index.php", f"https://{phish_hosts[0]}/webapps/{tag}/login",
            f"http://{phish_hosts[1]}/update.php?id={int(rng.integers(1e5, 1e6))}",
            f"https://{phish_hosts[1]}/paypal/verify/", f"http://{phish_hosts[1]}/{tag}.html"]
    senders = sc.take(hosts.attack_pool[1000:2000], max(6, int(15 * sc.scale ** 0.5)), rng)
    victims = sc.take(hosts.site_a, max(3, int(8 * sc.scale ** 0.5)), rng)
    s0, s1 = sc.at(SPAM_H[0]), sc.at(SPAM_H[1])
    for sender in senders:
        for t in np.sort(rng.uniform(s0, s1, 3)):
            sport = int(rng.integers(1024, 65535))
            size = int(rng.integers(6000, 25000))
            sc.flows.add(start=t, end=t + 2.0, src=sender, dst=MAIL_SERVER, sport=sport, dport=25, proto=6,
                         packets=size // 1400 + 6, bytes=size, flags=TCP_SESSION, app=APP_SMTP, label="phishing")
            sc.flows.add(start=t + 0.02, end=t + 2.0, src=MAIL_SERVER, dst=sender, sport=25, dport=sport, proto=6,
                         packets=8, bytes=900, flags=TCP_SESSION, app=APP_SMTP, label="phishing")
            mail_log(sc, rng, float(t), sender, True, domains)
    feed_t = s0 + FEED_DELAY_H * 3600
    for i, u in enumerate(urls):
        sc.feeds.append(FeedUrl(feed_t + 60 * i, u, "phishing", BRAND))
        sc.feeds.append(FeedUrl(s0 + 1800 + 60 * i, u, "spam"))
    v0, v1 = sc.at(VISIT_H[0]), sc.at(VISIT_H[1])
    for victim in victims:
        t = float(rng.uniform(v0, v1))
        k = int(rng.integers(0, len(phish_hosts)))
        add_lookup(sc, rng, t, victim, phish_hosts[k], A, 0, [DnsAnswer(A, 300, servers[k])], label="phishing")
        sport = int(rng.integers(32768, 61000))
        sc.flows.add(start=t + 0.1, end=t + 4.0, src=victim, dst=servers[k], sport=sport, dport=443, proto=6,
                     packets=14, bytes=3500, flags=TCP_SESSION, app=APP_TLS, label="phishing")
        sc.flows.add(start=t + 0.15, end=t + 4.0, src=servers[k], dst=victim, sport=443, dport=sport, proto=6,
                     packets=40, bytes=52000, flags=TCP_SESSION, app=APP_TLS, label="phishing")
    return [attack_record("phishing", s0, v1, senders=senders, urls=urls, domains=phish_hosts, victims=victims,
                          hosts=servers, details={"brand": BRAND, "mail_server": MAIL_SERVER,
                                                  "feed_time": feed_t, "mails_per_sender": 3})]
