"""Translate an `Action` into nftables statements (pure: text in, text out, no I/O).

Layout inside the necoma-owned table, per action and IP family:
- one named set `k4_<h>` / `k6_<h>` (flags interval, timeout) holding the action's key
  prefixes; every element carries the action's remaining TTL as `timeout` and its id as
  `comment`, so the kernel forgets the block by itself when necoma is gone;
- rules in chain `pre` (prerouting, before conntrack defragmentation so fragment
  matches see real fragments) that look up that set, commented with the action id.
  When the set has emptied by timeout, the rule matches nothing; the driver sweeps such
  remnants at its next transaction.
Every match field is either expressed exactly or refused with DriverError.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from necoma.protect.model import Action, DriverError, Match

KINDS = frozenset({"drop", "rate_limit", "isolate"})
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 33: "dccp", 132: "sctp"}  # protocols whose header starts with ports
_TCP_FLAGS = {"F": "fin", "S": "syn", "R": "rst", "P": "psh", "A": "ack", "U": "urg", "E": "ecn", "C": "cwr"}
_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,120}$")  # ids go into quoted nft comments: no quotes, no spaces
_ND = ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect"]
IPV6_HEADER = 40  # `ip6 length` is the payload length; Match.packet_length is the total IP length

# IPv4 frag-off field: 0x4000 DF, 0x2000 MF, 0x1fff offset.
_FRAG4 = {
    "is-fragment": ["ip frag-off & 0x3fff != 0"],
    "first-fragment": ["ip frag-off & 0x3fff == 0x2000"],
    "last-fragment": ["ip frag-off & 0x1fff != 0", "ip frag-off & 0x2000 == 0"],
    "not-a-fragment": ["ip frag-off & 0x3fff == 0"],
    "dont-fragment": ["ip frag-off & 0x4000 != 0"],
}
_FRAG6 = {
    "is-fragment": ["exthdr frag exists"],
    "first-fragment": ["exthdr frag exists", "frag frag-off 0", "frag more-fragments 1"],
    "last-fragment": ["exthdr frag exists", "frag frag-off != 0", "frag more-fragments 0"],
    "not-a-fragment": ["exthdr frag missing"],
    # IPv6 has no DF bit: refused below.
}


@dataclass(frozen=True)
class Family:
    version: int
    ip: str  # nft payload protocol: ip / ip6
    addr_type: str  # set type
    any: str  # the whole address space


FAMILIES = {4: Family(4, "ip", "ipv4_addr", "0.0.0.0/0"), 6: Family(6, "ip6", "ipv6_addr", "::/0")}


def set_name(action_id: str, version: int) -> str:
    """Set names are derived from a hash: ids may be longer or wider than nft identifiers allow."""
    return f"k{version}_{hashlib.sha1(action_id.encode()).hexdigest()[:16]}"


def remaining_ttl(action: Action, now: datetime | None = None) -> int:
    """Seconds the kernel should keep the action: what is left of expires_at, else the full TTL."""
    if action.expires_at is None:
        return action.ttl_seconds
    now = now or datetime.now(timezone.utc)
    left = int((action.expires_at - now).total_seconds())
    if left <= 0:
        raise DriverError(f"action {action.id} expired at {action.expires_at.isoformat()}; not installing it")
    return left


def _nets(prefixes, version: int) -> list[str]:
    nets = [ipaddress.ip_network(p, strict=False) for p in prefixes]
    # Interval sets reject overlapping elements ("conflicting intervals"): collapse first.
    return [str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == version)]


def _anon(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _ports(ranges) -> str:
    return _anon([str(r) for r in ranges])


def _tcp_flags(text: str) -> str:
    """'S/SA' (value/mask, nfdump and FlowSpec style) -> 'tcp flags & (syn|ack) == syn'."""
    value, _, mask = text.upper().partition("/")
    mask = mask or value
    bad = set(value + mask) - set(_TCP_FLAGS)
    if not value and not mask or bad or not set(value) <= set(mask):
        raise DriverError(f"tcp_flags {text!r}: expected letters of FSRPAUEC as VALUE[/MASK], VALUE within MASK")

    def names(s: str) -> str:
        flags = [_TCP_FLAGS[c] for c in dict.fromkeys(s)]
        return flags[0] if len(flags) == 1 else "(" + "|".join(flags) + ")"

    return f"tcp flags & {names(mask)} == {names(value) if value else '0'}"


def _l4(match: Match) -> list[str]:
    """Protocol, ports and TCP flags; refuse combinations nft cannot express faithfully."""
    out: list[str] = []
    proto = match.protocol
    if match.tcp_flags is not None:
        if proto not in (None, 6):
            raise DriverError(f"tcp_flags given with protocol {proto}: flags exist only in TCP")
        proto = 6
    if match.src_ports or match.dst_ports:
        if proto is None:
            out.append("meta l4proto " + _anon([PORT_PROTOCOLS[p] for p in sorted(PORT_PROTOCOLS)]))
        elif proto not in PORT_PROTOCOLS:
            raise DriverError(f"ports given with protocol {proto}: only TCP, UDP, SCTP and DCCP carry ports")
        else:
            out.append(f"meta l4proto {proto}")
        if match.src_ports:
            out.append("th sport " + _ports(match.src_ports))
        if match.dst_ports:
            out.append("th dport " + _ports(match.dst_ports))
    elif proto is not None:
        out.append(f"meta l4proto {proto}")
    if match.tcp_flags is not None:
        out.append(_tcp_flags(match.tcp_flags))
    return out


def _length(match: Match, fam: Family) -> list[str]:
    if match.packet_length is None:
        return []
    lo, hi = match.packet_length
    if fam.version == 4:
        return [f"ip length {lo}-{hi}"]
    lo6, hi6 = max(0, lo - IPV6_HEADER), hi - IPV6_HEADER
    if hi6 < 0:
        raise DriverError(f"packet length {lo}-{hi} is below the IPv6 header size; no IPv6 packet matches")
    return [f"ip6 length {lo6}-{hi6}"]


def _fragment(match: Match, fam: Family) -> list[str]:
    if match.fragment is None:
        return []
    table = _FRAG4 if fam.version == 4 else _FRAG6
    if match.fragment not in table:
        raise DriverError(f"fragment {match.fragment!r} has no IPv6 meaning (IPv6 has no DF bit)")
    return table[match.fragment]


def _verdict(action: Action) -> str:
    if action.kind != "rate_limit":
        return "counter drop"
    p = action.params
    bps, pps = p.get("rate_bps"), p.get("rate_pps")
    if (bps is None) == (pps is None):
        raise DriverError(f"rate_limit action {action.id} needs exactly one of params rate_bps or rate_pps")
    try:
        rate = int(bps if bps is not None else pps)
    except (TypeError, ValueError):
        raise DriverError(f"rate_limit action {action.id}: rate {bps or pps!r} is not a number") from None
    if rate <= 0:
        raise DriverError(f"rate_limit action {action.id}: rate must be positive, got {rate}")
    # `limit rate over` is true for the traffic above the rate: that part is dropped, the rest passes.
    if bps is not None:
        per_s = max(1, rate // 8)
        burst = int(p.get("burst_bytes", max(3000, per_s // 5)))  # ~200 ms of traffic, at least two full frames
        return f"limit rate over {per_s} bytes/second burst {burst} bytes counter drop"
    burst = int(p.get("burst_packets", max(5, rate // 5)))
    return f"limit rate over {rate}/second burst {burst} packets counter drop"


@dataclass
class Plan:
    """The statements that install one action (sets with elements, then rules)."""

    action_id: str
    sets: list[str]
    rules: list[str]


def plan(action: Action, table: str, now: datetime | None = None) -> Plan:
    """The nft statements for one action, or DriverError naming what cannot be expressed."""
    if action.kind not in KINDS:
        raise DriverError(f"nftables enforces {', '.join(sorted(KINDS))}, not {action.kind!r} (action {action.id})")
    if not _ID.match(action.id):
        raise DriverError(f"action id {action.id!r} is empty or has characters unsafe in an nft comment")
    m = action.match
    if m.domains:
        raise DriverError(f"action {action.id}: nftables cannot match domains {list(m.domains)}; use an RPZ point")
    ttl = remaining_ttl(action, now)
    if action.kind == "isolate":
        return _plan_isolate(action, table, ttl)
    versions = [v for v in (4, 6) if all(not ps or _nets(ps, v) for ps in (m.dst_prefixes, m.src_prefixes))]
    if not versions:
        raise DriverError(f"action {action.id}: source and destination prefixes are of different IP versions")
    l4, verdict = _l4(m), _verdict(action)
    sets, rules = [], []
    for v in versions:
        fam = FAMILIES[v]
        dst, src = _nets(m.dst_prefixes, v), _nets(m.src_prefixes, v)
        # The timed set holds the destinations (or the sources when only those are named, or everything).
        key_field, key, other_field, other = ("daddr", dst, "saddr", src) if dst else ("saddr", src, "daddr", [])
        key = key or [fam.any]
        name = set_name(action.id, v)
        sets.append(_set(table, name, fam, action.id, key, ttl))
        expr = [f"{fam.ip} {key_field} @{name}"]
        if other:
            expr.append(f"{fam.ip} {other_field} {_anon(other)}")
        expr += l4 + _length(m, fam) + _fragment(m, fam)
        rules.append(_rule(table, "pre", expr, verdict, action.id))
    return Plan(action.id, sets, rules)


def _plan_isolate(action: Action, table: str, ttl: int) -> Plan:
    m = action.match
    extra = {k for k in ("protocol", "src_ports", "dst_ports", "packet_length", "fragment", "tcp_flags")
             if getattr(m, k) not in (None, ())}
    if extra:
        raise DriverError(f"isolate action {action.id} cuts whole hosts; it cannot also match {sorted(extra)}")
    hosts = (*m.dst_prefixes, *m.src_prefixes)
    if not hosts:
        raise DriverError(f"isolate action {action.id} names no host prefix (dst_prefixes)")
    allow = action.params.get("allow", [])
    if isinstance(allow, str):
        allow = [allow]
    try:
        allow = [str(ipaddress.ip_network(a, strict=False)) for a in allow]
    except (TypeError, ValueError) as e:
        raise DriverError(f"isolate action {action.id}: bad allow prefix: {e}") from None
    sets, rules = [], []
    for v in (4, 6):
        key = _nets(hosts, v)
        if not key:
            continue
        fam, name = FAMILIES[v], set_name(action.id, v)
        sets.append(_set(table, name, fam, action.id, key, ttl))
        ok = _nets(allow, v)
        # IPv6 neighbour discovery must keep working or even allowed peers cannot reach the
        # host (ARP, its IPv4 counterpart, is not IP and never meets these rules). Two rules
        # say "all but ND": `icmpv6 type != ...` alone would only ever match ICMPv6.
        tails = [[]] if v == 4 else [["meta l4proto != ipv6-icmp"], [f"icmpv6 type != {_anon(_ND)}"]]
        for chain in ("pre", "out"):  # pre: on a router or the host; out: the host's own packets
            for mine, peer in (("daddr", "saddr"), ("saddr", "daddr")):
                expr = [f"{fam.ip} {mine} @{name}"] + ([f"{fam.ip} {peer} != {_anon(ok)}"] if ok else [])
                for tail in tails:
                    rules.append(_rule(table, chain, expr + tail, "counter drop", action.id))
    return Plan(action.id, sets, rules)


def _set(table: str, name: str, fam: Family, action_id: str, elems: list[str], ttl: int) -> str:
    items = ", ".join(f'{e} timeout {ttl}s comment "{action_id}"' for e in elems)
    return (f"add set inet {table} {name} {{ type {fam.addr_type}; flags interval, timeout; "
            f'comment "{action_id}"; }}\n'
            f"add element inet {table} {name} {{ {items} }}")


def _rule(table: str, chain: str, expr: list[str], verdict: str, action_id: str) -> str:
    return f'add rule inet {table} {chain} {" ".join(expr)} {verdict} comment "{action_id}"'
