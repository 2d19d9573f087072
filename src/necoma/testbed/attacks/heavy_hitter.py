"""Anomalous heavy hitter: a host pair never seen before suddenly carries a large share of all bytes (exfiltration).

Next to it the background has legitimate heavy hitters (backup replication,
the update CDN) that are heavy every hour, which a good detector must not
report.
"""
from __future__ import annotations

import numpy as np

from necoma.testbed.background import CONVERSATIONS_PER_DAY
from necoma.testbed.model import APP_TLS, TCP_SESSION, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 20.0, 21.5
SHARE = 0.6  # bytes per hour relative to an average hour of all client traffic


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "heavy_hitter")
    src = sc.take(hosts.site_b, 1, rng)[0]
    dst = sc.take(hosts.attack_pool[1000:2000], 1, rng)[0]
    hourly = CONVERSATIONS_PER_DAY * sc.scale / 24 * np.exp(9.6 + 2.1 ** 2 / 2)
    t0, t1 = sc.at(START_H), sc.at(END_H)
    edges = np.arange(t0, t1, 300.0)  # five-minute records of one long upload
    per = int(hourly * SHARE / 12)
    sport = int(rng.integers(32768, 61000))
    sc.flows.add(start=edges, end=edges + 299.0, src=src, dst=dst, sport=sport, dport=443, proto=6,
                 packets=per // 1400, bytes=per, flags=TCP_SESSION, app=APP_TLS, label="heavy_hitter")
    sc.flows.add(start=edges, end=edges + 299.0, src=dst, dst=src, sport=443, dport=sport, proto=6,
                 packets=per // 2800, bytes=per // 2800 * 52, flags=TCP_SESSION, app=APP_TLS, label="heavy_hitter")
    return [attack_record("heavy_hitter", t0, t1, hosts=[src, dst], details={
        "direction": "outbound upload", "source": src, "destination": dst, "bytes": int(per * len(edges)),
        "share_of_average_hour": SHARE})]
