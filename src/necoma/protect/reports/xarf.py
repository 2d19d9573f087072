"""X-ARF v4 JSON reports, one per reported address, validated against the official schema.

The schema files under `xarf_schema/` are the xarf project's own (see their
`$comment` for the origin); only the types necoma emits are vendored:
- amplifier (reflector) -> connection/ddos, attack_vector "<service>_amplification";
  without a known service port -> vulnerability/open_service;
- bot, C&C host         -> connection/infected_host, bot_type "malicious";
- scanner, attacker     -> connection/port_scan.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

from necoma.protect.reports.evidence import Evidence

VERSION = "4.1.0"  # the spec version the vendored schemas come from
_BASE = "https://xarf.org/schemas/v4/"
_PROTO = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
# Service of a UDP amplifier by its source port, for attack_vector / service.
_SERVICES = {123: "ntp", 53: "dns", 19: "chargen", 1900: "ssdp", 11211: "memcached", 161: "snmp", 389: "cldap"}
_DETECTOR_PORT = {"ntp_amplifier": 123, "dns_amplifier": 53}


class XarfError(ValueError):
    """A report that does not validate; the message names the first problem."""


@dataclass(frozen=True)
class Party:
    """Reporter/sender: X-ARF's contact_info."""

    org: str
    contact: str
    domain: str

    def as_dict(self) -> dict[str, str]:
        return {"org": self.org, "contact": self.contact, "domain": self.domain}


@cache
def _registry() -> Registry:
    root = resources.files("necoma.protect.reports") / "xarf_schema"
    res = [Resource.from_contents(json.loads((root / "xarf-core.json").read_text()))]
    for f in (root / "types").iterdir():
        if f.name.endswith(".json"):
            res.append(Resource.from_contents(json.loads(f.read_text())))
    return Registry().with_resources((r.contents["$id"], r) for r in res)


def schema_for(category: str, type_: str) -> str:
    uri = f"{_BASE}types/{category}-{type_.replace('_', '-')}.json"
    if uri not in _registry():
        raise XarfError(f"X-ARF type {category}/{type_} is not one necoma emits")
    return uri


def validate(report: dict[str, Any]) -> None:
    """Raise XarfError unless `report` is valid X-ARF v4 for its category/type (formats checked too)."""
    uri = schema_for(str(report.get("category")), str(report.get("type")))
    reg = _registry()
    v = jsonschema.Draft202012Validator(reg[uri].contents, registry=reg,
                                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    err = jsonschema.exceptions.best_match(v.iter_errors(report))
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "(report)"
        raise XarfError(f"X-ARF {report.get('category')}/{report.get('type')} invalid at {where}: {err.message}")


def _z(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _own_rows(ev: Evidence, address: str) -> list[dict[str, Any]]:
    return [r for r in ev.rows if address in (str(r.get("src_ip")), str(r.get("dst_ip")), str(r.get("client_ip")))]


def _common_port(rows: list[dict[str, Any]], address: str) -> int | None:
    ports = Counter(int(r["src_port"]) for r in rows if str(r.get("src_ip")) == address and r.get("src_port"))
    return ports.most_common(1)[0][0] if ports else None


def _protocol(rows: list[dict[str, Any]], default: str) -> str:
    protos = Counter(_PROTO.get(int(r["protocol"])) for r in rows if r.get("protocol") is not None)
    protos.pop(None, None)
    return protos.most_common(1)[0][0] if protos else default


def rows_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in cols} for r in rows)
    return buf.getvalue()


def build(ev: Evidence, address: str, role: str, reporter: Party, confidence: float | None = None) -> dict[str, Any]:
    """One X-ARF report about `address` (playing `role` in the incident); validated before it is returned."""
    rows = _own_rows(ev, address)
    report: dict[str, Any] = {
        "xarf_version": VERSION,
        "report_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"necoma:{ev.incident_id}:{address}")),
        "timestamp": _z(ev.window_start),
        "reporter": reporter.as_dict(),
        "sender": reporter.as_dict(),
        "source_identifier": address.split("/")[0] if address.endswith(("/32", "/128")) else address,
        "evidence_source": "flow_analysis",
        "description": f"{ev.title} (necoma incident {ev.incident_id}, {role}); "
                       f"{_z(ev.window_start)} to {_z(ev.window_end)}"[:1000],
        "tags": [f"necoma:{ev.category}".lower().replace(" ", "-")],
    }
    if confidence is not None:
        report["confidence"] = round(confidence, 3)
    if role == "amplifier":
        port = _common_port(rows, address) or next((_DETECTOR_PORT[d] for d in ev.detectors if d in _DETECTOR_PORT), None)
        victims = ev.values_with("victim")
        if port:
            report.update(category="connection", type="ddos", protocol=_protocol(rows, "udp"), source_port=port,
                          first_seen=_z(ev.window_start), last_seen=_z(ev.window_end),
                          attack_vector=f"{_SERVICES.get(port, 'udp')}_amplification")
            if len(victims) == 1 and "/" not in victims[0]:
                report["destination_ip"] = victims[0]
        else:
            report.update(category="vulnerability", type="open_service", service="udp reflector")
    elif role in ("bot", "cnc"):
        report.update(category="connection", type="infected_host", protocol=_protocol(rows, "udp" if ev.malware else "tcp"),
                      bot_type="malicious", first_seen=_z(ev.window_start), last_seen=_z(ev.window_end))
        if ev.malware:
            report["bot_name"] = ev.malware
            report["tags"].append("malware:" + ev.malware.lower().replace(" ", "-"))
    elif role in ("scanner", "attacker"):
        port = _common_port(rows, address)
        report.update(category="connection", type="port_scan", protocol=_protocol(rows, "tcp"),
                      first_seen=_z(ev.window_start), last_seen=_z(ev.window_end))
        if port:
            report["source_port"] = port
    else:
        raise XarfError(f"no X-ARF type for role {role!r} of {address}")
    if rows:
        payload = rows_csv(rows).encode()
        report["evidence"] = [{
            "content_type": "text/csv", "description": f"{len(rows)} lake rows naming {address}",
            "payload": base64.b64encode(payload).decode(), "hash": "sha256:" + hashlib.sha256(payload).hexdigest(),
            "size": len(payload)}]
    validate(report)
    return report
