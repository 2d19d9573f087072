"""Adding a TAXII envelope to a collection: validate every object, then store all or nothing.

Each object must be valid STIX 2.1 as the `stix2` library judges it (no custom
properties), with an id, and within two rules of the specification that stix2
lets through but stix2-validator enforces (modified not before created,
confidence 0-100). Common objects
are proven valid by `stixcheck` without building stix2 objects (the speed of
ingest); the rest, and every object it cannot prove, go through `stix2.parse`,
whose message becomes the failure reason. Each is then checked against the
sharing rules (TLP:CLEAR only in the public
collection; an object id belongs to the organization that first added it to
the collection). If any object fails, nothing of the envelope is stored and
the status resource lists every failure; otherwise all objects go in with one
transaction. Re-sending a version already stored is a success that stores
nothing (so retries are safe).

Two kinds of object have ids that are the same for everyone, so nobody owns
them: cyber observables (SCOs — `ipv4-addr--<uuid5 of the value>`) and the
well-known TLP marking definitions. A TLP definition already present is not
stored again. Each organization keeps its own copy of an SCO (with its own
TLP marking, versioned by date added), so one organization's marking never
hides or exposes another's.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import stix2
from stix2.registry import STIX2_OBJ_MAPS
from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from necoma.exchange import access, stixcheck, tlp
from necoma.exchange.admin import Principal
from necoma.exchange.db import now_us
from necoma.exchange.models import Collection, Organization, Recipient, Status, StixObject
from necoma.exchange.timestamps import format_us, parse_us

_CHUNK = 500  # ids per IN (...) lookup; keeps statements under every engine's parameter limit
SCO_TYPES = frozenset(STIX2_OBJ_MAPS["2.1"]["observables"])


class EnvelopeError(Exception):
    """The request as a whole is unacceptable (not an envelope, unknown recipient...)."""

    def __init__(self, http_status: int, title: str, description: str = "") -> None:
        super().__init__(f"{title}: {description}")
        self.http_status, self.title, self.description = http_status, title, description


@dataclass
class Prepared:
    stix_id: str
    stix_type: str
    spec_version: str
    version_us: int
    tlp: str
    body: str
    shared: bool  # an SCO: ids are content-derived, every organization keeps its own copy


@dataclass
class Outcome:
    status: Status
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return bool(self.failures)


def parse_envelope(raw: bytes) -> list[Any]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(400, "Body is not JSON", str(exc)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise EnvelopeError(400, "Not a TAXII envelope", 'expected {"objects": [...]}')
    if not doc["objects"]:
        raise EnvelopeError(400, "Empty envelope", "no objects to add")
    return doc["objects"]


def prepare(obj: Any, date_added_us: int) -> Prepared:
    """Validate one object; raise ValueError with a readable message if it is not acceptable STIX 2.1."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if obj.get("type") == "bundle":
        raise ValueError("a bundle cannot be an object of an envelope")
    if obj.get("spec_version", "2.1") != "2.1":
        raise ValueError(f"spec_version {obj.get('spec_version')!r} not supported (2.1 only)")
    if "id" not in obj:
        raise ValueError("missing required property 'id'")
    if not stixcheck.proves_valid(obj):  # not proven: stix2 decides, and says why
        try:
            stix2.parse(obj, allow_custom=False, version="2.1")
        except Exception as exc:  # stix2 raises many unrelated types for bad input
            raise ValueError(f"invalid STIX 2.1: {exc}") from None
    violation = stixcheck.spec_violation(obj)
    if violation:
        raise ValueError(f"invalid STIX 2.1: {violation}")
    created, modified = _stamp(obj.get("created")), _stamp(obj.get("modified"))
    version_us = modified if modified is not None else created if created is not None else date_added_us
    return Prepared(
        stix_id=obj["id"], stix_type=obj["type"], spec_version="2.1", version_us=version_us,
        tlp=tlp.level_of(obj), body=_compact(obj), shared=obj["type"] in SCO_TYPES,
    )


