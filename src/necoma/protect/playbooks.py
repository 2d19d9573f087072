"""Playbooks: what an operator does about each kind of incident, as data.

A playbook triggers on an incident's detectors (or categories) and has steps;
each step makes one or more proposed `Action`s from the incident's subjects
(only those named by the triggering detectors' alerts, so a heavy-hitter
alert glued to a DGA incident does not widen the DGA response). The built-in
playbooks below are the documented defaults (docs/protect.md);
`[protect.playbooks.NAME]` in necoma.toml replaces one by name, adds new
ones, or turns one off with `enabled = false`.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from necoma.analyze.alert import Subject
from necoma.knowledge.incident import Incident
from necoma.knowledge.lists import as_network, host_of
from necoma.protect.model import Action, Kind, Match, PortRange


class Step(BaseModel):
    """One countermeasure of a playbook."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    point: str | None = None  # enforcement point; default [protect.routes] for the kind, or the only point
    per: str = "incident"  # "incident": one action; a role: one action per subject (group) of that role
    group: Literal["host", "network"] = "host"  # network: `per` subjects grouped by AS (when enriched), else /24 or /48
    scope: Literal["any", "inside", "outside"] = "any"  # keep `per` subjects inside/outside own_prefixes
    dst: str | None = None  # role(s), comma-separated, whose addresses become dst_prefixes; "each" = the per group
    src: str | None = None  # same for src_prefixes
    domains: str | None = None  # role(s) whose names (URL hosts) become domains
    protocol: int | None = None
    src_ports: list[str] = Field(default_factory=list)
    dst_ports: list[str] = Field(default_factory=list)
    src_port_metric: str | None = None  # take source ports from this alert metric (reflection: "port")
    packet_length: tuple[int, int] | None = None
    fragment: str | None = None
    tcp_flags: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_seconds: int | None = Field(None, gt=0)
    reason: str  # what a person reads; {subjects} is replaced by the step's subjects


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str
    detectors: list[str] = Field(default_factory=list)  # triggers when the incident has an alert of one of these
    categories: list[str] = Field(default_factory=list)  # ... or has one of these categories
    min_rating: int = Field(0, ge=0, le=100)
    enabled: bool = True
    steps: list[Step]


