"""TAXII 2.1 endpoints (OASIS TAXII 2.1, section 4-5), under /taxii2/ with one API root.

Envelopes are assembled from the stored JSON text of each object rather than
re-serialized, which keeps a page of 1000 objects cheap.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from necoma.exchange import access, query
from necoma.exchange.admin import Principal
from necoma.exchange.ingest import EnvelopeError, add_envelope, parse_envelope, status_resource
from necoma.exchange.models import Collection, Status
from necoma.exchange.taxii.app import STIX, TAXII, Service, TaxiiError, authenticate
from necoma.exchange.timestamps import format_us

ROOT = "/taxii2/root"
_ACCEPTABLE = ("application/taxii+json", "application/json", "*/*", "application/*")


def negotiate(request: Request) -> None:
    """406 unless the client accepts TAXII 2.1 JSON."""
    accept = request.headers.get("accept")
    if not accept:
        return
    for part in accept.split(","):
        media, *params = [x.strip() for x in part.split(";")]
        versions = [x.split("=", 1)[1].strip() for x in params if x.startswith("version=")]
        if media.lower() in _ACCEPTABLE and (not versions or "2.1" in versions):
            return
    raise TaxiiError(406, "Not acceptable", f"this server speaks {TAXII}")


router = APIRouter(dependencies=[Depends(negotiate)])


def _svc(request: Request) -> Service:
    return request.app.state.service


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(text, status_code=status, media_type=TAXII, headers=headers)


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k, []).append(v)
    return out


def _collection(s, p: Principal, cid: str) -> Collection:
    col = s.get(Collection, cid)
    if col is None or not access.can_read_collection(p, col):
        raise TaxiiError(404, "Collection not found", cid)
    return col


def _filters(request: Request, default_versions: str = "last") -> query.Filters:
    try:
        return query.parse_filters(_params(request), _svc(request).settings.page_limit, default_versions)
    except query.FilterError as exc:
        raise TaxiiError(400, "Bad filter", str(exc)) from None


def _page_headers(pg: query.Page) -> dict[str, str]:
    if not pg.rows:
        return {}
    return {"X-TAXII-Date-Added-First": format_us(pg.first_added_us),
            "X-TAXII-Date-Added-Last": format_us(pg.last_added_us)}


def _envelope(pg: query.Page) -> str:
    head = '{"more":' + ("true" if pg.more else "false")
    if pg.next:
        head += ',"next":' + json.dumps(pg.next)
    return head + ',"objects":[' + ",".join(r.body for r in pg.rows) + "]}"


def _collection_resource(p: Principal, col: Collection) -> dict[str, Any]:
    return {"id": col.id, "title": col.title, "description": col.description,
            "can_read": True, "can_write": access.can_write_collection(p, col), "media_types": [STIX]}


@router.get("/taxii2/")
def discovery(request: Request, p: Principal = Depends(authenticate)) -> Response:
    root = str(request.base_url).rstrip("/") + ROOT + "/"
    return _json({"title": "necoma exchange", "description": "TAXII 2.1 service of necoma",
                  "default": root, "api_roots": [root]})


@router.get(ROOT + "/")
def api_root(request: Request, p: Principal = Depends(authenticate)) -> Response:
    return _json({"title": "necoma", "description": "Threat information shared through necoma",
                  "versions": [TAXII], "max_content_length": _svc(request).settings.max_request_bytes})


@router.get(ROOT + "/status/{status_id}/")
def get_status(request: Request, status_id: str, p: Principal = Depends(authenticate)) -> Response:
    with _svc(request).sessions() as s:
        st = s.get(Status, status_id)
        if st is None or st.org_id != p.org_id:
            raise TaxiiError(404, "Status not found", status_id)
        return _json(status_resource(st))


@router.get(ROOT + "/collections/")
def collections(request: Request, p: Principal = Depends(authenticate)) -> Response:
    from sqlalchemy import select

    with _svc(request).sessions() as s:
        cols = [c for c in s.scalars(select(Collection).order_by(Collection.title)) if access.can_read_collection(p, c)]
        return _json({"collections": [_collection_resource(p, c) for c in cols]})


@router.get(ROOT + "/collections/{cid}/")
def collection(request: Request, cid: str, p: Principal = Depends(authenticate)) -> Response:
    with _svc(request).sessions() as s:
        return _json(_collection_resource(p, _collection(s, p, cid)))


@router.get(ROOT + "/collections/{cid}/objects/")
def get_objects(request: Request, cid: str, p: Principal = Depends(authenticate)) -> Response:
    f = _filters(request)
    with _svc(request).sessions() as s:
        pg = query.page(s, p, _collection(s, p, cid), f)
        return _json(_envelope(pg), headers=_page_headers(pg))


@router.get(ROOT + "/collections/{cid}/manifest/")
def manifest(request: Request, cid: str, p: Principal = Depends(authenticate)) -> Response:
    f = _filters(request)
    with _svc(request).sessions() as s:
        pg = query.page(s, p, _collection(s, p, cid), f)
        body: dict[str, Any] = {"more": pg.more, "objects": [
            {"id": r.stix_id, "date_added": format_us(r.date_added_us), "version": format_us(r.version_us),
             "media_type": STIX} for r in pg.rows]}
        if pg.next:
            body["next"] = pg.next
        return _json(body, headers=_page_headers(pg))


@router.get(ROOT + "/collections/{cid}/objects/{oid}/")
def get_object(request: Request, cid: str, oid: str, p: Principal = Depends(authenticate)) -> Response:
    f = _filters(request)
    f.ids, f.types = [oid], []
    with _svc(request).sessions() as s:
        col = _collection(s, p, cid)
        pg = query.page(s, p, col, f)
        if not pg.rows and not query.any_visible(s, p, col, oid):
            raise TaxiiError(404, "Object not found", oid)
        return _json(_envelope(pg), headers=_page_headers(pg))


@router.get(ROOT + "/collections/{cid}/objects/{oid}/versions/")
def versions(request: Request, cid: str, oid: str, p: Principal = Depends(authenticate)) -> Response:
    f = _filters(request, default_versions="all")
    f.ids, f.types, f.versions = [oid], [], ["all"]
    with _svc(request).sessions() as s:
        col = _collection(s, p, cid)
        pg = query.page(s, p, col, f)
        if not pg.rows and not query.any_visible(s, p, col, oid):
            raise TaxiiError(404, "Object not found", oid)
        body: dict[str, Any] = {"more": pg.more, "versions": [format_us(r.version_us) for r in pg.rows]}
        if pg.next:
            body["next"] = pg.next
        return _json(body, headers=_page_headers(pg))


@router.delete(ROOT + "/collections/{cid}/objects/{oid}/")
def delete_object(request: Request, cid: str, oid: str, p: Principal = Depends(authenticate)) -> Response:
    f = _filters(request, default_versions="all")
    with _svc(request).sessions() as s:
        col = _collection(s, p, cid)
        if not query.any_visible(s, p, col, oid):
            raise TaxiiError(404, "Object not found", oid)
        if not p.at_least("admin") or not query.owns(s, col, oid, p.org_id):
            raise TaxiiError(403, "Forbidden", "only an admin of the owning organization may delete an object")
        query.delete_versions(s, p, col, oid, f)
        s.commit()
    return Response(status_code=200, media_type=TAXII)


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise TaxiiError(413, "Request too large", f"limit is {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TaxiiError(413, "Request too large", f"limit is {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(ROOT + "/collections/{cid}/objects/")
async def add_objects(request: Request, cid: str, p: Principal = Depends(authenticate)) -> Response:
    svc = _svc(request)
    ctype = request.headers.get("content-type", "").replace(" ", "").lower()
    if not (ctype.startswith("application/taxii+json") and ("version=" not in ctype or "version=2.1" in ctype)):
        raise TaxiiError(415, "Unsupported media type", f"send {TAXII}")
    raw = await _read_capped(request, svc.settings.max_request_bytes)
    recipients = [r.strip() for r in request.headers.get("x-necoma-recipients", "").split(",") if r.strip()]
    return await run_in_threadpool(_add, svc, p, cid, raw, recipients)


def _add(svc: Service, p: Principal, cid: str, raw: bytes, recipients: list[str]) -> Response:
    with svc.sessions() as s:
        col = _collection(s, p, cid)
        if not access.can_write_collection(p, col):
            raise TaxiiError(403, "Forbidden", f"role {p.role} may not add objects")
        try:
            objects = parse_envelope(raw)
            outcome = add_envelope(s, p, col, objects, recipients)
        except EnvelopeError as exc:
            s.rollback()
            raise TaxiiError(exc.http_status, exc.title, exc.description) from None
        s.commit()
        resource = status_resource(outcome.status, outcome)
    if outcome.rejected:
        raise TaxiiError(422, "Envelope rejected", f"{outcome.status.failure_count} object(s) failed; nothing stored",
                         details=resource)
    return _json(resource, status=202)
