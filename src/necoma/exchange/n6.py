"""An n6-compatible search endpoint over the shared indicators: /n6/search/events.json.

n6 (CERT Polska) describes each event with a category, a confidence
(low/medium/high), a time and the address / fqdn / url concerned; NECOMA
offered its data this way. Here every indicator the caller may read (latest
version, any readable collection) whose pattern names one value becomes an
n6 event: the category is the indicator's first label when it is an n6
category (necoma's own bundles set it), the confidence comes from the STIX
confidence (≥ 70 high, ≥ 40 medium), the time is `valid_from`, and the n6
`restriction` follows TLP (CLEAR public, GREEN/AMBER need-to-know, stricter
internal).

Filters (n6 names): category, confidence, ip, ip.net (CIDR), fqdn, fqdn.sub,
url, url.sub, time.min, time.max, opt.limit (default 100, at most 1000).
The scan is bounded: the newest `SCAN_LIMIT` indicators are considered.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from necoma.exchange import access
from necoma.exchange.admin import Principal
from necoma.exchange.models import Collection, StixObject
from necoma.exchange.query import Filters, _select
from necoma.exchange.taxii.app import TaxiiError, authenticate
from necoma.exchange.timestamps import parse_us
from necoma.knowledge.taxonomy import CATEGORIES

SCAN_LIMIT = 50_000
_SIMPLE = re.compile(r"^\[(ipv4-addr|ipv6-addr|domain-name|url):value\s*(=|ISSUBSET)\s*'((?:[^'\\]|\\.)*)'\]$")
_RESTRICTION = {"clear": "public", "green": "need-to-know", "amber": "need-to-know"}
N6_CATEGORIES = {c.n6 for c in CATEGORIES.values()}

router = APIRouter()


def to_event(obj: dict[str, Any], tlp: str) -> dict[str, Any] | None:
    m = _SIMPLE.match(obj.get("pattern", ""))
    if obj.get("type") != "indicator" or m is None:
        return None
    kind, value = m.group(1), m.group(3).replace("\\'", "'").replace("\\\\", "\\")
    labels = obj.get("labels") or []
    conf = obj.get("confidence")
    event: dict[str, Any] = {
        "id": obj["id"],
        "source": "necoma",
        "category": labels[0] if labels and labels[0] in N6_CATEGORIES else "other",
        "confidence": "low" if conf is None else "high" if conf >= 70 else "medium" if conf >= 40 else "low",
        "time": obj.get("valid_from") or obj.get("created"),
        "restriction": _RESTRICTION.get(tlp, "internal"),
        "name": obj.get("name", ""),
    }
    if kind in ("ipv4-addr", "ipv6-addr"):
        if "/" in value:
            event["ip_network"] = value
        else:
            event["address"] = [{"ip": value}]
    elif kind == "domain-name":
        event["fqdn"] = value
    else:
        event["url"] = value
    return event


def _matches(e: dict[str, Any], q: dict[str, list[str]]) -> bool:
    def one(name: str) -> list[str]:
        return q.get(name, [])

    if one("category") and e["category"] not in one("category"):
        return False
    if one("confidence") and e["confidence"] not in one("confidence"):
        return False
    ips = [a["ip"] for a in e.get("address", [])]
    if one("ip") and not set(ips) & set(one("ip")):
        return False
    if one("ip.net"):
        nets = [ipaddress.ip_network(n, strict=False) for n in one("ip.net")]
        if not any(_in(ip, n) for ip in ips for n in nets):
            return False
    fqdn = e.get("fqdn", "")
    if one("fqdn") and fqdn not in one("fqdn"):
        return False
    if one("fqdn.sub") and not any(s in fqdn for s in one("fqdn.sub")):
        return False
    url = e.get("url", "")
    if one("url") and url not in one("url"):
        return False
    if one("url.sub") and not any(s in url for s in one("url.sub")):
        return False
    if e["time"]:
        t = parse_us(e["time"])
        if one("time.min") and t < parse_us(one("time.min")[0]):
            return False
        if one("time.max") and t >= parse_us(one("time.max")[0]):
            return False
    return True


def _in(ip: str, net) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.version == net.version and addr in net


@router.get("/n6/search/events.json")
def search(request: Request, p: Principal = Depends(authenticate)) -> JSONResponse:
    q: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        q.setdefault(k, []).extend(x for x in v.split(",") if x)
    try:
        limit = min(int(q.get("opt.limit", ["100"])[0]), 1000)
        for stamp in q.get("time.min", []) + q.get("time.max", []):
            parse_us(stamp)
        for net in q.get("ip.net", []):
            ipaddress.ip_network(net, strict=False)
    except ValueError as exc:
        raise TaxiiError(400, "Bad query", str(exc)) from None
    events: list[dict[str, Any]] = []
    with request.app.state.service.sessions() as s:
        for col in s.scalars(select(Collection)):
            if not access.can_read_collection(p, col):
                continue
            f = Filters(types=["indicator"])
            stmt = _select(p, col, f).order_by(None).order_by(StixObject.date_added_us.desc()).limit(SCAN_LIMIT)
            for row in s.scalars(stmt):
                e = to_event(json.loads(row.body), row.tlp)
                if e is not None and _matches(e, q):
                    events.append(e)
    events.sort(key=lambda e: e["time"] or "", reverse=True)
    return JSONResponse(events[:limit])
