"""Background traffic: what a normal day of the simulated network looks like.

Realistic enough that a naive detector raises false positives: a diurnal
curve, heavy-tailed (log-normal) transfer sizes, HTTPS, QUIC, HTTP, IMAPS,
8443, SSH, SMTP in and out, NTP mode 3/4 (76-byte packets), IPv6, steady
legitimate heavy hitters (off-site backup replication all day, a software
update CDN serving large downloads), users of our web server. DNS, syslog
and feeds are in `background_dns` and `background_logs`.
"""
from __future__ import annotations

import numpy as np

from necoma.testbed import names
from necoma.testbed.model import (
    APP_GENERIC, APP_NTP_CLIENT, APP_NTP_SERVER, APP_QUIC, APP_SMTP, APP_TLS, TCP_SESSION, Scenario,
)
from necoma.testbed.network import (
    BACKUP_SERVER, BACKUP_TARGET, MAIL_SERVER, NTP_SERVER, WEB_SERVER, Hosts, server_ip,
)

CONVERSATIONS_PER_DAY = 9000  # client conversations at scale 1 (each gives two flow records)
UPDATE_CDN = "dl.delivery.windowsupdate.com"

# service mix of client conversations: (name, share, protocol, server port, app)
SERVICES = (
    ("https", 0.52, 6, 443, APP_TLS),
    ("quic", 0.22, 17, 443, APP_QUIC),
    ("http", 0.08, 6, 80, APP_GENERIC),
    ("imaps", 0.07, 6, 993, APP_TLS),
    ("https-alt", 0.04, 6, 8443, APP_TLS),
    ("submission", 0.03, 6, 465, APP_TLS),
    ("ssh", 0.04, 6, 22, APP_GENERIC),
)


def diurnal(hours: np.ndarray) -> np.ndarray:
    """Relative activity by hour of day: night trough, peak mid-afternoon (office network)."""
    return 0.2 + np.exp(-(((hours - 14.0) / 4.5) ** 2))


def start_times(sc: Scenario, rng: np.random.Generator, per_day: int) -> np.ndarray:
    """Times following the diurnal curve over the history hours and the day; `per_day` of them fall in the day."""
    hours = np.arange(-sc.history_hours, 24)
    w = diurnal((hours % 24) + 0.5)
    n = int(round(per_day * w.sum() / diurnal(np.arange(24) + 0.5).sum()))
    picked = rng.choice(hours, size=n, p=w / w.sum())
    return np.sort(sc.day_start + (picked + rng.random(n)) * 3600.0)


def _tcp_or_udp_pair(sc: Scenario, rng, t, client, server, port, proto, app, req_bytes, resp_bytes, label):
    """Both directions of n conversations; TCP gets ACK traffic back, sizes from the payloads."""
    n = len(t)
    mss = np.where(proto == 17, 1250, 1400)
    resp_pk = np.ceil(resp_bytes / mss).astype(np.int64) + 1
    req_pk = np.where(proto == 6, resp_pk // 2 + 3, np.ceil(req_bytes / mss).astype(np.int64) + 1)
    hdr = np.where(proto == 6, 52, 28)
    rate = rng.lognormal(np.log(2e6), 1.0, n)  # bytes/s
    dur = 0.03 + resp_bytes / rate
    sport = rng.integers(32768, 61000, n)
    flags = np.where(proto == 6, TCP_SESSION, 0)
    sc.flows.add(start=t, end=t + dur, src=client, dst=server, sport=sport, dport=port, proto=proto,
                 packets=req_pk, bytes=req_bytes + req_pk * hdr, flags=flags, app=app, label=label)
    sc.flows.add(start=t + 0.01, end=t + dur, src=server, dst=client, sport=port, dport=sport, proto=proto,
                 packets=resp_pk, bytes=resp_bytes + resp_pk * hdr, flags=flags, app=app, label=label)


def client_conversations(sc: Scenario, hosts: Hosts, domains: list[str]) -> None:
    rng = sc.rng("background", "web")
    t = start_times(sc, rng, int(CONVERSATIONS_PER_DAY * sc.scale))
    n = len(t)
    clients = np.array(hosts.clients, dtype=object)
    activity = rng.lognormal(0, 1.0, len(clients))  # some users are much busier than others
    who = rng.choice(len(clients), size=n, p=activity / activity.sum())
    client = clients[who]
    svc = rng.choice(len(SERVICES), size=n, p=[s[1] for s in SERVICES])
    proto = np.array([SERVICES[i][2] for i in svc], dtype=np.uint8)
    port = np.array([SERVICES[i][3] for i in svc], dtype=np.uint16)
    app = np.array([SERVICES[i][4] for i in svc], dtype=np.uint8)
    dom = rng.choice(len(domains), size=n, p=names.zipf_weights(len(domains)))
    use_v6 = np.array([c in hosts.v6_of for c in client]) & (rng.random(n) < 0.45)
    server = np.array([server_ip(domains[d], v6) for d, v6 in zip(dom, use_v6)], dtype=object)
    client = np.array([hosts.v6_of[c] if v6 else c for c, v6 in zip(client, use_v6)], dtype=object)
    resp = np.clip(rng.lognormal(9.6, 2.1, n), 300, 3e8).astype(np.int64)  # heavy tail: most small, a few huge
    req = np.clip(rng.lognormal(6.8, 1.0, n), 60, 2e5).astype(np.int64)
    ssh = port == 22
    req[ssh], resp[ssh] = resp[ssh] // 4 + 500, resp[ssh] // 4 + 500  # interactive: both ways alike
    _tcp_or_udp_pair(sc, rng, t, client, server, port, proto, app, req, resp, "background")


def web_server_users(sc: Scenario, hosts: Hosts) -> None:
    """Outside users of our own web server (inbound HTTPS)."""
    rng = sc.rng("background", "webserver")
    t = start_times(sc, rng, int(1200 * sc.scale))
    n = len(t)
    users = np.array(hosts.internet_clients[:800], dtype=object)[rng.integers(0, 800, n)]
    resp = np.clip(rng.lognormal(10.0, 1.5, n), 500, 5e7).astype(np.int64)
    req = np.clip(rng.lognormal(6.5, 0.8, n), 60, 1e5).astype(np.int64)
    _tcp_or_udp_pair(sc, rng, t, users, np.full(n, WEB_SERVER, dtype=object),
                     np.full(n, 443), np.full(n, 6), np.full(n, APP_TLS), req, resp, "background")


def heavy_hitters(sc: Scenario, hosts: Hosts) -> None:
    """Legitimate heavy hitters, steady from the first hour: backup replication and the update CDN."""
    rng = sc.rng("background", "heavy")
    hourly = CONVERSATIONS_PER_DAY * sc.scale / 24 * np.exp(9.6 + 2.1 ** 2 / 2)  # mean client bytes per hour
    # Backup replication: one long TCP session, exported as per-hour records by the active timeout.
    for h in range(-sc.history_hours, 24):
        b = int(hourly * rng.uniform(0.18, 0.24))
        t = sc.at(h)
        sc.flows.add(start=t, end=t + 3599.0, src=BACKUP_SERVER, dst=BACKUP_TARGET, sport=50500, dport=443,
                     proto=6, packets=b // 1400, bytes=b, flags=TCP_SESSION & ~1, app=APP_TLS, label="benign_heavy")
        sc.flows.add(start=t, end=t + 3599.0, src=BACKUP_TARGET, dst=BACKUP_SERVER, sport=443, dport=50500,
                     proto=6, packets=b // 2800, bytes=b // 2800 * 52, flags=TCP_SESSION & ~1, app=APP_TLS,
                     label="benign_heavy")
    # Update CDN: large downloads to many clients all day long (0.3-3 GB-ish, scaled to the network).
    cdn = server_ip(UPDATE_CDN)
    n = int((36 * sc.scale + 12) * (sc.t1 - sc.t0) / 86400.0)
    t = sc.t0 + np.sort(rng.random(n)) * (sc.t1 - sc.t0)
    clients = np.array(hosts.clients, dtype=object)[rng.integers(0, len(hosts.clients), n)]
    size = (hourly * rng.uniform(0.05, 0.3, n)).astype(np.int64)
    _tcp_or_udp_pair(sc, rng, t, clients, np.full(n, cdn, dtype=object), np.full(n, 443), np.full(n, 6),
                     np.full(n, APP_TLS), np.full(n, 800), size, "benign_heavy")
    sc.benign["heavy_hitters"] = [BACKUP_SERVER, BACKUP_TARGET, cdn]


def ntp(sc: Scenario, hosts: Hosts) -> None:
    """NTP mode 3 requests and mode 4 replies, 76-byte IP packets: our NTP server and some clients to the pool."""
    rng = sc.rng("background", "ntp")
    pairs: list[tuple[str, str, float]] = []
    for server in hosts.ntp_pool[:4]:  # our server polls the pool every 1024 s
        pairs += [(NTP_SERVER, server, p) for p in np.arange(sc.t0 + rng.uniform(0, 1024), sc.t1, 1024.0)]
    direct = hosts.site_a[::5]  # some clients (laptops) sync directly, every ~2 h
    for c in direct:
        server = hosts.ntp_pool[int(rng.integers(0, len(hosts.ntp_pool)))]
        pairs += [(c, server, p) for p in np.arange(sc.t0 + rng.uniform(0, 7200), sc.t1, 7200.0)]
    src = np.array([p[0] for p in pairs], dtype=object)
    dst = np.array([p[1] for p in pairs], dtype=object)
    t = np.array([p[2] for p in pairs])
    sport = np.where(src == NTP_SERVER, 123, rng.integers(32768, 61000, len(t)))
    sc.flows.add(start=t, end=t, src=src, dst=dst, sport=sport, dport=123, proto=17, packets=1, bytes=76,
                 app=APP_NTP_CLIENT)
    sc.flows.add(start=t + 0.02, end=t + 0.02, src=dst, dst=src, sport=123, dport=sport, proto=17, packets=1,
                 bytes=76, app=APP_NTP_SERVER)
    sc.benign["ntp_servers"] = [NTP_SERVER] + hosts.ntp_pool[:4]


def smtp(sc: Scenario, hosts: Hosts) -> list[tuple[float, str, bool]]:
    """Mail in (outside MTAs to our MX) and out; returns (time, peer, inbound) for the mail log."""
    rng = sc.rng("background", "smtp")
    t = start_times(sc, rng, int(900 * sc.scale))
    n = len(t)
    peers = np.array(hosts.internet_clients[1000:1400], dtype=object)[rng.integers(0, 400, n)]
    inbound = rng.random(n) < 0.6
    size = np.clip(rng.lognormal(9.5, 1.4, n), 800, 3e7).astype(np.int64)
    src = np.where(inbound, peers, MAIL_SERVER)
    dst = np.where(inbound, MAIL_SERVER, peers)
    _tcp_or_udp_pair(sc, rng, t, src, dst, np.full(n, 25), np.full(n, 6), np.full(n, APP_SMTP),
                     size, np.full(n, 400), "background")
    sc.benign["mail_servers"] = [MAIL_SERVER]
    return [(float(a), str(b), bool(c)) for a, b, c in zip(t, peers, inbound)]
