"""Allow and deny lists that the rating consults: addresses, prefixes (CIDR) and domain names.

A domain entry covers its subdomains (allow-listing example.com covers
www.example.com); a prefix covers every address in it. A URL is matched by
its host.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlsplit

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_of(value: str) -> str:
    """The host of a URL, or the value itself, lower-cased and without a trailing dot."""
    if "://" in value:
        value = urlsplit(value).hostname or value
    return value.strip().lower().rstrip(".")


def as_network(value: str) -> IPNet | None:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


@dataclass
class EntryList:
    """One list: networks and domain names."""

    networks: list[IPNet] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, entries: Iterable[str]) -> "EntryList":
        out = cls()
        for e in entries:
            e = e.strip()
            if not e or e.startswith("#"):
                continue
            net = as_network(e)
            if net is not None:
                out.networks.append(net)
            else:
                out.domains.add(host_of(e))
        return out

    def __contains__(self, value: str) -> bool:
        host = host_of(value)
        net = as_network(host)
        if net is not None:
            return any(net.version == n.version and net.subnet_of(n) for n in self.networks)
        labels = host.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))


@dataclass
class Lists:
    allow: EntryList = field(default_factory=EntryList)
    deny: EntryList = field(default_factory=EntryList)

    @classmethod
    def of(cls, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> "Lists":
        return cls(EntryList.of(allow), EntryList.of(deny))
