"""The enrichment bot: answers every post that mentions an IP address or a domain name with what we know of it.

For each address: GeoIP country/city and AS number/organization (MaxMind
mmdb, necoma.enrich), the lake's IP lists that contain it (`iplists`: open
resolvers, allow, deny, ...), and its history in the lake: first/last seen and
flow count as source or destination, DNS queries it made. For each domain:
DNS queries for it and its subdomains (first/last seen, clients). The answer
is a reply, so it reaches exactly the parent post's audience.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import regex

from necoma.enrich import Enricher
from necoma.exchange.bots.client import TimelineClient

log = logging.getLogger(__name__)

# Candidates only; each is checked with ipaddress / a label check before use.
PATTERN = (r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})(?![\w.:])"
           r"|(?<![\w.@/-])(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}(?![\w-])")
_FINDER = regex.compile(PATTERN)
MARK = "enrichment-bot:"  # first word of every answer: the bot never answers itself
MAX_SUBJECTS = 10


def subjects(text: str) -> list[str]:
    """IP addresses and domain names mentioned in `text`, in order, without duplicates."""
    out: list[str] = []
    for m in _FINDER.findall(text):
        value = m.lower().rstrip(".")
        try:
            value = str(ipaddress.ip_address(value))
        except ValueError:
            if ":" in value or value.replace(".", "").isdigit():
                continue  # looked like an address but is not one
        if value not in out:
            out.append(value)
    return out[:MAX_SUBJECTS]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


class LakeHistory:
    """What the lake saw of an address or domain (DuckDB over the Parquet lake)."""

    def __init__(self, lake_path: Path) -> None:
        from necoma.lake import connect

        self._con = connect(lake_path)

    def _one(self, sql: str, params: list) -> tuple:
        return self._con.execute(sql, params).fetchone()

    def ip(self, ip: str) -> list[str]:
        lines = []
        n, first, last = self._one("SELECT count(*), min(start_time), max(end_time) FROM flows WHERE src_ip = ? OR dst_ip = ?",
                                   [ip, ip])
        if n:
            lines.append(f"{n} flows, first {first:%Y-%m-%d %H:%M}, last {last:%Y-%m-%d %H:%M} UTC")
        n, names = self._one("SELECT count(*), count(DISTINCT qname) FROM dns WHERE client_ip = ? AND NOT is_response", [ip])
        if n:
            lines.append(f"{n} DNS queries for {names} names")
        lists = self.lists(ip)
        if lists:
            lines.append("on lists: " + ", ".join(lists))
        return lines

    def lists(self, ip: str) -> list[str]:
        addr = ipaddress.ip_address(ip)
        host = f"{ip}/{128 if addr.version == 6 else 32}"
        # Exact entries by equality, prefixes (few in practice) checked here: lists can hold millions of hosts.
        rows = self._con.execute(
            "SELECT DISTINCT list_name, network FROM iplists WHERE network IN (?, ?) "
            "OR (network LIKE '%/%' AND network NOT LIKE '%/32' AND network NOT LIKE '%/128')", [ip, host]).fetchall()
        found = set()
        for name, network in rows:
            try:
                net = ipaddress.ip_network(network, strict=False)
            except ValueError:
                continue
            if net.version == addr.version and addr in net:
                found.add(name)
        return sorted(found)

    def domain(self, name: str) -> list[str]:
        n, first, last, clients = self._one(
            "SELECT count(*), min(time), max(time), count(DISTINCT client_ip) FROM dns "
            "WHERE NOT is_response AND (qname = ? OR qname LIKE ?)", [name, "%." + name])
        return [f"{n} DNS queries by {clients} clients, first {first:%Y-%m-%d %H:%M}, last {last:%Y-%m-%d %H:%M} UTC"] if n else []


@dataclass
class EnrichmentBot:
    client: TimelineClient
    enricher: Enricher
    history: LakeHistory | None = None

    def describe(self, value: str) -> str:
        facts: list[str] = []
        if _is_ip(value):
            geo = self.enricher.geoip.lookup(value) if self.enricher.geoip else {}
            where = ", ".join(x for x in (geo.get("city"), geo.get("country")) if x)
            if where:
                facts.append(where)
            if geo.get("asn"):
                facts.append(f"AS{geo['asn']} {geo.get('as_org') or ''}".strip())
            if self.history:
                facts += self.history.ip(value)
        elif self.history:
            facts += self.history.domain(value)
        return f"- `{value}`: " + ("; ".join(facts) if facts else "nothing known")

    def answer(self, post: dict) -> str | None:
        """The reply text for `post`, or None (its own answers, nothing to look up)."""
        if post["text"].startswith(MARK):
            return None
        found = subjects(post["text"])
        if not found:
            return None
        return MARK + "\n\n" + "\n".join(self.describe(v) for v in found)

    def run(self, stop: Callable[[], bool] = lambda: False, since_id: int | None = None, heartbeat: float = 15.0) -> None:
        for item in self.client.stream(PATTERN, since_id=since_id, heartbeat=heartbeat, stop=stop):
            text = self.answer(item["post"])
            if text is None:
                continue
            try:
                self.client.post(text, reply_to=item["post"]["id"])
            except Exception as exc:  # one refused answer must not stop the bot
                log.warning("could not answer post %s: %s", item["post"]["id"], exc)
