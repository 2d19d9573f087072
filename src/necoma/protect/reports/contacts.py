"""Who receives the abuse report for an address: configuration first, then RDAP data.

1. `abuse_contacts`: a table prefix -> email, IPv4 and IPv6; the most specific prefix wins.
2. An offline RDAP cache directory: RDAP IP network objects (RFC 9083 §5.4), one JSON
   file each, as `whois`-era tooling or `curl https://rdap.../ip/ADDR` saves them.
3. An RDAP base URL: `GET {base}/ip/{address}` (RFC 9082 §3.1.1); answers are saved
   into the cache directory when one is configured, so the next lookup is offline.

The address is the email of the entity with the `abuse` role, found anywhere in
the network's entity tree (registries nest it under the registrant), from its
jCard (RFC 7095) `email` property. No contact -> None and the reason why.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Contact:
    email: str
    network: str  # the prefix the contact is responsible for
    source: str  # "config", "rdap-cache" or "rdap"


def abuse_email(rdap: dict[str, Any]) -> str | None:
    """The email of the first entity with the `abuse` role, searched depth-first."""
    for entity in rdap.get("entities") or []:
        if not isinstance(entity, dict):
            continue
        if "abuse" in (entity.get("roles") or []):
            email = _vcard_email(entity.get("vcardArray"))
            if email:
                return email
        nested = abuse_email(entity)
        if nested:
            return nested
    return None


def _vcard_email(vcard: Any) -> str | None:
    # jCard: ["vcard", [[name, params, type, value], ...]]
    if not (isinstance(vcard, list) and len(vcard) == 2 and isinstance(vcard[1], list)):
        return None
    for prop in vcard[1]:
        if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "email" and isinstance(prop[3], str):
            if _EMAIL.match(prop[3].strip()):
                return prop[3].strip()
    return None


def rdap_networks(rdap: dict[str, Any]) -> list[Network]:
    """The prefixes an RDAP IP network object covers: `cidr0_cidrs` if present, else start..end."""
    nets: list[Network] = []
    for c in rdap.get("cidr0_cidrs") or []:
        prefix = c.get("v4prefix") or c.get("v6prefix")
        if prefix is not None and c.get("length") is not None:
            nets.append(ipaddress.ip_network(f"{prefix}/{c['length']}", strict=False))
    if not nets and rdap.get("startAddress") and rdap.get("endAddress"):
        start, end = ipaddress.ip_address(rdap["startAddress"]), ipaddress.ip_address(rdap["endAddress"])
        nets = list(ipaddress.summarize_address_range(start, end))
    return nets


class ContactBook:
    def __init__(self, table: dict[str, str] | None = None, rdap_cache: Path | None = None,
                 rdap_url: str | None = None, timeout: float = 10.0) -> None:
        self._table: list[tuple[Network, str]] = []
        for prefix, email in (table or {}).items():
            if not _EMAIL.match(email):
                raise ValueError(f"abuse_contacts: {email!r} for {prefix} is not an email address")
            self._table.append((ipaddress.ip_network(prefix, strict=False), email))
        self.rdap_cache = Path(rdap_cache) if rdap_cache else None
        self.rdap_url = rdap_url.rstrip("/") if rdap_url else None
        self.timeout = timeout
        self._cache: list[tuple[Network, str]] | None = None

    def lookup(self, address: str) -> tuple[Contact | None, str]:
        """The contact for `address` (an IP or a prefix), or None and why there is none."""
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError:
            return None, f"{address!r} is not an IP address or prefix"
        found = _most_specific(self._table, net)
        if found:
            return Contact(found[1], str(found[0]), "config"), ""
        found = _most_specific(self._cached(), net)
        if found:
            return Contact(found[1], str(found[0]), "rdap-cache"), ""
        if self.rdap_url:
            contact, why = self._query(net)
            if contact:
                return contact, ""
            return None, f"no abuse contact for {address} ({why})"
        return None, f"no abuse contact for {address}"

    def _cached(self) -> list[tuple[Network, str]]:
        if self._cache is None:
            self._cache = []
            if self.rdap_cache and self.rdap_cache.is_dir():
                for path in sorted(self.rdap_cache.glob("*.json")):
                    self._cache += _index(path)
        return self._cache

    def _query(self, net: Network) -> tuple[Contact | None, str]:
        url = f"{self.rdap_url}/ip/{net.network_address}"
        try:
            r = httpx.get(url, headers={"Accept": "application/rdap+json"}, timeout=self.timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            return None, f"RDAP {url}: {exc}"
        if r.status_code != 200:
            return None, f"RDAP {url} answered {r.status_code}"
        try:
            data = r.json()
            nets, email = rdap_networks(data), abuse_email(data)
        except (ValueError, TypeError, AttributeError) as exc:
            return None, f"RDAP {url}: not an RDAP IP network object ({exc})"
        if not email:
            return None, f"RDAP {url}: no entity with the abuse role and an email"
        covering = [n for n in nets if n.version == net.version and net.subnet_of(n)] or [net]
        if self.rdap_cache:  # keep it, so the next lookup needs no network
            self.rdap_cache.mkdir(parents=True, exist_ok=True)
            name = str(covering[0]).replace("/", "_").replace(":", "-") + ".json"
            (self.rdap_cache / name).write_text(json.dumps(data))
            self._cache = None
        return Contact(email, str(covering[0]), "rdap"), ""


def _index(path: Path) -> list[tuple[Network, str]]:
    try:
        data = json.loads(path.read_text())
        email = abuse_email(data)
        return [(n, email) for n in rdap_networks(data)] if email else []
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("RDAP cache file %s skipped: %s", path, exc)
        return []


def _most_specific(table: list[tuple[Network, str]], net: Network) -> tuple[Network, str] | None:
    best = None
    for prefix, email in table:
        if prefix.version == net.version and net.subnet_of(prefix):  # type: ignore[arg-type]
            if best is None or prefix.prefixlen > best[0].prefixlen:
                best = (prefix, email)
    return best
