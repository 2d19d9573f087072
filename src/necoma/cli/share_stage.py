"""`necoma run`'s sharing stages: alerts → incidents → the exchange (STIX + timeline), then serving the API.

Incidents found by a run are this organization's: they go, as TLP:AMBER,
into a sharing group named after the organization (created with the
organization if absent, with this organization as its only member). Sharing
further is a decision: add member organizations to that group, or peers.
Re-running publishes only incidents not published before (incident ids are
stable over the same alerts, and so are their STIX ids).
"""
from __future__ import annotations

from sqlalchemy import select

from necoma.cli.common import console


def share_stage(settings, alerts: list) -> list:
    """Correlate `alerts` into incidents, publish the new ones through the incident bot, return all incidents."""
    from necoma.exchange import admin
    from necoma.exchange.db import open_engine, session_factory
    from necoma.exchange.models import Organization, SharingGroup, StixObject
    from necoma.exchange.publish import publish_incident
    from necoma.knowledge.correlate import correlate
    from necoma.knowledge.stix import to_bundle

    incidents = correlate(alerts)
    org = settings.exchange.org_name
    engine = open_engine(settings.exchange_db_url)
    try:
        sessions = session_factory(engine)
        with sessions.begin() as s:
            admin.ensure_public_collection(s, org)
            if s.scalar(select(Organization).where(Organization.name == org)) is None:
                admin.add_org(s, org)
            if s.scalar(select(SharingGroup).where(SharingGroup.name == org)) is None:
                admin.add_group(s, org, f"incidents found by {org}'s own pipeline")
                admin.add_member(s, org, org)
        new = 0
        for inc in incidents:
            stix_id = next(o["id"] for o in to_bundle(inc, org, "amber")["objects"] if o["type"] == "incident")
            with sessions() as s:
                col = admin.group_collection(s, org)
                if s.scalar(select(StixObject.seq).where(StixObject.collection_id == col.id,
                                                         StixObject.stix_id == stix_id).limit(1)) is not None:
                    continue
            publish_incident(sessions, org, inc, group=org, level="amber")
            new += 1
    finally:
        engine.dispose()
    console.print(f"sharing: {len(alerts)} alerts → {len(incidents)} incidents, {new} newly published "
                  f"(STIX in collection {org!r}, posts on the timeline) in {settings.exchange_db_url}", highlight=False)
    for inc in sorted(incidents, key=lambda i: -i.rating)[:10]:
        console.print(f"  {inc.rating:3d}/100  {inc.title}", highlight=False)
    return incidents


def serve_stage(settings, host: str, port: int) -> None:
    """Serve the exchange API until Ctrl-C, after saying where and giving a reader key to look with."""
    import uvicorn

    from necoma.exchange import admin
    from necoma.exchange.db import session_factory
    from necoma.exchange.taxii import create_app

    app = create_app(settings.exchange_db_url, settings.exchange)
    with session_factory(app.state.engine).begin() as s:
        _, key = admin.create_key(s, settings.exchange.org_name, "reader", label="necoma run")
    url = f"http://{host}:{port}"
    console.print(f"\nexchange API on {url}/taxii2/ (TAXII 2.1) and {url}/api/v1/posts (timeline); Ctrl-C stops.\n"
                  f"a reader key for {settings.exchange.org_name!r}, shown once: {key}\n"
                  f"  curl -H 'Authorization: Bearer {key}' {url}/api/v1/posts\n"
                  f"more keys: necoma admin key create --org {settings.exchange.org_name} --role analyst",
                  highlight=False, soft_wrap=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass
