"""Public announcement: an incident published as TLP:CLEAR to the exchange's public collection and Atom feed.

Only what may be public leaves: subjects whose role is in `public_roles`
(by default the attack infrastructure: C&C, domains, URLs, amplifiers,
scanners, attackers). Victims and infected customers' hosts stay out, and
their addresses are scrubbed from the title, the rating terms and the
alerts' summaries and evidence, since those texts are published too.
"""
from __future__ import annotations

from necoma.exchange import admin
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.publish import Published, publish_incident
from necoma.knowledge.incident import Incident, RatingTerm

PUBLIC_ROLES = ("cnc", "domain", "url", "amplifier", "scanner", "attacker")


def redact(incident: Incident, public_roles: tuple[str, ...] = PUBLIC_ROLES) -> Incident:
    """A copy of `incident` without the subjects that must not be public."""
    hidden = sorted({s.value for s in incident.subjects if s.role not in public_roles}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for v in hidden:  # longest first, so 10.0.0.10 is not half-replaced by 10.0.0.1
            text = text.replace(v, "[redacted]")
        return text

    alerts = [a.model_copy(update={"subjects": [s for s in a.subjects if s.role in public_roles],
                                   "summary": scrub(a.summary), "evidence": ""}) for a in incident.alerts]
    shown = [s for s in incident.subjects if s.role in public_roles]
    return incident.model_copy(update={
        "title": scrub(incident.title), "subjects": shown, "alerts": alerts,
        "rating_terms": [RatingTerm(name=t.name, points=t.points, why=scrub(t.why)) for t in incident.rating_terms],
    })


def announce(database_url: str, org_name: str, incident: Incident,
             public_roles: tuple[str, ...] = PUBLIC_ROLES) -> Published:
    """Publish the redacted incident as TLP:CLEAR (public collection, public timeline, Atom feed)."""
    engine = open_engine(database_url)
    try:
        sessions = session_factory(engine)
        with sessions.begin() as s:
            admin.ensure_public_collection(s)
            try:
                admin.get_org(s, org_name)
            except admin.AdminError:
                admin.add_org(s, org_name)
        return publish_incident(sessions, org_name, redact(incident, public_roles), group=None, level="clear")
    finally:
        engine.dispose()
