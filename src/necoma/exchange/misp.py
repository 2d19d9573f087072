"""MISP: incidents as MISP events and feeds; MISP feeds into the exchange as STIX indicators.

Export: an incident becomes one MISP event (JSON as MISP and PyMISP read it):
each subject an attribute (ip-src for the origin of bad traffic — bots,
scanners, amplifiers, attackers, sources —, ip-dst for C&C, victims,
destinations, domain, url), `to_ids` for what is worth blocking (never
victims), tags `tlp:<level>` and `necoma:category`/`necoma:n6-category`/
`necoma:rating`, the MISP distribution that matches the TLP, the threat level
from the severity. A feed directory is what MISP's "feeds" read: one
`<uuid>.json` per event, `manifest.json` and `hashes.csv`.

Import: a feed directory (untrusted: file names come from the manifest and
must be UUIDs) becomes STIX indicators for the ip-src/ip-dst/domain/hostname/
url attributes flagged `to_ids`, marked with the event's TLP (default AMBER),
created by an identity named after the event's creator organization, and
stored through the normal ingest path (validated, all or nothing per event).
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import stix2
from sqlalchemy.orm import Session, sessionmaker

from necoma.exchange import admin
from necoma.exchange.ingest import add_envelope
from necoma.knowledge.incident import Incident
from necoma.knowledge.markings import LEVELS, TLP2_IDS, Level, identity_id, marking_definition, stable_uuid4
from necoma.knowledge.stix import INDICATOR_ROLES, _pattern, _sco

_SOURCE_ROLES = {"bot", "scanner", "amplifier", "attacker", "source"}
_DISTRIBUTION = {"clear": "3", "green": "2", "amber": "1", "amber+strict": "0", "red": "0"}
_THREAT = {"high": "1", "medium": "2", "low": "3"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TLP_TAG = {"tlp:white": "clear", **{f"tlp:{lv}": lv for lv in LEVELS}}


def _attribute_type(role: str, value: str) -> str:
    if "://" in value:
        return "url"
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "domain"
    return "ip-src" if role in _SOURCE_ROLES else "ip-dst"


def incident_event(incident: Incident, org_name: str, level: Level = "amber", now: datetime | None = None) -> dict:
    """The MISP event (`{"Event": {...}}`) of an incident."""
    now = now or datetime.now(timezone.utc)
    stamp = str(int(now.timestamp()))
    uid = str(stable_uuid4("misp-event", org_name, incident.id))
    attributes = [{
        "uuid": str(stable_uuid4("misp-attribute", org_name, incident.id, s.role, s.value)),
        "type": _attribute_type(s.role, s.value), "category": "Network activity", "value": s.value,
        "to_ids": s.role in INDICATOR_ROLES, "comment": f"{s.role} ({', '.join(incident.detectors)})",
        "timestamp": stamp, "distribution": "5", "disable_correlation": False,
    } for s in incident.subjects]
    tags = [f"tlp:{level}", f'necoma:category="{incident.category}"', f'necoma:n6-category="{incident.n6_category}"',
            f'necoma:rating="{incident.rating}"']
    return {"Event": {
        "uuid": uid, "info": f"{incident.title} (necoma {incident.id}, rating {incident.rating}/100)",
        "date": incident.window_start.strftime("%Y-%m-%d"), "timestamp": stamp, "publish_timestamp": stamp,
        "published": True, "analysis": "2", "threat_level_id": _THREAT[incident.severity],
        "distribution": _DISTRIBUTION[level],
        "Orgc": {"name": org_name, "uuid": identity_id(org_name).split("--", 1)[1]},
        "Tag": [{"name": t} for t in tags], "Attribute": attributes,
    }}


def write_feed(directory: Path, events: list[dict]) -> None:
    """A MISP feed directory: <uuid>.json per event, manifest.json, hashes.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}
    hashes: list[str] = []
    for wrapped in events:
        e = wrapped["Event"]
        (directory / f"{e['uuid']}.json").write_text(json.dumps(wrapped, indent=1))
        manifest[e["uuid"]] = {k: e[k] for k in ("info", "Orgc", "Tag", "date", "analysis", "threat_level_id", "timestamp")}
        hashes += [f"{hashlib.md5(a['value'].encode()).hexdigest()},{e['uuid']}" for a in e["Attribute"]]
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (directory / "hashes.csv").write_text("\n".join(hashes) + ("\n" if hashes else ""))


def read_feed(directory: Path) -> list[dict]:
    manifest = json.loads((directory / "manifest.json").read_text())
    events = []
    for uid in manifest:
        if not _UUID.match(uid):
            raise ValueError(f"manifest entry {uid!r} is not a UUID")  # it names a file: refuse path tricks
        events.append(json.loads((directory / f"{uid}.json").read_text()))
    return events


def event_level(event: dict) -> Level:
    found = [_TLP_TAG[t["name"].lower()] for t in event.get("Tag", []) if t.get("name", "").lower() in _TLP_TAG]
    return max(found, key=LEVELS.index) if found else "amber"


def event_objects(wrapped: dict) -> tuple[list[dict], int]:
    """STIX objects for one MISP event, and the number of attributes skipped (unsupported or not to_ids)."""
    e = wrapped["Event"]
    level = event_level(e)
    marking = TLP2_IDS[level]
    org = (e.get("Orgc") or {}).get("name") or "unknown MISP organization"
    me = identity_id(org)
    # No identity object: its id is derived from the name and may belong to that organization here already.
    objs: list[dict] = [marking_definition(level)]
    skipped = 0
    when = datetime.fromtimestamp(int(e.get("timestamp") or 0), tz=timezone.utc)
    for a in e.get("Attribute", []):
        kind, value = a.get("type"), str(a.get("value", "")).strip()
        if not a.get("to_ids") or kind not in ("ip-src", "ip-dst", "domain", "hostname", "url") or not value:
            skipped += 1
            continue
        ind = stix2.v21.Indicator(
            id=f"indicator--{stable_uuid4('misp', e['uuid'], a.get('uuid') or value)}", created=when, modified=when,
            name=f"{kind} {value}", description=f"MISP event {e['uuid']}: {e.get('info', '')}",
            indicator_types=["malicious-activity"], pattern=_pattern(_sco(value, marking)), pattern_type="stix",
            valid_from=when, created_by_ref=me, object_marking_refs=[marking],
            labels=[t["name"] for t in e.get("Tag", []) if t.get("name")][:10] or None)
        objs.append(json.loads(ind.serialize()))
    return objs, skipped


def import_feed(sessions: sessionmaker[Session], directory: Path, org_name: str, group: str | None) -> dict[str, int]:
    """Store a MISP feed's indicators in `group`'s collection (None: public, TLP:CLEAR events only)."""
    counts = {"events": 0, "indicators": 0, "skipped_attributes": 0, "rejected_events": 0}
    for wrapped in read_feed(directory):
        try:
            objs, skipped = event_objects(wrapped)
        except (KeyError, ValueError, TypeError, stix2.exceptions.STIXError):
            counts["rejected_events"] += 1
            continue
        counts["skipped_attributes"] += skipped
        with sessions.begin() as s:
            p = admin.principal_for(s, org_name, "analyst", "misp-import")
            col = admin.group_collection(s, group) if group else admin.ensure_public_collection(s)
            outcome = add_envelope(s, p, col, objs)
        if outcome.rejected:
            counts["rejected_events"] += 1
            continue
        counts["events"] += 1
        counts["indicators"] += sum(o["type"] == "indicator" for o in objs)
    return counts
