"""IP lists from the lake (`iplists` table: open resolvers, allow-lists, ...), matched in Python.

Lists can be large (millions of open resolvers), so only entries that can
match the given addresses are fetched: exact host entries by equality, and
every shorter prefix (few in practice), then checked with `ipaddress`.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from necoma.lake.engines.base import Engine

SQL = """
SELECT DISTINCT network FROM iplists
WHERE list_name = :list
  AND (network IN :hosts OR network IN :plain
       OR (network LIKE '%/%' AND network NOT LIKE '%/32' AND network NOT LIKE '%/128'))
"""


def members(engine: Engine, list_name: str, addresses: Iterable[str]) -> set[str]:
    """The addresses that the list `list_name` contains."""
    addrs = sorted(set(addresses))
    if not addrs:
        return set()
    hosts = [f"{a}/{128 if ':' in a else 32}" for a in addrs]
    rows = engine.query(SQL, {"list": list_name, "hosts": hosts, "plain": addrs})
    nets = []
    for r in rows:
        try:
            nets.append(ipaddress.ip_network(r["network"], strict=False))
        except ValueError:
            continue
    out = set()
    for a in addrs:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        if any(ip.version == n.version and ip in n for n in nets):
            out.add(a)
    return out
