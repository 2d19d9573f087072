"""Alert → incident correlation: alerts that share an entity in overlapping time are one incident.

Entities: an address; a prefix (CIDR) — which also matches every address
inside it, if it is at least `min_prefix_v4`/`min_prefix_v6` long, so a
broad prefix cannot glue unrelated alerts together; a domain name; a URL,
which is also its host. Roles do not matter for linking: the C&C address
that zeus_dga names is the destination that heavy_hitter names.

Time: two alerts overlap when their windows, each widened by `gap`, intersect
(detectors bin time differently: a daily DGA alert and an hourly flow alert
about the same bot belong together). Linking is transitive — the incident is
a connected component of the graph "shares an entity and overlaps in time" —
and computed with a per-entity sweep over windows sorted by start plus
union-find, so n alerts cost O(n log n) per entity, not O(n²).
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Sequence

from necoma.analyze.alert import Alert, Subject
from necoma.knowledge import rating, taxonomy
from necoma.knowledge.incident import Incident
from necoma.knowledge.lists import Lists, as_network, host_of


@dataclass(frozen=True)
class CorrelationParams:
    gap: timedelta = timedelta(hours=1)  # windows this close still overlap
    min_prefix_v4: int = 24  # shorter IPv4 prefixes link only by exact equality
    min_prefix_v6: int = 48


def entity_keys(subject: Subject, p: CorrelationParams) -> list[str]:
    """The keys under which a subject links alerts (ip:, net:, dns:, url:)."""
    value = subject.value.strip()
    keys = []
    if "://" in value:
        keys.append("url:" + value)
        value = host_of(value)
    net = as_network(value)
    if net is None:
        keys.append("dns:" + host_of(value))
    elif net.num_addresses == 1:
        keys.append(f"ip:{net.network_address}")
    else:
        keys.append(f"net:{net}")
    return keys


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _occurrences(alerts: Sequence[Alert], p: CorrelationParams) -> dict[str, set[int]]:
    occ: dict[str, set[int]] = defaultdict(set)
    for i, a in enumerate(alerts):
        for s in a.subjects:
            for k in entity_keys(s, p):
                occ[k].add(i)
    # Addresses inside a (long enough) prefix that some alert names also count as that prefix.
    nets = {}
    for k in occ:
        if k.startswith("net:"):
            net = ipaddress.ip_network(k[4:])
            if net.prefixlen >= (p.min_prefix_v4 if net.version == 4 else p.min_prefix_v6):
                nets[k] = net
    lengths = {(n.version, n.prefixlen) for n in nets.values()}
    for k in [k for k in occ if k.startswith("ip:")]:
        addr = ipaddress.ip_address(k[3:])
        for version, length in lengths:
            if version == addr.version:
                key = f"net:{ipaddress.ip_network(f'{addr}/{length}', strict=False)}"
                if key in nets:
                    occ[key] |= occ[k]
    return occ


def correlate(alerts: Iterable[Alert], params: CorrelationParams | None = None,
              lists: Lists | None = None) -> list[Incident]:
    """Group alerts into incidents, rated and categorized; sorted by start, then id."""
    p = params or CorrelationParams()
    alerts = sorted({a.id: a for a in alerts}.values(), key=lambda a: (a.window_start, a.id))
    uf = _UnionFind(len(alerts))
    for members in _occurrences(alerts, p).values():
        ordered = sorted(members, key=lambda i: alerts[i].window_start)
        head, reach = ordered[0], alerts[ordered[0]].window_end
        for i in ordered[1:]:
            if alerts[i].window_start <= reach + p.gap:
                uf.union(head, i)
                reach = max(reach, alerts[i].window_end)
            else:
                head, reach = i, alerts[i].window_end
    groups: dict[int, list[Alert]] = defaultdict(list)
    for i, a in enumerate(alerts):
        groups[uf.find(i)].append(a)
    incidents = [build(g, lists) for g in groups.values()]
    return sorted(incidents, key=lambda inc: (inc.window_start, inc.id))


def build(alerts: list[Alert], lists: Lists | None = None) -> Incident:
    """One incident from alerts already known to belong together."""
    lists = lists or Lists()
    infos = [taxonomy.detector_info(a.detector, [s.role for s in a.subjects]) for a in alerts]
    layers = sorted({i.layer for i in infos})
    category = taxonomy.pick(i.category for i in infos)
    subjects = sorted({(s.role, s.value): s for a in alerts for s in a.subjects}.values(), key=lambda s: (s.role, s.value))
    score, terms = rating.rate(alerts, layers, subjects, lists)
    allow_listed = any(t.name == "allow list" for t in terms)
    detectors = sorted({a.detector for a in alerts})
    key_subjects = [s.value for s in subjects if s.role in ("cnc", "victim", "amplifier", "scanner", "url", "bot")]
    title = f"{category}: " + (", ".join(key_subjects[:3]) or ", ".join(s.value for s in subjects[:3]))
    if len(key_subjects) > 3:
        title += f" and {len(key_subjects) - 3} more"
    return Incident(
        id=Incident.make_id([a.id for a in alerts]),
        title=title,
        category=category,
        n6_category=taxonomy.n6_category(category),
        window_start=min(a.window_start for a in alerts),
        window_end=max(a.window_end for a in alerts),
        detectors=detectors,
        layers=layers,
        subjects=subjects,
        alerts=sorted(alerts, key=lambda a: (a.window_start, a.id)),
        rating=score,
        rating_terms=terms,
        severity=rating.severity(score),
        confidence=rating.confidence(alerts, layers, allow_listed),
    )
