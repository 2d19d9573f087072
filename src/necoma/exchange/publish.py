"""The incident bot: an incident goes into a TAXII collection as STIX and onto the timeline as a post.

The STIX bundle and the post share one transaction: either both appear or
neither. The post carries the title, rating and its terms, hashtags for the
category and n6 category, and the bundle as attachment; its audience is the
bundle's: a sharing group's collection and TLP, or public for TLP:CLEAR.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from necoma.exchange import admin
from necoma.exchange.ingest import add_envelope
from necoma.exchange.timeline import posts
from necoma.knowledge.incident import Incident
from necoma.knowledge.markings import Level
from necoma.knowledge.stix import to_bundle


class PublishError(Exception):
    pass


@dataclass
class Published:
    status_id: str
    post_id: int
    objects: int


def post_text(incident: Incident) -> str:
    terms = "\n".join(f"- {t.points:+.0f} {t.name}: {t.why}" for t in incident.rating_terms)
    tags = " ".join(f"#{t}" for t in dict.fromkeys([incident.category, "n6-" + incident.n6_category, *incident.detectors]))
    return (f"**{incident.title}** — rating {incident.rating}/100, {incident.severity} severity, "
            f"{incident.confidence} confidence\n\n{incident.window_start:%Y-%m-%d %H:%M} – "
            f"{incident.window_end:%Y-%m-%d %H:%M} UTC, layers: {', '.join(incident.layers)}\n\n{terms}\n\n{tags}")


def publish_incident(sessions: sessionmaker[Session], org_name: str, incident: Incident, group: str | None = None,
                     level: Level = "amber", now: datetime | None = None) -> Published:
    """Publish `incident` for `org_name` into `group` (None: the public collection, TLP:CLEAR only)."""
    if group is None and level != "clear":
        raise PublishError("only TLP:CLEAR incidents go to the public collection and the public timeline")
    bundle = to_bundle(incident, org_name, level, now)
    with sessions.begin() as s:
        p = admin.principal_for(s, org_name, "analyst", "incident-bot")
        col = admin.group_collection(s, group) if group else admin.ensure_public_collection(s)
        outcome = add_envelope(s, p, col, bundle["objects"])
        if outcome.rejected:
            raise PublishError(f"STIX rejected: {outcome.failures[:3]}")
        post = posts.create(s, p, "incident-bot", post_text(incident), posts.Scope(group, level), attachment=bundle)
        return Published(outcome.status.id, post.id, len(bundle["objects"]))