def _compact(obj: dict) -> str:
    """The stored body: compact JSON, UTF-8 text. orjson is 10x faster than json; it refuses integers past
    64 bits and lone surrogates, which `json.loads` lets through, so those keep the slow path."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _stamp(value: Any) -> int | None:
    if value is None:
        return None
    fast = stixcheck.stamp_us(value)
    return fast if fast is not None else parse_us(value)


def _existing(s: Session, col: Collection, ids: list[str]) -> tuple[dict[str, set[int]], set[tuple[str, int]]]:
    """Owner orgs of each id already in the collection, and the (id, version) pairs stored."""
    owners: dict[str, set[int]] = {}
    versions: set[tuple[str, int]] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        q = select(StixObject.stix_id, StixObject.version_us, StixObject.owner_org_id).where(
            StixObject.collection_id == col.id, StixObject.stix_id.in_(chunk)
        )
        for stix_id, version_us, owner in s.execute(q):
            owners.setdefault(stix_id, set()).add(owner)
            versions.add((stix_id, version_us))
    return owners, versions


def _recipient_orgs(s: Session, names: list[str]) -> list[int]:
    ids = []
    for name in names:
        org_id = s.scalar(select(Organization.id).where(Organization.name == name))
        if org_id is None:
            raise EnvelopeError(400, "Unknown recipient", f"no organization named {name!r}")
        ids.append(org_id)
    return ids


def add_envelope(
    s: Session, p: Principal, col: Collection, objects: list[Any], recipients: list[str] | None = None
) -> Outcome:
    """Validate and store `objects`; the caller commits (the status is stored either way)."""
    date_added = now_us()
    recipient_ids = _recipient_orgs(s, recipients or [])
    outcome = Outcome(status=Status(id=str(uuid.uuid4()), org_id=p.org_id, collection_id=col.id, request_us=date_added))
    prepared: list[Prepared] = []
    for obj in objects:
        ident = obj.get("id", "") if isinstance(obj, dict) else ""
        version = (obj.get("modified") or obj.get("created") or "") if isinstance(obj, dict) else ""
        try:
            item = prepare(obj, date_added)
        except (ValueError, KeyError) as exc:
            outcome.failures.append({"id": str(ident), "version": str(version), "message": str(exc)})
            continue
        if not access.level_allowed_in(col, item.tlp):
            outcome.failures.append({"id": item.stix_id, "version": version,
                                     "message": f"TLP:{item.tlp.upper()} object not allowed in the public collection (TLP:CLEAR only)"})
            continue
        prepared.append(item)
    owners, stored = _existing(s, col, sorted({it.stix_id for it in prepared}))
    rows, seen, red_ids, seen_sco = [], set(), set(), set()
    stamps: dict[int, str] = {}  # objects of one envelope share few versions; formatting each costs
    for item in prepared:
        key = (item.stix_id, item.version_us)
        version = stamps.get(item.version_us) or stamps.setdefault(item.version_us, format_us(item.version_us))
        have = owners.get(item.stix_id, set())
        if item.stix_id in tlp.WELL_KNOWN_MARKINGS and have:
            outcome.successes.append({"id": item.stix_id, "version": version})
            continue  # the same definition for everyone, already here
        if item.shared:
            if p.org_id in have or item.stix_id in seen_sco:
                outcome.successes.append({"id": item.stix_id, "version": version})
                continue  # this organization has its copy
            seen_sco.add(item.stix_id)
        elif have and p.org_id not in have:
            outcome.failures.append({"id": item.stix_id, "version": version,
                                     "message": "object id belongs to another organization"})
            continue
        outcome.successes.append({"id": item.stix_id, "version": version})
        if item.tlp == "red":
            red_ids.add(item.stix_id)
        if not item.shared and (key in stored or key in seen):
            continue  # already stored: idempotent success
        seen.add(key)
        rows.append({
            "collection_id": col.id, "stix_id": item.stix_id, "stix_type": item.stix_type,
            "spec_version": item.spec_version, "version_us": item.version_us, "date_added_us": date_added,
            "tlp": item.tlp, "owner_org_id": p.org_id, "body": item.body,
        })
    st = outcome.status
    st.total = len(objects)
    if outcome.failures:
        # All or nothing: a partly bad envelope stores no object, and says why for each one.
        outcome.failures += [dict(ok, message="not stored: other objects of the envelope failed")
                             for ok in outcome.successes]
        outcome.successes = []
    else:
        if rows:
            s.connection().execute(insert(StixObject.__table__), rows)  # Core executemany: no ORM bookkeeping per row
        _add_recipients(s, col, sorted(red_ids), recipient_ids)
    st.success_count, st.failure_count = len(outcome.successes), len(outcome.failures)
    st.details = orjson.dumps({"successes": outcome.successes, "failures": outcome.failures}).decode()
    s.add(st)
    return outcome


def _add_recipients(s: Session, col: Collection, stix_ids: list[str], org_ids: list[int]) -> None:
    if not stix_ids or not org_ids:
        return
    pairs = [(i, o) for i in stix_ids for o in org_ids]
    have = set(s.execute(select(Recipient.stix_id, Recipient.org_id).where(
        Recipient.collection_id == col.id, tuple_(Recipient.stix_id, Recipient.org_id).in_(pairs))).all())
    new = [{"collection_id": col.id, "stix_id": i, "org_id": o} for i, o in pairs if (i, o) not in have]
    if new:
        s.execute(insert(Recipient), new)


def status_resource(st: Status, outcome: Outcome | None = None) -> dict[str, Any]:
    """The TAXII status resource; pass the outcome just computed to skip re-reading the stored details."""
    details = {"successes": outcome.successes, "failures": outcome.failures} if outcome else json.loads(st.details)
    return {
        "id": st.id,
        "status": "complete",
        "request_timestamp": format_us(st.request_us),
        "total_count": st.total,
        "success_count": st.success_count,
        "successes": details["successes"],
        "failure_count": st.failure_count,
        "failures": details["failures"],
        "pending_count": 0,
        "pendings": [],
    }
