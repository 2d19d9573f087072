"""NTP amplification: spoofed monlist queries to NTP servers in our network, 468-byte replies to the victim.

The attacker (not visible: its packets carry the victim's address) sends
mode 7 MON_GETLIST_1 (request code 42) queries of 220 IP bytes to
misconfigured NTP daemons inside our sites; each answers with up to 100
packets of 468 IP bytes (6 monitor entries of 72 bytes + 8-byte header) to
the spoofed source: the victim, outside. Both directions cross our borders.
"""
from __future__ import annotations

from necoma.testbed.attacks._reflect import reflected
from necoma.testbed.model import APP_NTP_MONLIST_REQ, APP_NTP_MONLIST_RESP, Scenario
from necoma.testbed.network import Hosts
from necoma.testbed.truth import attack_record

START_H, END_H = 14.0, 14.0 + 20 / 60
QUERIES_PER_S = 3.0  # per amplifier
REPLIES_PER_QUERY = 100
REQUEST_IP_LEN, RESPONSE_IP_LEN = 220, 468


def inject(sc: Scenario, hosts: Hosts, domains: list[str]) -> list[dict]:
    rng = sc.rng("attack", "ntp_amplification")
    n = max(4, int(8 * sc.scale ** 0.5))
    amplifiers = sc.take(hosts.site_a, n - n // 3, rng) + sc.take(hosts.site_b, n // 3, rng)
    victim = sc.take(hosts.attack_pool[:1000], 1, rng)[0]
    t0, t1 = sc.at(START_H), sc.at(END_H)
    for amp in amplifiers:
        port = int(rng.integers(1024, 65535))  # the spoofed source port the replies go to
        a0 = t0 + float(rng.uniform(0, 20))
        reflected(sc, t0=a0, t1=t1, src=victim, dst=amp, sport=port, dport=123, rate=QUERIES_PER_S,
                  udp_len=REQUEST_IP_LEN - 20, app=APP_NTP_MONLIST_REQ, label="ntp_amplification")
        reflected(sc, t0=a0 + 0.01, t1=t1, src=amp, dst=victim, sport=123, dport=port,
                  rate=QUERIES_PER_S * REPLIES_PER_QUERY, udp_len=RESPONSE_IP_LEN - 20, app=APP_NTP_MONLIST_RESP,
                  label="ntp_amplification")
    return [attack_record("ntp_amplification", t0, t1, victims=[victim], amplifiers=amplifiers, details={
        "request": "mode 7 MON_GETLIST_1 (42)", "request_ip_length": REQUEST_IP_LEN,
        "response_ip_length": RESPONSE_IP_LEN, "spoofed": True,
        "note": "queries carry the victim's address; the real sender is not visible"})]
