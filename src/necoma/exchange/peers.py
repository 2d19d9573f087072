"""Peer synchronization: pull from and push to other TAXII 2.1 servers (necoma, medallion, ...).

A peer is one remote collection, tied to a local collection and a local
organization:

- **pull** fetches the remote objects added since the last pull (`added_after`
  = the `X-TAXII-Date-Added-Last` of the last page stored, all versions,
  following `next`) and stores them in the local collection as owned by the
  peer's organization — so the usual TLP rules apply to them. Each page is one
  transaction together with the cursor: a crash repeats at most one page,
  which is harmless because re-adding a stored version is a no-op. Objects
  that fail validation are counted and skipped, never stored.
- **push** sends the objects of the local organization in the local collection
  that were added since the last push, oldest first, in envelopes of `page`
  objects. Only objects the organization owns, and only up to `max_tlp`
  (default TLP:GREEN; never AMBER+STRICT or RED, which must not leave the
  named recipients): forwarding other organizations' information would break
  their TLP.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from necoma.exchange.admin import AdminError, Principal, get_org
from necoma.exchange.db import now_us
from necoma.exchange.ingest import add_envelope
from necoma.exchange.models import Collection, Organization, Peer, StixObject

TAXII = "application/taxii+json;version=2.1"
PUSHABLE = ("clear", "green", "amber")


@dataclass
class SyncResult:
    pulled: int = 0
    pushed: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def add_peer(s: Session, name: str, url: str, password: str, collection_id: str, org_name: str,
             direction: str = "both", username: str = "necoma", max_tlp: str = "green", interval_s: int = 300) -> Peer:
    if direction not in ("pull", "push", "both"):
        raise AdminError("direction must be pull, push or both")
    if max_tlp not in PUSHABLE:
        raise AdminError(f"max_tlp must be one of {', '.join(PUSHABLE)} (AMBER+STRICT and RED are never pushed)")
    if s.get(Collection, collection_id) is None:
        raise AdminError(f"no local collection {collection_id}")
    peer = Peer(name=name, url=url.rstrip("/") + "/", username=username, password=password,
                collection_id=collection_id, org_id=get_org(s, org_name).id, direction=direction,
                max_tlp=max_tlp, interval_s=interval_s)
    s.add(peer)
    s.flush()
    return peer


def _principal(s: Session, peer: Peer) -> Principal:
    org = s.get(Organization, peer.org_id)
    return Principal(key_id=f"peer:{peer.name}", org_id=org.id, org_name=org.name, role="analyst",
                     group_ids=frozenset())


def pull(sessions: sessionmaker[Session], peer_name: str, client: httpx.Client, page: int = 500) -> SyncResult:
    res = SyncResult()
    with sessions() as s:
        peer = s.scalars(select(Peer).where(Peer.name == peer_name)).one()
        url, auth, cursor = peer.url + "objects/", (peer.username, peer.password), peer.pull_cursor
    params: dict[str, str] = {"limit": str(page), "match[version]": "all"}
    if cursor:
        params["added_after"] = cursor
    while True:
        r = client.get(url, params=params, auth=auth, headers={"Accept": TAXII})
        if r.status_code != 200:
            res.errors.append(f"GET {url}: HTTP {r.status_code} {r.text[:200]}")
            break
        body = r.json() if r.content else {}
        objects = body.get("objects", [])
        with sessions.begin() as s:
            peer = s.scalars(select(Peer).where(Peer.name == peer_name)).one()
            stored, rejected = _store(s, _principal(s, peer), s.get(Collection, peer.collection_id), objects)
            res.pulled += stored
            res.rejected += rejected
            last = r.headers.get("X-TAXII-Date-Added-Last")
            if last:
                peer.pull_cursor = last
        if not body.get("more") or not body.get("next"):
            break
        params["next"] = body["next"]
    return res


def _store(s: Session, p: Principal, col: Collection, objects: list) -> tuple[int, int]:
    """Store a page: in one envelope if all objects are acceptable, else only the acceptable ones.

    add_envelope stores nothing when it rejects, so retrying without the
    failed objects needs no savepoints.
    """
    if not objects:
        return 0, 0
    todo = list(objects)
    for _ in range(2):
        outcome = add_envelope(s, p, col, todo)
        if not outcome.rejected:
            return len(todo), len(objects) - len(todo)
        failed = {f["id"] for f in outcome.failures if not f["message"].startswith("not stored")}
        todo = [o for o in todo if not isinstance(o, dict) or o.get("id") not in failed]
        todo = [o for o in todo if isinstance(o, dict) and o.get("id")]
        if not todo:
            break
    return 0, len(objects)


def push(sessions: sessionmaker[Session], peer_name: str, client: httpx.Client, page: int = 500) -> SyncResult:
    res = SyncResult()
    while True:
        with sessions() as s:
            peer = s.scalars(select(Peer).where(Peer.name == peer_name)).one()
            levels = PUSHABLE[: PUSHABLE.index(peer.max_tlp) + 1]
            after = (peer.push_added_us, peer.push_seq)
            rows = list(s.scalars(
                select(StixObject).where(
                    StixObject.collection_id == peer.collection_id, StixObject.owner_org_id == peer.org_id,
                    StixObject.tlp.in_(levels),
                    or_(StixObject.date_added_us > after[0],
                        and_(StixObject.date_added_us == after[0], StixObject.seq > after[1])),
                ).order_by(StixObject.date_added_us, StixObject.seq).limit(page)))
            url, auth = peer.url + "objects/", (peer.username, peer.password)
        if not rows:
            break
        body = '{"objects":[' + ",".join(r.body for r in rows) + "]}"
        r = client.post(url, content=body, auth=auth, headers={"Content-Type": TAXII, "Accept": TAXII})
        if r.status_code not in (200, 202):
            res.errors.append(f"POST {url}: HTTP {r.status_code} {r.text[:300]}")
            break
        status = r.json()
        res.pushed += int(status.get("success_count", len(rows)))
        res.rejected += int(status.get("failure_count", 0))
        with sessions.begin() as s:
            peer = s.scalars(select(Peer).where(Peer.name == peer_name)).one()
            peer.push_added_us, peer.push_seq = rows[-1].date_added_us, rows[-1].seq
    return res


def sync(sessions: sessionmaker[Session], peer_name: str, client: httpx.Client | None = None) -> SyncResult:
    """One pull and/or push of a peer, as configured; errors are recorded on the peer, not raised."""
    with sessions() as s:
        direction = s.scalar(select(Peer.direction).where(Peer.name == peer_name))
    if direction is None:
        raise AdminError(f"no peer {peer_name!r}")
    own = client is None
    client = client or httpx.Client(timeout=60)
    res = SyncResult()
    try:
        try:
            if direction in ("pull", "both"):
                part = pull(sessions, peer_name, client)
                res.pulled, res.rejected, res.errors = part.pulled, part.rejected, part.errors
            if direction in ("push", "both"):
                part = push(sessions, peer_name, client)
                res.pushed, res.rejected, res.errors = part.pushed, res.rejected + part.rejected, res.errors + part.errors
        except httpx.HTTPError as exc:
            res.errors.append(f"{type(exc).__name__}: {exc}")
        with sessions.begin() as s:
            peer = s.scalars(select(Peer).where(Peer.name == peer_name)).one()
            peer.last_sync_us, peer.last_error = now_us(), "; ".join(res.errors)[:2000]
    finally:
        if own:
            client.close()
    return res


def due(sessions: sessionmaker[Session]) -> list[str]:
    """Peers whose interval has passed since their last sync."""
    now = now_us()
    with sessions() as s:
        return [p.name for p in s.scalars(select(Peer)) if now - p.last_sync_us >= p.interval_s * 1_000_000]


def describe(peer: Peer) -> dict:
    return {"name": peer.name, "url": peer.url, "direction": peer.direction, "max_tlp": peer.max_tlp,
            "interval_s": peer.interval_s, "pull_cursor": peer.pull_cursor, "last_error": peer.last_error}


