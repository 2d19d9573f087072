"""Safety checks every action passes before it is applied, whoever decided it.

Hard rules (configuration can tune their limits but not turn them off):
- nothing that blocks traffic may touch the allow list or own infrastructure
  (IPv4 and IPv6; any overlap counts, so a /16 containing our resolver is refused);
- a blocking rule names what it blocks: no "match everything";
- prefixes wider than max_prefix_v4/_v6, any blackhole and any isolation
  need a person: decided_by "policy:..." is refused;
- a blackhole wider than max_prefix_v4/_v6 is refused even for a person
  (it drops all traffic to the prefix: a filter is the tool for wide ones);
- at most max_rules_per_point applied at one point;
- every action has a TTL no longer than max_ttl_seconds.
"""
from __future__ import annotations

import ipaddress

from necoma.config import ProtectSettings
from necoma.knowledge.lists import as_network, host_of
from necoma.protect.model import Action

BLOCKING = frozenset({"drop", "rate_limit", "blackhole", "isolate", "block_domain"})
NEEDS_PERSON = frozenset({"blackhole", "isolate"})


def by_person(action: Action) -> bool:
    return bool(action.decided_by) and not action.decided_by.startswith("policy:")


def _protected(cfg: ProtectSettings) -> tuple[list, set[str]]:
    nets, names = [], set()
    for entry in [*cfg.allow_list, *cfg.infrastructure]:
        net = as_network(entry)
        if net is not None:
            nets.append(net)
        elif entry.strip():
            names.add(host_of(entry))
    return nets, names


def widest(action: Action) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The shortest prefix the action names, per its family."""
    nets = [ipaddress.ip_network(p) for p in (*action.match.dst_prefixes, *action.match.src_prefixes)]
    return min(nets, key=lambda n: n.prefixlen, default=None)


def too_wide(action: Action, cfg: ProtectSettings) -> list[str]:
    out = []
    for p in (*action.match.dst_prefixes, *action.match.src_prefixes):
        net = ipaddress.ip_network(p)
        limit = cfg.max_prefix_v4 if net.version == 4 else cfg.max_prefix_v6
        if net.prefixlen < limit:
            out.append(f"{net} is wider than /{limit}")
    return out


def problems(action: Action, cfg: ProtectSettings, applied_at_point: int = 0) -> list[str]:
    """Why this action must not be applied now; empty when it is safe."""
    found: list[str] = []
    m = action.match
    if action.kind in BLOCKING:
        nets, names = _protected(cfg)
        for p in (*m.dst_prefixes, *m.src_prefixes):
            net = ipaddress.ip_network(p)
            hit = [str(n) for n in nets if n.version == net.version and n.overlaps(net)]
            if hit:
                found.append(f"{net} overlaps the allow list / own infrastructure ({', '.join(hit)})")
        for d in m.domains:
            labels = d.split(".")
            suffixes = {".".join(labels[i:]) for i in range(len(labels))}
            hit = sorted(names & suffixes) + sorted(n for n in names if n.endswith("." + d))
            if hit:
                found.append(f"domain {d} is on the allow list ({', '.join(hit)})")
        if action.kind == "block_domain" and not m.domains:
            found.append("a domain block without domains would match every name")
        if action.kind != "block_domain" and not (m.dst_prefixes or m.src_prefixes):
            found.append("the rule names no prefix: it would match all traffic")
        if not by_person(action):
            wide = too_wide(action, cfg)
            if wide:
                found.append("needs a person: " + "; ".join(wide))
    if action.kind == "blackhole":
        wide = too_wide(action, cfg)
        if wide:
            found.append("a blackhole drops every packet toward its prefix, the victim network's good traffic too: "
                         "never wider than max_prefix_v4/v6, not even for a person (" + "; ".join(wide) + ")")
    if action.kind in NEEDS_PERSON and not by_person(action):
        found.append(f"needs a person: any {action.kind} is decided by a person, not by {action.decided_by or 'nobody'}")
    if action.ttl_seconds > cfg.max_ttl_seconds:
        found.append(f"TTL {action.ttl_seconds}s is longer than the maximum {cfg.max_ttl_seconds}s")
    if applied_at_point + 1 > cfg.max_rules_per_point:
        found.append(f"point {action.point} already has {applied_at_point} rules applied (maximum {cfg.max_rules_per_point})")
    return found
