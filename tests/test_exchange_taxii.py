"""TAXII 2.1 conformance with the real taxii2-client against a real uvicorn server, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
import stix2
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from necoma.config import ExchangeSettings
from necoma.exchange import admin, tlp
from necoma.exchange.db import session_factory
from necoma.exchange.models import StixObject
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url
from necoma.exchange.timestamps import format_us, parse_us

TAXII = "application/taxii+json;version=2.1"


def indicator(value: str, level: str = "green", **kw) -> dict:
    ind = stix2.v21.Indicator(
        pattern=f"[ipv4-addr:value = '{value}']", pattern_type="stix", valid_from="2024-01-01T00:00:00Z",
        object_marking_refs=[tlp.TLP2_IDS[level]], **kw,
    )
    return json.loads(ind.serialize())


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request, tmp_path):
    settings = ExchangeSettings(rate_burst=10_000, rate_per_second=10_000, max_request_bytes=200_000, page_limit=50)
    app = create_app(database_url(request.param, tmp_path), settings)
    with session_factory(app.state.engine).begin() as s:
        admin.add_org(s, "acme")
        _, token = admin.create_key(s, "acme", "admin")
        _, reader = admin.create_key(s, "acme", "reader")
        _, col = admin.add_group(s, "csirts")
        admin.add_member(s, "csirts", "acme")
        public = admin.ensure_public_collection(s)
        ids = {"group": col.id, "public": public.id}
    with ServerThread(app) as srv:
        yield {"url": srv.url, "token": token, "reader": reader, "ids": ids, "app": app}
    app.state.engine.dispose()


def _col(svc, which: str = "group", token: str | None = None) -> Collection:
    return Collection(f"{svc['url']}/taxii2/root/collections/{svc['ids'][which]}/", user="any",
                      password=token or svc["token"])


def _count(app) -> int:
    with session_factory(app.state.engine)() as s:
        return s.query(StixObject).count()


def test_discovery_api_root_and_collections(service):
    server = Server(f"{service['url']}/taxii2/", user="whoever", password=service["token"])
    assert server.title == "necoma exchange"
    root: ApiRoot = server.api_roots[0]
    assert server.default.url == root.url and root.url.endswith("/taxii2/root/")
    assert TAXII in root.versions and root.max_content_length == 200_000
    titles = {c.title: c for c in root.collections}
    assert set(titles) == {"csirts", "public"}
    assert titles["csirts"].can_read and titles["csirts"].can_write
    assert titles["public"].media_types == ["application/stix+json;version=2.1"]


def test_bearer_and_basic_auth_and_failures(service):
    url = f"{service['url']}/taxii2/"
    assert httpx.get(url, headers={"Authorization": f"Bearer {service['token']}"}).status_code == 200
    assert httpx.get(url, auth=("anything", service["token"])).status_code == 200
    r = httpx.get(url)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    assert r.headers["content-type"] == TAXII
    assert httpx.get(url, headers={"Authorization": "Bearer necoma_000000000000_nope"}).status_code == 401
    assert httpx.get(url, auth=("u", service["token"][:-1] + "x")).status_code == 401
    r = httpx.get(url, headers={"Authorization": f"Bearer {service['token']}", "Accept": "text/html"})
    assert r.status_code == 406


def test_add_get_paginate_and_headers(service):
    col = _col(service)
    objs = [indicator(f"10.0.0.{i}") for i in range(120)]
    status = col.add_objects(json.dumps({"objects": objs}))
    assert (status.status, status.success_count, status.failure_count, status.total_count) == ("complete", 120, 0, 120)
    assert {s["id"] for s in status.successes} == {o["id"] for o in objs}
    seen = []
    for envelope in as_pages(col.get_objects, per_request=25):
        seen += [o["id"] for o in envelope.get("objects", [])]
    assert sorted(seen) == sorted(o["id"] for o in objs) and len(seen) == 120
    # The server caps a page at page_limit and says there is more.
    r = httpx.get(col.url + "objects/", params={"limit": 1000}, auth=("u", service["token"]))
    body = r.json()
    assert r.headers["content-type"] == TAXII and len(body["objects"]) == 50 and body["more"] and body["next"]
    assert r.headers["X-TAXII-Date-Added-First"] <= r.headers["X-TAXII-Date-Added-Last"]
    manifest = col.get_manifest(limit=10)
    assert len(manifest["objects"]) == 10 and manifest["more"]
    assert manifest["objects"][0]["media_type"] == "application/stix+json;version=2.1"
    one = col.get_object(objs[5]["id"])
    assert one["objects"] == [objs[5]]


def test_filters_and_versions(service):
    col = _col(service)
    first = indicator("192.0.2.1")
    col.add_objects(json.dumps({"objects": [first]}))
    time.sleep(0.01)
    mid = httpx.get(col.url + "objects/", auth=("u", service["token"])).headers["X-TAXII-Date-Added-Last"]
    second = dict(first, modified="2099-01-01T00:00:00.000Z", name="updated")
    ident = json.loads(stix2.v21.Identity(name="acme", identity_class="organization").serialize())
    col.add_objects(json.dumps({"objects": [second, ident]}))
    oid = first["id"]

    assert [o.get("name") for o in col.get_objects(id=oid)["objects"]] == ["updated"]  # last by default
    assert col.get_objects(id=oid, version="first")["objects"] == [first]
    assert len(col.get_objects(id=oid, version="all")["objects"]) == 2
    assert len(col.get_objects(id=oid, version=["first", "last"])["objects"]) == 2
    got = col.get_objects(id=oid, version=first["modified"])["objects"]
    assert got == [first]
    assert [o["type"] for o in col.get_objects(type="identity")["objects"]] == ["identity"]
    assert len(col.get_objects(type=["identity", "indicator"])["objects"]) == 2
    assert len(col.get_objects(spec_version="2.1")["objects"]) == 2
    assert col.get_objects(spec_version="2.0").get("objects", []) == []
    after = col.get_objects(added_after=mid, version="all")["objects"]
    assert {o["id"] for o in after} == {oid, ident["id"]} and len(after) == 2
    versions = col.object_versions(oid)["versions"]
    assert versions == [format_us(parse_us(first["modified"])), "2099-01-01T00:00:00.000000Z"]
    assert col.get_object(oid, version="first")["objects"] == [first]
    r = httpx.get(col.url + "objects/", params={"added_after": "yesterday"}, auth=("u", service["token"]))
    assert r.status_code == 400 and r.json()["title"] == "Bad filter"


def test_delete_and_status(service):
    col = _col(service)
    obj = indicator("198.51.100.7")
    status = col.add_objects(json.dumps({"objects": [obj, dict(obj, modified="2099-01-01T00:00:00Z")]}))
    resource = ApiRoot(f"{service['url']}/taxii2/root/", user="u", password=service["token"]).get_status(status.id)
    assert resource.status == "complete" and resource.success_count == 2
    col.delete_object(obj["id"], version="first")
    assert len(col.object_versions(obj["id"])["versions"]) == 1
    col.delete_object(obj["id"])
    r = httpx.get(col.url + f"objects/{obj['id']}/", auth=("u", service["token"]))
    assert r.status_code == 404


def test_resending_is_idempotent(service):
    col = _col(service)
    obj = indicator("203.0.113.9")
    for _ in range(2):
        assert col.add_objects(json.dumps({"objects": [obj]})).success_count == 1
    assert _count(service["app"]) == 1


@pytest.mark.parametrize("body, code", [
    (b"not json", 400),
    (b'{"objects": "x"}', 400),
    (b'{"objects": []}', 400),
    (b'{"more": false}', 400),
])
def test_malformed_envelopes(service, body, code):
    col = _col(service)
    r = httpx.post(col.url + "objects/", content=body, auth=("u", service["token"]),
                   headers={"Content-Type": TAXII, "Accept": TAXII})
    assert r.status_code == code and r.headers["content-type"] == TAXII and r.json()["title"]
    assert _count(service["app"]) == 0


def test_malformed_stix_rejects_whole_envelope(service):
    col = _col(service)
    good = indicator("10.9.9.9")
    bad = [
        {"type": "indicator", "id": "indicator--not-a-uuid"},
        dict(indicator("10.9.9.8"), pattern="[ipv4-addr:value = "),
        dict(indicator("10.9.9.7"), x_custom="custom properties are refused"),
        dict(indicator("10.9.9.6"), spec_version="2.0"),
        dict(indicator("10.9.9.5"), created="2030-01-01T00:00:00.000Z"),  # modified before created
        dict(indicator("10.9.9.4"), confidence=101),
        dict(indicator("10.9.9.3"), type={"not": "a type"}),
        "a string",
    ]
    r = httpx.post(col.url + "objects/", content=json.dumps({"objects": [good, *bad]}), auth=("u", service["token"]),
                   headers={"Content-Type": TAXII})
    assert r.status_code == 422
    details = r.json()["details"]
    assert details["failure_count"] == len(bad) + 1 and details["success_count"] == 0
    assert any(f["id"] == good["id"] and "not stored" in f["message"] for f in details["failures"])
    assert any("pattern" in f["message"] for f in details["failures"])
    assert any("x_custom" in f["message"] for f in details["failures"])
    assert any("'modified'" in f["message"] and "earlier than 'created'" in f["message"] for f in details["failures"])
    assert any("'confidence' must be 0-100" in f["message"] for f in details["failures"])
    assert _count(service["app"]) == 0  # the good object was not stored either
    # the status resource records the failures per object
    st = ApiRoot(f"{service['url']}/taxii2/root/", user="u", password=service["token"]).get_status(details["id"])
    assert st.failure_count == len(bad) + 1


def test_oversized_and_wrong_media_type(service):
    col = _col(service)
    big = {"objects": [indicator(f"10.1.{i // 250}.{i % 250}") for i in range(600)]}
    raw = json.dumps(big).encode()
    assert len(raw) > 200_000
    r = httpx.post(col.url + "objects/", content=raw, auth=("u", service["token"]), headers={"Content-Type": TAXII})
    assert r.status_code == 413
    # chunked, without Content-Length: the limit still holds
    r = httpx.post(col.url + "objects/", content=iter([raw[i:i + 65536] for i in range(0, len(raw), 65536)]),
                   auth=("u", service["token"]), headers={"Content-Type": TAXII})
    assert r.status_code == 413
    r = httpx.post(col.url + "objects/", content=json.dumps({"objects": [indicator("10.0.0.1")]}),
                   auth=("u", service["token"]), headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    assert _count(service["app"]) == 0


def test_public_collection_takes_clear_only(service):
    pub = _col(service, "public")
    assert pub.add_objects(json.dumps({"objects": [indicator("10.2.0.1", "clear")]})).success_count == 1
    for level in ("green", "amber", "amber+strict", "red"):
        r = httpx.post(pub.url + "objects/", content=json.dumps({"objects": [indicator("10.2.0.2", level)]}),
                       auth=("u", service["token"]), headers={"Content-Type": TAXII})
        assert r.status_code == 422, level
    unmarked = json.loads(stix2.v21.Indicator(pattern="[ipv4-addr:value = '10.2.0.3']", pattern_type="stix").serialize())
    r = httpx.post(pub.url + "objects/", content=json.dumps({"objects": [unmarked]}),
                   auth=("u", service["token"]), headers={"Content-Type": TAXII})
    assert r.status_code == 422  # unmarked counts as TLP:AMBER
    assert _count(service["app"]) == 1


def test_rate_limit_per_key(tmp_path):
    settings = ExchangeSettings(rate_burst=5, rate_per_second=0.5)
    app = create_app(database_url("sqlite", tmp_path), settings)
    with session_factory(app.state.engine).begin() as s:
        admin.add_org(s, "o")
        _, k1 = admin.create_key(s, "o", "reader")
        _, k2 = admin.create_key(s, "o", "reader")
    with ServerThread(app) as srv:
        codes = [httpx.get(f"{srv.url}/taxii2/", auth=("u", k1)).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = httpx.get(f"{srv.url}/taxii2/", auth=("u", k1))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert httpx.get(f"{srv.url}/taxii2/", auth=("u", k2)).status_code == 200  # other keys unaffected


def test_revoked_key_stops_working(tmp_path):
    app = create_app(database_url("sqlite", tmp_path))
    sessions = session_factory(app.state.engine)
    with sessions.begin() as s:
        admin.add_org(s, "o")
        row, key = admin.create_key(s, "o", "reader")
        key_id = row.key_id
    with ServerThread(app) as srv:
        assert httpx.get(f"{srv.url}/taxii2/", auth=("u", key)).status_code == 200
        with sessions.begin() as s:
            admin.revoke_key(s, key_id)
        assert httpx.get(f"{srv.url}/taxii2/", auth=("u", key)).status_code == 401
