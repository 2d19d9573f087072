"""The address plan of the simulated network, and the observation points that export data.

An organisation with two sites behind two border routers, plus the outside:

- site A: 10.1.0.0/16 and 2001:db8:100::/48 (dual-stack clients), resolver A
  10.1.0.53 / 2001:db8:100::53 (its traffic is captured to `dns.pcap`), mail
  server 10.1.0.25, NTP server 10.1.0.123; border router 192.0.2.1 exports
  NetFlow v9 sampled 1:N;
- site B: 10.2.0.0/16, resolver B 10.2.0.53 (BIND, writes `dns-query.log`),
  backup server 10.2.0.50; border router 192.0.2.2 exports IPFIX, unsampled;
- a core switch 192.0.2.3 sees both sites' Internet traffic and exports
  sFlow v5 raw-header samples, 1:M.

Outside addresses come from ranges reserved for documentation and
benchmarking (198.18.0.0/15, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), so nothing in a scenario names a real network.
Servers of popular names live in 198.18.0.0/16, ordinary Internet clients
and MTAs in 198.19.0.0/17, attack infrastructure in 198.19.128.0/17,
scanners in 203.0.113.0/24, C&C and phishing servers in 198.51.100.0/24.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NETFLOW_EXPORTER = "192.0.2.1"
IPFIX_EXPORTER = "192.0.2.2"
SFLOW_AGENT = "192.0.2.3"
SYSLOG_RELAY = "192.0.2.10"

RESOLVER_A = "10.1.0.53"
RESOLVER_A6 = "2001:db8:100::53"
RESOLVER_B = "10.2.0.53"
MAIL_SERVER = "10.1.0.25"
NTP_SERVER = "10.1.0.123"
WEB_SERVER = "10.1.0.80"
BACKUP_SERVER = "10.2.0.50"
BACKUP_TARGET = "198.19.10.10"  # off-site replication target (cloud storage)

SITE_A = ipaddress.ip_network("10.1.0.0/16")
SITE_B = ipaddress.ip_network("10.2.0.0/16")
SITE_A6 = ipaddress.ip_network("2001:db8:100::/48")
INSIDE = (SITE_A, SITE_B, SITE_A6)


@lru_cache(maxsize=1 << 16)
def hashed_ip(name: str, network: str) -> str:
    """A stable address for `name` inside `network` (popular names keep their address across runs)."""
    net = ipaddress.ip_network(network)
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big")
    span = net.num_addresses - 2
    return str(net.network_address + 1 + h % span)


def server_ip(name: str, v6: bool = False) -> str:
    return hashed_ip(name, "2001:db8:f000::/48" if v6 else "198.18.0.0/16")


@lru_cache(maxsize=1 << 17)
def inside_site(addr: str) -> str | None:
    """'A' or 'B' for inside addresses, None outside."""
    ip = ipaddress.ip_address(addr)
    if ip in SITE_B:
        return "B"
    if ip in SITE_A or ip in SITE_A6:
        return "A"
    return None


@dataclass
class Hosts:
    """The inside client population and outside pools, fixed by the seed and scale."""

    site_a: list[str]
    site_b: list[str]
    v6_of: dict[str, str]  # dual-stack site A clients: v4 -> v6
    internet_clients: list[str]  # outside hosts that talk to us (MTAs, users of our web server)
    attack_pool: list[str]  # outside attack infrastructure
    ntp_pool: list[str]  # public NTP servers

    @property
    def clients(self) -> list[str]:
        return self.site_a + self.site_b


def _unique_addresses(rng: np.random.Generator, network: str, n: int, first: int = 256) -> list[str]:
    net = ipaddress.ip_network(network)
    span = net.num_addresses - first - 1
    idx = rng.choice(span, size=n, replace=False) + first
    idx.sort()
    return [str(net.network_address + int(i)) for i in idx]


def make_hosts(rng: np.random.Generator, scale: float) -> Hosts:
    n_a = max(40, int(300 * scale ** 0.5))
    n_b = max(20, int(150 * scale ** 0.5))
    # 10.x.0.0/24 holds the servers; clients start at 10.x.1.0 and spread over many /24s.
    site_a = _unique_addresses(rng, "10.1.0.0/18", n_a)
    site_b = _unique_addresses(rng, "10.2.0.0/18", n_b)
    v6_of = {}
    for i, a in enumerate(site_a):
        if i % 3 == 0:
            v6_of[a] = str(SITE_A6.network_address + (1 << 64) + int(rng.integers(1, 1 << 62)))
    return Hosts(
        site_a=site_a, site_b=site_b, v6_of=v6_of,
        internet_clients=_unique_addresses(rng, "198.19.0.0/17", 2000),
        attack_pool=_unique_addresses(rng, "198.19.128.0/17", 3000),
        ntp_pool=_unique_addresses(rng, "198.19.123.0/24", 8, first=1),
    )
