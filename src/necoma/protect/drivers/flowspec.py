"""Action -> BGP announcements: FlowSpec rules (RFC 8955, IPv6 per RFC 8956) and RTBH routes (RFC 7999).

Pure translation shared by the GoBGP and ExaBGP drivers. A rule is kept at the
level of the RFC encoding (component type, operator byte, value), so what a peer
decodes from the wire can be compared with what necoma meant, term by term.

Mapping (RFC 8955 §4.2.2 component types):
  dst_prefixes -> 1 destination prefix   src_prefixes -> 2 source prefix
  protocol     -> 3 IP protocol (IPv6: next header)
  dst_ports    -> 5 destination port     src_ports    -> 6 source port
  tcp_flags    -> 9 TCP flags (bitmask)  packet_length -> 10 packet length
  fragment     -> 12 fragment (bitmask)
Traffic actions (RFC 8955 §7), extended community traffic-rate-bytes (0x8006):
  drop -> rate 0 (discard); rate_limit -> rate params["rate_bps"] / 8 rounded to whole
  bytes per second, because the RFC's rate is in bytes per second, necoma's params are
  bits per second, and ExaBGP takes whole numbers only. No redirect (RFC 8955 §7.4):
  necoma has no scrubbing VRF to send traffic to, and a rule it cannot read back
  exactly is a rule it cannot reconcile.
RTBH routes carry BLACKHOLE (65535:666), NO_EXPORT unless turned off, and the point's
configured communities (standard a:b or large a:b:c, e.g. an IXP's blackhole community).
Each announcement carries one large community per action id (RFC 8092,
LOCAL_AS:hi32:lo32 of the id's 64 hex bits), so the speaker's own RIB says which
actions it holds and a restarted necoma can reconcile.
"""
from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field

from necoma.protect.model import Action, DriverError, PortRange

# component types (RFC 8955 §4.2.2)
DST, SRC, PROTO, PORT, DPORT, SPORT, TCPFLAGS, PKTLEN, FRAG = 1, 2, 3, 4, 5, 6, 9, 10, 12
COMPONENT_NAMES = {DST: "destination", SRC: "source", PROTO: "protocol", PORT: "port", DPORT: "destination-port",
                   SPORT: "source-port", TCPFLAGS: "tcp-flags", PKTLEN: "packet-length", FRAG: "fragment"}
BITMASK_TYPES = {TCPFLAGS, FRAG}

# operator bits that carry meaning (end-of-list and length bits are wire details)
AND = 0x40
LT, GT, EQ = 0x04, 0x02, 0x01  # numeric operators (RFC 8955 §4.2.1.1)
NOT, MATCH = 0x02, 0x01  # bitmask operators (RFC 8955 §4.2.1.2)
NUMERIC_MASK, BITMASK_MASK = AND | LT | GT | EQ, AND | NOT | MATCH

TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}
FRAGMENT_BITS = {"dont-fragment": 0x01, "is-fragment": 0x02, "first-fragment": 0x04, "last-fragment": 0x08}

MAX_RATE_BPS = 8e12  # ExaBGP caps traffic-rate at 1e12 bytes/s; more is no limit at all
BLACKHOLE = "65535:666"  # RFC 7999 BLACKHOLE community
NO_EXPORT = "65535:65281"  # RFC 1997; RFC 7999 §3.2 recommends it on blackhole routes
FLOWSPEC_KINDS = frozenset({"drop", "rate_limit"})
BGP_KINDS = FLOWSPEC_KINDS | {"blackhole"}
ACTION_ID = re.compile(r"^act-([0-9a-f]{16})$")


@dataclass(frozen=True)
class Term:
    """One operator/value pair of a numeric or bitmask component."""

    op: int  # meaningful operator bits only (AND, lt/gt/eq or not/match)
    value: int


@dataclass(frozen=True)
class FlowRule:
    """One FlowSpec NLRI with its traffic action."""

    family: int  # 4 or 6
    prefixes: tuple[tuple[int, str], ...]  # (DST|SRC, CIDR)
    terms: tuple[tuple[int, tuple[Term, ...]], ...]  # (component type, terms), ascending types
    rate_bytes: float  # traffic-rate-bytes; 0 = discard

    def key(self) -> str:
        """Identity of the NLRI (the part BGP replaces on re-announce)."""
        parts = [f"{COMPONENT_NAMES[t]}:{p}" for t, p in self.prefixes]
        parts += [f"{COMPONENT_NAMES[t]}:" + ",".join(f"{x.op}/{x.value}" for x in ts) for t, ts in self.terms]
        return f"flow{self.family} " + " ".join(parts)

    def then(self) -> str:
        return "discard" if self.rate_bytes == 0 else f"rate-limit {self.rate_bytes:g}"


@dataclass(frozen=True)
class RtbhRoute:
    """A unicast host route toward the victim tagged BLACKHOLE (RFC 7999)."""

    family: int
    prefix: str
    next_hop: str
    communities: tuple[str, ...] = (BLACKHOLE, NO_EXPORT)  # in `community_order`; large ones have two colons

    def key(self) -> str:
        return f"unicast{self.family} {self.prefix}"

    def then(self) -> str:
        return f"next-hop {self.next_hop} community {' '.join(self.communities)}"


