"""The public Atom feed: incidents published as TLP:CLEAR, for anyone (no key needed).

Entries are the latest versions of the `incident` objects in the public
collection — which only ever holds TLP:CLEAR — newest first. Built with
ElementTree, so every text is escaped.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from necoma.exchange.admin import Principal
from necoma.exchange.models import Collection, StixObject
from necoma.exchange.query import Filters, _select
from necoma.exchange.timestamps import format_us

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 100

router = APIRouter()
# Nobody in particular: sees exactly what is public (TLP:CLEAR in the public collection).
_ANONYMOUS = Principal(key_id="anonymous", org_id=-1, org_name="", role="reader", group_ids=frozenset())


@router.get("/feeds/public.atom")
def public_feed(request: Request) -> Response:
    svc = request.app.state.service
    base = svc.settings.public_url.rstrip("/")
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"{svc.settings.org_name}: public incidents"
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base}/feeds/public.atom"
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=f"{base}/feeds/public.atom")
    updated = ET.SubElement(feed, f"{{{ATOM}}}updated")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = svc.settings.org_name
    newest = 0
    with svc.sessions() as s:
        col = s.scalar(select(Collection).where(Collection.is_public.is_(True)))
        rows = []
        if col is not None:
            stmt = _select(_ANONYMOUS, col, Filters(types=["incident"])).where(StixObject.tlp == "clear")
            rows = list(s.scalars(stmt.order_by(None).order_by(StixObject.date_added_us.desc()).limit(ENTRIES)))
    for row in rows:
        obj = json.loads(row.body)
        newest = max(newest, row.date_added_us)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}title").text = obj.get("name", obj["id"])
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"urn:uuid:{obj['id'].split('--', 1)[1]}"
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = obj.get("modified", format_us(row.date_added_us))
        ET.SubElement(entry, f"{{{ATOM}}}published").text = obj.get("created", format_us(row.date_added_us))
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="application/taxii+json;version=2.1",
                      href=f"{base}/taxii2/root/collections/{col.id}/objects/{obj['id']}/")
        for label in obj.get("labels", []):
            ET.SubElement(entry, f"{{{ATOM}}}category", term=label)
        ET.SubElement(entry, f"{{{ATOM}}}summary", type="text").text = obj.get("description", "")
    updated.text = format_us(newest) if newest else "1970-01-01T00:00:00.000000Z"
    body = ET.tostring(feed, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + body, media_type="application/atom+xml")
