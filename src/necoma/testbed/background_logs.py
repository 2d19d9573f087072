"""Background syslog lines, threat feeds and the open-resolver list.

Syslog mixes the two formats real networks send: RFC 3164 from the servers
(postfix, sshd, named, cron) and RFC 5424 from the firewall. Lines are
exactly what goes on the wire (`<PRI>...`). Feeds list many URLs and
resolvers that never appear in our traffic, as real feeds do.
"""
from __future__ import annotations

import time

import numpy as np

from necoma.testbed import names
from necoma.testbed.background import start_times
from necoma.testbed.model import FeedUrl, Scenario, SyslogMsg
from necoma.testbed.network import Hosts

FACILITY = {"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "cron": 9, "authpriv": 10, "local0": 16}
SEVERITY = {"err": 3, "warning": 4, "notice": 5, "info": 6}


def rfc3164(t: float, host: str, app: str, pid: int, msg: str, facility: str = "daemon", severity: str = "info") -> str:
    pri = FACILITY[facility] * 8 + SEVERITY[severity]
    g = time.gmtime(t)
    stamp = f"{time.strftime('%b', g)} {g.tm_mday:2d} {time.strftime('%H:%M:%S', g)}"  # RFC 3164: space-padded day
    return f"<{pri}>{stamp} {host} {app}[{pid}]: {msg}"


def rfc5424(t: float, host: str, app: str, pid: int, msgid: str, msg: str, facility: str = "kern",
            severity: str = "warning") -> str:
    pri = FACILITY[facility] * 8 + SEVERITY[severity]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    return f"<{pri}>1 {stamp} {host} {app} {pid} {msgid} - {msg}"


def add_syslog(sc: Scenario, t: float, line: str) -> None:
    sc.syslog.append(SyslogMsg(float(t), line))


def mail_log(sc: Scenario, rng: np.random.Generator, t: float, peer: str, inbound: bool, domains: list[str],
             rejected: str = "") -> None:
    """Postfix lines for one SMTP session on mx1."""
    pid = int(rng.integers(1000, 30000))
    qid = "".join("0123456789ABCDEF"[int(c)] for c in rng.integers(0, 16, 10))
    dom = domains[int(rng.integers(0, len(domains)))]
    if inbound:
        add_syslog(sc, t, rfc3164(t, "mx1", "postfix/smtpd", pid, f"connect from unknown[{peer}]", "mail"))
        if rejected:
            add_syslog(sc, t + 0.4, rfc3164(t + 0.4, "mx1", "postfix/smtpd", pid,
                       f"NOQUEUE: reject: RCPT from unknown[{peer}]: {rejected}", "mail", "notice"))
        else:
            add_syslog(sc, t + 0.3, rfc3164(t + 0.3, "mx1", "postfix/smtpd", pid, f"{qid}: client=unknown[{peer}]", "mail"))
        add_syslog(sc, t + 0.9, rfc3164(t + 0.9, "mx1", "postfix/smtpd", pid, f"disconnect from unknown[{peer}]", "mail"))
    else:
        add_syslog(sc, t, rfc3164(t, "mx1", "postfix/smtp", pid, f"{qid}: to=<user{pid % 97}@{dom}>, "
                   f"relay=mx.{dom}[{peer}]:25, delay=0.8, status=sent (250 2.0.0 OK)", "mail"))


def background_syslog(sc: Scenario, hosts: Hosts, mail: list[tuple[float, str, bool]], domains: list[str]) -> None:
    rng = sc.rng("background", "syslog")
    for t, peer, inbound in mail:
        mail_log(sc, rng, t, peer, inbound, domains)
    for t in start_times(sc, rng, int(400 * sc.scale)):  # ssh brute force noise from the Internet, and real logins
        if rng.random() < 0.7:
            ip = hosts.internet_clients[int(rng.integers(1400, 2000))]
            msg = f"Failed password for invalid user admin from {ip} port {int(rng.integers(1024, 65535))} ssh2"
            add_syslog(sc, t, rfc3164(t, "bastion", "sshd", int(rng.integers(1000, 30000)), msg, "authpriv", "notice"))
        else:
            ip = hosts.clients[int(rng.integers(0, len(hosts.clients)))]
            msg = f"Accepted publickey for ops from {ip} port {int(rng.integers(1024, 65535))} ssh2"
            add_syslog(sc, t, rfc3164(t, "bastion", "sshd", int(rng.integers(1000, 30000)), msg, "authpriv"))
    for t in np.arange(sc.t0 + 60, sc.t1, 3600.0):  # hourly cron on every server
        for host in ("mx1", "ns1", "ns2", "bastion", "backup1"):
            add_syslog(sc, t, rfc3164(t, host, "CRON", int(rng.integers(1000, 30000)),
                                      "(root) CMD (run-parts /etc/cron.hourly)", "cron"))
    for t in start_times(sc, rng, int(150 * sc.scale)):  # resolver complaints
        dom = domains[int(rng.integers(0, len(domains)))]
        add_syslog(sc, t, rfc3164(t, "ns1", "named", 812, f"lame server resolving '{dom}' (in '{dom}'?): "
                                  f"{hosts.internet_clients[int(rng.integers(0, 2000))]}#53", "daemon", "notice"))
    for t in start_times(sc, rng, int(600 * sc.scale)):  # firewall drops of ordinary Internet noise
        src = hosts.internet_clients[int(rng.integers(0, 2000))]
        dst = hosts.clients[int(rng.integers(0, len(hosts.clients)))]
        port = int(rng.choice([23, 445, 3389, 1433, 5060, 8080]))
        msg = f"DROP IN=eth0 OUT= SRC={src} DST={dst} PROTO=TCP SPT={int(rng.integers(1024, 65535))} DPT={port} SYN"
        add_syslog(sc, t, rfc5424(t, "fw1", "kernel", 0, "FWDROP", msg))


def background_feeds(sc: Scenario, hosts: Hosts) -> None:
    """Phishing and spam URLs seen elsewhere on the Internet, and a published open-resolver list."""
    rng = sc.rng("background", "feeds")
    brands = ("PayPal", "Microsoft", "Apple", "Amazon", "Netflix", "DHL", "Chase", "Facebook")
    for t in start_times(sc, rng, int(200 * sc.scale)):
        brand = brands[int(rng.integers(0, len(brands)))]
        host = f"{brand.lower()}-{names.chrome_probe(rng)[:6]}.{rng.choice(['top', 'xyz', 'info', 'online'])}"
        sc.feeds.append(FeedUrl(float(t), f"http://{host}/{names.chrome_probe(rng)}/login.php", "phishing", brand))
    for t in start_times(sc, rng, int(120 * sc.scale)):
        host = f"{names.chrome_probe(rng)[:8]}.{rng.choice(['click', 'top', 'biz', 'ru'])}"
        sc.feeds.append(FeedUrl(float(t), f"http://{host}/?id={int(rng.integers(1, 10**6))}", "spam"))
    sc.open_resolvers.extend(hosts.attack_pool[2000:2400])