Announcement = FlowRule | RtbhRoute


def community_order(text: str) -> tuple[int, ...]:
    """Sort key of a community 'a:b' or large community 'a:b:c' (numeric, so the order is stable)."""
    return tuple(int(x) for x in text.split(":"))


def is_large(community: str) -> bool:
    return community.count(":") == 2


def parse_community(text: str) -> str:
    """'a:b' (RFC 1997, 16-bit halves) or 'a:b:c' (RFC 8092, 32-bit parts), checked; DriverError otherwise."""
    parts = str(text).strip().split(":")
    limit = 0xFFFF if len(parts) == 2 else 0xFFFFFFFF
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(parts) not in (2, 3) or len(nums) != len(parts) or not all(0 <= n <= limit for n in nums):
        raise DriverError(f"community {text!r}: write a:b (two 16-bit numbers) or a:b:c (three 32-bit numbers)")
    return ":".join(map(str, nums))


@dataclass
class BgpOptions:
    """The options of a BGP enforcement point that shape what is announced."""

    local_as: int
    blackhole_next_hop_v4: str = "192.0.2.1"  # RFC 5737 TEST-NET-1: the peer discards it (RFC 7999 §3.3)
    blackhole_next_hop_v6: str = "100::1"  # RFC 6666 discard-only prefix
    max_rtbh_prefix_v4: int = 24  # RTBH for anything shorter is refused: it would blackhole a whole network
    max_rtbh_prefix_v6: int = 48
    blackhole_communities: tuple[str, ...] = ()  # added to BLACKHOLE, e.g. what the ISP or IXP asks for
    blackhole_no_export: bool = True  # RFC 7999 §3.2: keep the blackhole inside the receiving AS
    extra: dict = field(default_factory=dict)

    def rtbh_communities(self) -> tuple[str, ...]:
        base = {BLACKHOLE, *([NO_EXPORT] if self.blackhole_no_export else []), *self.blackhole_communities}
        return tuple(sorted(base, key=community_order))


def float32(x: float) -> float:
    """The value as the 4-byte IEEE float the traffic-rate community carries."""
    return struct.unpack("!f", struct.pack("!f", x))[0]


def id_tag(local_as: int, action_id: str) -> tuple[int, int, int]:
    """The large community that marks an announcement as belonging to `action_id`."""
    m = ACTION_ID.match(action_id)
    if not m:
        raise DriverError(f"action id {action_id!r} is not of the form act-<16 hex digits> (Action.with_id); "
                          "the BGP drivers carry it in a large community and cannot tag other ids")
    n = int(m.group(1), 16)
    return (local_as, n >> 32, n & 0xFFFFFFFF)


def tag_id(tag: tuple[int, int, int]) -> str:
    return f"act-{(tag[1] << 32 | tag[2]):016x}"


def _ports(ranges: tuple[PortRange, ...]) -> tuple[Term, ...]:
    terms: list[Term] = []
    for r in ranges:  # ranges OR'ed; lo and hi of one range AND'ed
        if r.lo == r.hi:
            terms.append(Term(EQ, r.lo))
        else:
            terms += [Term(GT | EQ, r.lo), Term(AND | LT | EQ, r.hi)]
    return tuple(terms)


def _length(lo: int, hi: int) -> tuple[Term, ...]:
    if lo == hi:
        return (Term(EQ, lo),)
    if hi == 65535:
        return (Term(GT | EQ, lo),)
    if lo == 0:
        return (Term(LT | EQ, hi),)
    return (Term(GT | EQ, lo), Term(AND | LT | EQ, hi))


def tcp_flag_terms(text: str) -> tuple[Term, ...]:
    """'S/SA' (set/mask, as nfdump writes it): SYN set and ACK clear; 'S' alone: SYN set."""
    flags, _, mask = text.strip().upper().partition("/")
    bad = set(flags + mask) - set(TCP_FLAG_BITS)
    if bad or not (flags or mask):
        raise DriverError(f"tcp_flags {text!r}: use letters {''.join(TCP_FLAG_BITS)} as SET or SET/MASK, e.g. S/SA")
    set_bits = sum(TCP_FLAG_BITS[c] for c in set(flags))
    clear_bits = sum(TCP_FLAG_BITS[c] for c in set(mask)) & ~set_bits
    terms = []
    if set_bits:  # match bit: (data & value) == value
        terms.append(Term(MATCH, set_bits))
    if clear_bits:  # not bit without match: (data & value) == 0
        terms.append(Term((AND if terms else 0) | NOT, clear_bits))
    return tuple(terms)


def fragment_terms(fragment: str) -> tuple[Term, ...]:
    if fragment == "not-a-fragment":
        return (Term(NOT, FRAGMENT_BITS["is-fragment"]),)
    return (Term(MATCH, FRAGMENT_BITS[fragment]),)