_FLOOD = dict(per="victim", dst="each", protocol=17)
DEFAULT_PLAYBOOKS: dict[str, dict[str, Any]] = {
    "ntp_amplification": {
        "description": "NTP monlist reflection: discard large NTP responses toward the victim; report each amplifier's network.",
        "detectors": ["ntp_amplifier"],
        "steps": [
            {**_FLOOD, "kind": "drop", "src_ports": ["123"], "packet_length": (201, 65535),
             "reason": "discard UDP from port 123 longer than 200 bytes toward {subjects} (monlist responses; ordinary NTP is 76-90 bytes)"},
            {"kind": "report_abuse", "per": "amplifier", "group": "network", "scope": "outside", "src": "each",
             "params": {"role": "amplifier"}, "ttl_seconds": 86400, "reason": "abuse report: NTP amplifiers {subjects}"},
            {"kind": "advise", "per": "amplifier", "scope": "inside", "dst": "each", "params": {"advice_topic": "ntp"},
             "ttl_seconds": 86400, "reason": "our own NTP servers {subjects} answer monlist: disable mode 7 (restrict noquery)"},
        ],
    },
    "dns_amplification": {
        "description": "DNS reflection: discard DNS responses over 512 bytes and UDP fragments toward the victim; report the resolvers' networks.",
        "detectors": ["dns_amplifier"],
        "steps": [
            {**_FLOOD, "kind": "drop", "src_ports": ["53"], "packet_length": (513, 65535),
             "reason": "discard UDP from port 53 longer than 512 bytes toward {subjects}"},
            {**_FLOOD, "kind": "drop", "fragment": "is-fragment",
             "reason": "discard UDP fragments toward {subjects} (the tails of large DNS responses)"},
            {"kind": "report_abuse", "per": "amplifier", "group": "network", "scope": "outside", "src": "each",
             "params": {"role": "amplifier"}, "ttl_seconds": 86400, "reason": "abuse report: open resolvers {subjects}"},
            {"kind": "advise", "per": "amplifier", "scope": "inside", "dst": "each", "params": {"advice_topic": "dns"},
             "ttl_seconds": 86400, "reason": "our own resolvers {subjects} answer spoofed queries: close recursion, rate-limit responses"},
        ],
    },
    "udp_reflection": {
        "description": "Reflection through SNMP, SSDP, memcached, CLDAP, chargen, ...: discard that service's UDP toward the victim; report the reflectors.",
        "detectors": ["reflection"],
        "steps": [
            {**_FLOOD, "kind": "drop", "src_port_metric": "port",
             "reason": "discard UDP from the reflected service port toward {subjects}"},
            {"kind": "report_abuse", "per": "amplifier", "group": "network", "scope": "outside", "src": "each",
             "params": {"role": "amplifier"}, "ttl_seconds": 86400, "reason": "abuse report: reflectors {subjects}"},
        ],
    },
    "udp_fragmentation": {
        "description": "Fragment flood: police UDP fragments toward the victim (some fragments are legitimate, so rate-limit, not drop).",
        "detectors": ["udp_fragmentation"],
        "steps": [
            {**_FLOOD, "kind": "rate_limit", "fragment": "is-fragment", "params": {"rate_bps": 10_000_000},
             "reason": "rate-limit UDP fragments toward {subjects} to 10 Mbit/s"},
        ],
    },
    "dga_botnet": {
        "description": "DGA botnet: RPZ block of its domains, drop traffic to the C&C, isolate the bots (a person decides), tell their owners.",
        "detectors": ["zeus_dga"],
        "steps": [
            {"kind": "block_domain", "domains": "domain", "params": {"rpz_action": "nxdomain"}, "ttl_seconds": 86400,
             "reason": "RPZ NXDOMAIN for the botnet's DGA names {subjects}"},
            {"kind": "drop", "per": "cnc", "dst": "each", "reason": "drop traffic to the C&C server {subjects}"},
            {"kind": "isolate", "per": "bot", "scope": "inside", "src": "each", "ttl_seconds": 14400,
             "params": {"allow": []}, "reason": "isolate the infected host {subjects} until it is cleaned"},
            {"kind": "notify", "per": "bot", "scope": "inside", "dst": "each", "ttl_seconds": 86400,
             "reason": "tell the owner of {subjects} that the host is infected"},
        ],
    },
    "dns_failure_cluster": {
        "description": "Hosts failing DNS lookups on the same names (spam bots, dead C&C, DGA): tell the owners; block the names pre-emptively.",
        "detectors": ["dns_failure_graph"],
        "steps": [
            {"kind": "notify", "per": "bot", "scope": "inside", "dst": "each", "ttl_seconds": 86400,
             "reason": "host {subjects} fails lookups like malware does: please check it"},
            {"kind": "block_domain", "domains": "domain", "params": {"rpz_action": "nxdomain"}, "ttl_seconds": 86400,
             "reason": "RPZ NXDOMAIN for the failing names {subjects} (should one get registered)"},
        ],
    },
    "ssl_scan": {
        "description": "TLS scanner: drop it at the edge; report it to its network.",
        "detectors": ["ssl_scan"],
        "steps": [
            {"kind": "drop", "per": "scanner", "scope": "outside", "src": "each", "reason": "drop the scanner {subjects} at the edge"},
            {"kind": "report_abuse", "per": "scanner", "group": "network", "scope": "outside", "src": "each",
             "params": {"role": "scanner"}, "ttl_seconds": 86400, "reason": "abuse report: TLS scanner {subjects}"},
        ],
    },
    "phishing": {
        "description": "Phishing site: RPZ block of its host names, a notice to users, an abuse report to the hoster.",
        "categories": ["phish"],
        "steps": [
            {"kind": "block_domain", "domains": "url,domain", "params": {"rpz_action": "nxdomain"}, "ttl_seconds": 86400,
             "reason": "RPZ NXDOMAIN for the phishing hosts {subjects}"},
            {"kind": "notify", "domains": "url,domain", "ttl_seconds": 86400, "reason": "warn users about the phishing site {subjects}"},
            {"kind": "report_abuse", "domains": "url,domain", "ttl_seconds": 86400, "params": {"role": "url"},
             "reason": "abuse report to the hoster of {subjects}"},
        ],
    },
    "traffic_anomaly": {
        "description": "Heavy hitter, cause unknown: tell the operators; no automatic blocking on volume alone.",
        "detectors": ["heavy_hitter"],
        "steps": [
            {"kind": "notify", "dst": "source,destination,host", "ttl_seconds": 86400,
             "reason": "unusual traffic volume from/to {subjects}: please look"},
        ],
    },
}


