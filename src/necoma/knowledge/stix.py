"""An incident as STIX 2.1, through the `stix2` library.

What each part becomes:
- every subject → an SCO (ipv4-addr / ipv6-addr, a CIDR value for prefixes,
  domain-name, url); flows between bots and C&C, and amplifier → victim
  traffic → network-traffic SCOs;
- every alert → observed-data (its window, its subjects' SCOs) and a sighting
  of each indicator it supports, sighted by this organization;
- subjects worth blocking or watching (C&C, bots, DGA domains, URLs,
  amplifiers, scanners, attackers — never victims) → indicators with STIX
  patterns, valid from the incident's start for `ttl`;
- the incident → an `incident` SDO whose description carries the rating and
  its terms, infrastructure (botnet, amplification, phishing...) made of the
  SCOs, malware when the detector knows the family (zeus_dga → GameOver
  ZeuS), relationships, and a report that lists everything;
- every object → the TLP 2.0 marking asked for and `created_by_ref` the
  organization's identity.

Ids of SDOs are derived from the organization, the incident and the part, so
exporting an incident again gives the same ids (a new version in TAXII), never
duplicates, and two organizations reporting the same incident never claim
each other's ids. SCO ids are STIX's own content-derived ids, the same for all.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import stix2

from necoma.knowledge.incident import Incident
from necoma.knowledge.lists import as_network
from necoma.knowledge.markings import TLP2_IDS, Level, identity_id, marking_definition, stable_uuid4

# Roles whose subjects become indicators, with the STIX indicator type.
INDICATOR_ROLES = {
    "cnc": "malicious-activity", "domain": "malicious-activity", "url": "malicious-activity",
    "attacker": "malicious-activity", "scanner": "malicious-activity", "bot": "compromised",
    "amplifier": "anomalous-activity",
}
INFRASTRUCTURE_TYPE = {
    "bots": "botnet", "cnc": "command-and-control", "amplifier": "amplification", "phish": "phishing",
    "malurl": "hosting-malware", "scanning": "reconnaissance",
}
KNOWN_MALWARE: dict[str, dict[str, Any]] = {
    "zeus_dga": {
        "name": "GameOver ZeuS", "is_family": True, "malware_types": ["bot", "trojan", "spyware"],
        "aliases": ["GOZ", "newGOZ", "Peer-to-Peer ZeuS"],
        "description": "Banking trojan and botnet; newGOZ falls back to a daily domain generation algorithm.",
    },
}
_AMPLIFIER_PORTS = {"ntp_amplifier": 123, "dns_amplifier": 53}
_CONFIDENCE = {"low": 30, "medium": 60, "high": 85}


def _sid(kind: str, *parts: str) -> str:
    return f"{kind}--{stable_uuid4(kind, *parts)}"


def _sco(value: str, marking: str) -> stix2.base._Observable:
    net = as_network(value)
    if net is not None:
        v = str(net.network_address) if net.num_addresses == 1 else str(net)
        cls = stix2.v21.IPv4Address if net.version == 4 else stix2.v21.IPv6Address
        return cls(value=v, object_marking_refs=[marking])
    if "://" in value:
        return stix2.v21.URL(value=value, object_marking_refs=[marking])
    return stix2.v21.DomainName(value=value.lower().rstrip("."), object_marking_refs=[marking])


def _pattern(sco) -> str:
    value = sco.value.replace("\\", "\\\\").replace("'", "\\'")
    if sco.type in ("ipv4-addr", "ipv6-addr") and "/" in value:
        return f"[{sco.type}:value ISSUBSET '{value}']"
    return f"[{sco.type}:value = '{value}']"


def incident_objects(incident: Incident, org_name: str, level: Level = "amber", now: datetime | None = None,
                     ttl: timedelta = timedelta(days=7)) -> list[Any]:
    """The STIX objects (stix2 instances) of one incident, created by `org_name`, marked `level`."""
    now = now or datetime.now(timezone.utc)
    created = min(now, incident.window_end)
    marking = TLP2_IDS[level]
    me = identity_id(org_name)
    common = {"created_by_ref": me, "object_marking_refs": [marking], "created": created, "modified": now}
    inc = f"{org_name}|{incident.id}"  # the part every SDO id is derived from
    objs: list[Any] = [
        stix2.v21.MarkingDefinition(**marking_definition(level)),
        stix2.v21.Identity(id=me, name=org_name, identity_class="organization", created=created, modified=now,
                           description=f"Organization {org_name}, sharing through necoma",
                           object_marking_refs=[marking]),
    ]
    scos = {s.value: _sco(s.value, marking) for s in incident.subjects}
    objs += list({o.id: o for o in scos.values()}.values())
    extra = _traffic(incident, scos, marking)
    objs += extra

    indicators = {}
    for s in incident.subjects:
        kind = INDICATOR_ROLES.get(s.role)
        if kind is None or s.value in indicators:
            continue
        sco = scos[s.value]
        indicators[s.value] = stix2.v21.Indicator(
            id=_sid("indicator", inc, s.value), name=f"{s.role} {s.value}",
            description=f"{s.role} in necoma incident {incident.id} ({incident.category})",
            indicator_types=[kind], pattern=_pattern(sco), pattern_type="stix",
            valid_from=incident.window_start, valid_until=incident.window_end + ttl,
            confidence=incident.rating, labels=[incident.category], **common)
    objs += indicators.values()

    infra = stix2.v21.Infrastructure(
        id=_sid("infrastructure", inc), name=incident.title,
        description=f"Infrastructure of necoma incident {incident.id}",
        infrastructure_types=[INFRASTRUCTURE_TYPE.get(incident.category, "unknown")],
        first_seen=incident.window_start, last_seen=incident.window_end, **common)
    objs.append(infra)
    rels = [_rel(inc, infra.id, "consists-of", sco_id, common) for sco_id in sorted({o.id for o in scos.values()})]

    malware = [stix2.v21.Malware(id=_sid("malware", org_name, KNOWN_MALWARE[d]["name"]), **KNOWN_MALWARE[d], **common)
               for d in incident.detectors if d in KNOWN_MALWARE]
    objs += malware
    for m in malware:
        rels.append(_rel(inc, infra.id, "controls", m.id, common))
    target = malware[0].id if malware else infra.id
    rels += [_rel(inc, ind.id, "indicates", target, common) for ind in indicators.values()]

    for alert in incident.alerts:
        refs = sorted({scos[s.value].id for s in alert.subjects})
        observed = stix2.v21.ObservedData(
            id=_sid("observed-data", inc, alert.id), first_observed=alert.window_start,
            last_observed=alert.window_end, number_observed=max(1, int(alert.metrics.get("flows", 1) or 1)),
            object_refs=refs, **common)
        objs.append(observed)
        for s in alert.subjects:
            if s.value in indicators:
                objs.append(stix2.v21.Sighting(
                    id=_sid("sighting", inc, alert.id, s.value), sighting_of_ref=indicators[s.value].id,
                    observed_data_refs=[observed.id], where_sighted_refs=[me], first_seen=alert.window_start,
                    last_seen=alert.window_end, count=1,
                    description=f"{alert.detector}: {alert.summary or s.role}", **common))
    objs += rels

    stix_incident = stix2.v21.Incident(
        id=_sid("incident", inc), name=incident.title, description=_describe(incident),
        confidence=_CONFIDENCE[incident.confidence], labels=[incident.category, incident.severity], **common)
    objs.append(stix_incident)
    objs.append(stix2.v21.Report(
        id=_sid("report", inc), name=f"necoma incident {incident.id}: {incident.title}", description=_describe(incident),
        report_types=["threat-report"], published=now,
        object_refs=[o.id for o in objs if o.type not in ("marking-definition",)], **common))
    return objs


def _rel(inc: str, source: str, kind: str, target: str, common: dict) -> stix2.v21.Relationship:
    return stix2.v21.Relationship(id=_sid("relationship", inc, source, kind, target), source_ref=source,
                                  relationship_type=kind, target_ref=target,
                                  description=f"{kind} ({inc.replace('|', ' incident ')})", **common)


def _traffic(incident: Incident, scos: dict[str, Any], marking: str) -> list[Any]:
    """network-traffic SCOs: bot → C&C, amplifier → victim (UDP from the service port)."""
    out = []
    for alert in incident.alerts:
        pairs = [(b, c, ["ipv4", "tcp"], None) for b in alert.subjects_with("bot") for c in alert.subjects_with("cnc")]
        port = _AMPLIFIER_PORTS.get(alert.detector)
        pairs += [(a, v, ["ipv4", "udp"], port) for a in alert.subjects_with("amplifier")
                  for v in alert.subjects_with("victim")]
        for src, dst, protocols, sport in pairs:
            if as_network(src) is None or as_network(dst) is None:
                continue
            kw = {"src_port": sport} if sport else {}
            if as_network(src).version == 6:
                protocols = ["ipv6", protocols[1]]
            out.append(stix2.v21.NetworkTraffic(src_ref=scos[src].id, dst_ref=scos[dst].id, protocols=protocols,
                                                start=alert.window_start, end=alert.window_end, is_active=False,
                                                object_marking_refs=[marking], **kw))
    return list({o.id: o for o in out}.values())


def _describe(incident: Incident) -> str:
    return (f"{incident.category} (n6: {incident.n6_category}); detectors: {', '.join(incident.detectors)}; "
            f"layers: {', '.join(incident.layers)}; {len(incident.alerts)} alert(s).\n{incident.explain()}")


def to_bundle(incident: Incident, org_name: str, level: Level = "amber", now: datetime | None = None) -> dict[str, Any]:
    """The incident's STIX bundle as a JSON-ready dict."""
    objs = incident_objects(incident, org_name, level, now)
    bundle = stix2.v21.Bundle(objects=objs, id=_sid("bundle", org_name, incident.id, objs[-1].modified.isoformat()))
    return json.loads(bundle.serialize())