def _prefix_pairs(action: Action) -> list[tuple[int, str | None, str | None]]:
    """(family, dst, src) combinations: one FlowSpec NLRI holds one prefix of each."""
    m = action.match
    dsts = [ipaddress.ip_network(p) for p in m.dst_prefixes] or [None]
    srcs = [ipaddress.ip_network(p) for p in m.src_prefixes] or [None]
    pairs = []
    for d in dsts:
        for s in srcs:
            if d is not None and s is not None and d.version != s.version:
                continue  # no rule can match an IPv4 source toward an IPv6 destination
            fam = (d or s).version if (d or s) else None
            pairs.append((fam, str(d) if d else None, str(s) if s else None))
    if not pairs:
        raise DriverError(f"action {action.id}: source and destination prefixes are of different IP versions")
    if any(fam is None for fam, _, _ in pairs):
        raise DriverError(f"action {action.id}: a FlowSpec rule needs a destination or source prefix "
                          "(a rule matching all addresses would filter the whole network)")
    return pairs


def flow_rules(action: Action) -> list[FlowRule]:
    m = action.match
    if m.domains:
        raise DriverError(f"action {action.id}: FlowSpec cannot match domain names {list(m.domains)}; use an RPZ point")
    if action.kind == "drop":
        rate = 0.0
    else:
        try:
            bps = float(action.params["rate_bps"])
        except (KeyError, TypeError, ValueError):
            raise DriverError(f"action {action.id}: rate_limit needs params.rate_bps as a number (bits per second)") from None
        if not 8 <= bps <= MAX_RATE_BPS:
            raise DriverError(f"action {action.id}: rate_bps {bps:g} must be between 8 (one byte per second) and "
                              f"{MAX_RATE_BPS:g}; 0 would discard: use a drop action")
        rate = float32(round(bps / 8))
    terms: list[tuple[int, tuple[Term, ...]]] = []
    if m.protocol is not None:
        terms.append((PROTO, (Term(EQ, m.protocol),)))
    if m.dst_ports:
        terms.append((DPORT, _ports(m.dst_ports)))
    if m.src_ports:
        terms.append((SPORT, _ports(m.src_ports)))
    if m.tcp_flags:
        if m.protocol not in (None, 6):
            raise DriverError(f"action {action.id}: tcp_flags with protocol {m.protocol} can never match")
        terms.append((TCPFLAGS, tcp_flag_terms(m.tcp_flags)))
    if m.packet_length is not None:
        terms.append((PKTLEN, _length(*m.packet_length)))
    if m.fragment is not None:
        terms.append((FRAG, fragment_terms(m.fragment)))
    rules = []
    for fam, dst, src in _prefix_pairs(action):
        if fam == 6 and m.fragment == "dont-fragment":
            raise DriverError(f"action {action.id}: IPv6 has no don't-fragment bit (RFC 8956 §3.6)")
        prefixes = tuple((t, p) for t, p in ((DST, dst), (SRC, src)) if p)
        rules.append(FlowRule(fam, prefixes, tuple(terms), rate))
    return rules


def rtbh_routes(action: Action, opts: BgpOptions) -> list[RtbhRoute]:
    m = action.match
    if not m.dst_prefixes:
        raise DriverError(f"action {action.id}: a blackhole needs destination prefixes (the victim)")
    narrowing = {"src_prefixes": m.src_prefixes, "protocol": m.protocol, "src_ports": m.src_ports,
                 "dst_ports": m.dst_ports, "packet_length": m.packet_length, "fragment": m.fragment,
                 "tcp_flags": m.tcp_flags, "domains": m.domains}
    set_fields = [k for k, v in narrowing.items() if v not in (None, ())]
    if set_fields:
        raise DriverError(f"action {action.id}: RTBH drops everything toward the prefix and cannot honour "
                          f"{', '.join(set_fields)}; use a drop (FlowSpec) action instead")
    routes = []
    for p in m.dst_prefixes:
        net = ipaddress.ip_network(p)
        limit = opts.max_rtbh_prefix_v4 if net.version == 4 else opts.max_rtbh_prefix_v6
        if net.prefixlen < limit:
            raise DriverError(f"action {action.id}: blackhole of {p} is wider than /{limit}, refused")
        nh = opts.blackhole_next_hop_v4 if net.version == 4 else opts.blackhole_next_hop_v6
        routes.append(RtbhRoute(net.version, str(net), nh, opts.rtbh_communities()))
    return routes


def announcements(action: Action, opts: BgpOptions) -> list[Announcement]:
    """What to announce for `action`; DriverError when BGP cannot express it."""
    if action.kind not in BGP_KINDS:
        raise DriverError(f"action {action.id}: kind {action.kind!r} is not enforced by BGP "
                          f"(this point takes {', '.join(sorted(BGP_KINDS))})")
    id_tag(opts.local_as, action.id)  # refuse untaggable ids before anything is sent
    return rtbh_routes(action, opts) if action.kind == "blackhole" else flow_rules(action)