class PlaybookError(Exception):
    """A playbook in the configuration is invalid; the message says which and why."""


def load_playbooks(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Playbook]:
    """The built-in playbooks, each replaced or extended by [protect.playbooks.NAME]."""
    merged = {**DEFAULT_PLAYBOOKS}
    for name, body in (overrides or {}).items():
        merged[name] = {**DEFAULT_PLAYBOOKS.get(name, {}), **body}
    out = {}
    for name, body in merged.items():
        try:
            out[name] = Playbook.model_validate(body)
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PlaybookError(f"playbook {name!r} is invalid: {errs}") from None
    return {n: p for n, p in out.items() if p.enabled}


def _host_prefix(value: str) -> str | None:
    net = as_network(host_of(value))
    return None if net is None else str(net)


def _network_key(s: Subject) -> str:
    if s.asn:
        return f"AS{s.asn}"
    net = as_network(s.value)
    if net is None:
        return s.value
    return str(ipaddress.ip_network(f"{net.network_address}/{24 if net.version == 4 else 48}", strict=False))


def _inside(value: str, own: list) -> bool:
    net = as_network(host_of(value))
    return net is not None and any(n.version == net.version and net.subnet_of(n) for n in own)


def _roles(spec: str | None) -> list[str]:
    return [r.strip() for r in (spec or "").split(",") if r.strip()]


def triggers(pb: Playbook, incident: Incident) -> bool:
    hit = bool(set(pb.detectors) & set(incident.detectors)) or incident.category in pb.categories
    return hit and incident.rating >= pb.min_rating


def propose(name: str, pb: Playbook, incident: Incident, *, route, own_prefixes: list[str],
            default_ttl: int) -> list[Action]:
    """The actions one playbook proposes for one incident (ids filled, state proposed)."""
    alerts = [a for a in incident.alerts if a.detector in pb.detectors] or incident.alerts
    subjects = sorted({(s.role, s.value): s for a in alerts for s in a.subjects}.values(), key=lambda s: (s.role, s.value))
    own = [ipaddress.ip_network(p, strict=False) for p in own_prefixes]
    actions: list[Action] = []
    for step in pb.steps:
        groups: dict[str, list[Subject]] = {"": []}
        if step.per != "incident":
            picked = [s for s in subjects if s.role == step.per]
            if step.scope != "any":
                picked = [s for s in picked if _inside(s.value, own) == (step.scope == "inside")]
            groups = defaultdict(list)
            for s in picked:
                groups[_network_key(s) if step.group == "network" else s.value].append(s)
            if not groups:
                continue
        for key, members in groups.items():
            def values(spec: str | None) -> list[str]:
                if spec == "each":
                    return [s.value for s in members]
                roles = _roles(spec)
                return [s.value for s in subjects if s.role in roles]

            dst = sorted({p for v in values(step.dst) if (p := _host_prefix(v))})
            src = sorted({p for v in values(step.src) if (p := _host_prefix(v))})
            domains = sorted({host_of(v) for v in values(step.domains) if as_network(host_of(v)) is None})
            ports = [PortRange.parse(p) for p in step.src_ports]
            if step.src_port_metric:
                ports += [PortRange.parse(int(a.metrics[step.src_port_metric])) for a in alerts if step.src_port_metric in a.metrics]
            named = members or [s for s in subjects if s.value in {*values(step.dst), *values(step.src), *values(step.domains)}]
            shown = ", ".join(s.value for s in named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
            if step.kind in ("drop", "rate_limit", "blackhole", "isolate") and not (dst or src):
                continue  # nothing to aim at in this incident (e.g. only prefixes of another family)
            if step.kind == "block_domain" and not domains:
                continue
            match = Match(dst_prefixes=tuple(dst), src_prefixes=tuple(src), protocol=step.protocol,
                          src_ports=tuple(sorted(set(ports), key=lambda r: (r.lo, r.hi))),
                          dst_ports=tuple(PortRange.parse(p) for p in step.dst_ports),
                          packet_length=step.packet_length, fragment=step.fragment, tcp_flags=step.tcp_flags,
                          domains=tuple(domains))
            params = dict(step.params)
            if step.group == "network" and key:
                params["network"] = key
            actions.append(Action(
                kind=step.kind, point=route(step), match=match, params=params, incident_id=incident.id,
                rating=incident.rating, reason=step.reason.replace("{subjects}", shown or incident.title),
                playbook=name, ttl_seconds=step.ttl_seconds or default_ttl,
            ).with_id())
    return actions
