"""Authorization matrix: every TAXII endpoint × role × TLP level × own/other organization × collection membership.

The expected outcome of each request comes from a small oracle written from
the sharing rules (docs/exchange.md), independently of necoma.exchange.access;
every disagreement is collected and reported together. Runs on SQLite and
PostgreSQL against a real uvicorn server.
"""
from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass

import httpx
import pytest
import stix2

from necoma.config import ExchangeSettings
from necoma.exchange import access, admin, tlp
from necoma.exchange.db import session_factory
from necoma.exchange.models import StixObject
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url

TAXII = "application/taxii+json;version=2.1"
ORGS = ("A", "B", "D", "C")  # A, B, D share group G; C is an outsider with its own group H
ROLES = ("reader", "analyst", "admin")
MEMBERS = {"G": {"A", "B", "D"}, "H": {"C"}, "public": set(ORGS)}


@dataclass(frozen=True)
class Obj:
    id: str
    collection: str  # G, H or public
    owner: str
    level: str
    recipients: frozenset[str] = frozenset()


def make(level: str, n: int = 0) -> dict:
    return json.loads(stix2.v21.Indicator(
        pattern=f"[domain-name:value = 'l{n}.example.org']", pattern_type="stix",
        valid_from="2024-01-01T00:00:00Z", object_marking_refs=[tlp.TLP2_IDS[level]],
    ).serialize())


def sees(org: str, o: Obj) -> bool:
    """The oracle: may `org` read object `o`?"""
    if org not in MEMBERS[o.collection]:
        return False
    if o.level in ("clear", "green", "amber"):
        return True
    if o.level == "amber+strict":
        return org == o.owner
    return org == o.owner or org in o.recipients  # red


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    settings = ExchangeSettings(rate_burst=100_000, rate_per_second=100_000)
    app = create_app(database_url(request.param, tmp_path), settings)
    sessions = session_factory(app.state.engine)
    keys: dict[tuple[str, str], str] = {}
    with sessions.begin() as s:
        for org in ORGS:
            admin.add_org(s, org)
            for role in ROLES:
                keys[org, role] = admin.create_key(s, org, role)[1]
        cols = {"public": admin.ensure_public_collection(s).id}
        for g, members in (("G", "ABD"), ("H", "C")):
            cols[g] = admin.add_group(s, g)[1].id
            for m in members:
                admin.add_member(s, g, m)
    with ServerThread(app) as srv, httpx.Client(timeout=30) as client:
        yield World(srv.url, keys, cols, sessions, client)
    app.state.engine.dispose()


@dataclass
class World:
    url: str
    keys: dict[tuple[str, str], str]
    cols: dict[str, str]
    sessions: object
    client: httpx.Client  # one client: a new one per request would build a TLS context every time

    def col_url(self, col: str) -> str:
        return f"{self.url}/taxii2/root/collections/{self.cols[col]}/"

    def req(self, method: str, org: str, role: str, path: str, **kw) -> httpx.Response:
        headers = {"Accept": TAXII, **kw.pop("headers", {})}
        return self.client.request(method, path, auth=("user", self.keys[org, role]), headers=headers, **kw)

    def post(self, org: str, role: str, col: str, objects: list[dict], recipients: str = "") -> httpx.Response:
        headers = {"Content-Type": TAXII}
        if recipients:
            headers["X-Necoma-Recipients"] = recipients
        return self.req("POST", org, role, self.col_url(col) + "objects/", headers=headers,
                        content=json.dumps({"objects": objects}))

    def rows(self) -> list[StixObject]:
        with self.sessions() as s:
            return list(s.query(StixObject))


def _seed(w: World) -> list[Obj]:
    objs: list[Obj] = []
    for owner, n in (("A", 0), ("B", 100)):
        for i, level in enumerate(tlp.LEVELS):
            body = make(level, n + i)
            recipients = "B" if (owner == "A" and level == "red") else ""
            r = w.post(owner, "analyst", "G", [body], recipients)
            assert r.status_code == 202, r.text
            objs.append(Obj(body["id"], "G", owner, level, frozenset(recipients.split(",")) - {""}))
    body = make("clear", 200)
    assert w.post("A", "analyst", "public", [body]).status_code == 202
    objs.append(Obj(body["id"], "public", "A", "clear"))
    body = make("green", 300)
    assert w.post("C", "analyst", "H", [body]).status_code == 202
    objs.append(Obj(body["id"], "H", "C", "green"))
    return objs


def _all_ids(w: World, org: str, role: str, col: str, endpoint: str) -> set[str] | int:
    """Every id listed by `endpoint` (objects or manifest) over all pages, or the HTTP status on error."""
    ids, params = set(), {"limit": "3", "match[version]": "all"}
    while True:
        r = w.req("GET", org, role, w.col_url(col) + endpoint, params=params)
        if r.status_code != 200:
            return r.status_code
        body = r.json()
        ids |= {o["id"] for o in body.get("objects", [])}
        if not body.get("more"):
            return ids
        params = {**params, "next": body["next"]}


def test_authorization_matrix(world: World):
    w = world
    objs = _seed(w)
    wrong: list[str] = []

    def check(what: str, got, expected) -> None:
        if got != expected:
            wrong.append(f"{what}: got {got}, expected {expected}")

    # --- reads -------------------------------------------------------------------------------------------
    for org, role in itertools.product(ORGS, ROLES):
        who = f"{org}/{role}"
        listed = {c["title"] for c in w.req("GET", org, role, f"{w.url}/taxii2/root/collections/").json()["collections"]}
        check(f"{who} collections", listed, {c for c, m in MEMBERS.items() if org in m})
        for col in ("G", "H", "public"):
            member = org in MEMBERS[col]
            check(f"{who} GET collection {col}", w.req("GET", org, role, w.col_url(col)).status_code,
                  200 if member else 404)
            expected = {o.id for o in objs if o.collection == col and sees(org, o)} if member else 404
            for endpoint in ("objects/", "manifest/"):
                check(f"{who} list {endpoint} {col}", _all_ids(w, org, role, col, endpoint), expected)
        for o in objs:
            code = 200 if sees(org, o) else 404
            base = w.col_url(o.collection) + f"objects/{o.id}/"
            what = f"{who} {o.owner}'s {o.level} in {o.collection}"
            check(f"{what} GET object", w.req("GET", org, role, base).status_code, code)
            check(f"{what} GET versions", w.req("GET", org, role, base + "versions/").status_code, code)
            if org in MEMBERS[o.collection]:
                r = w.req("GET", org, role, w.col_url(o.collection) + "objects/", params={"match[id]": o.id})
                check(f"{what} match[id]", len(r.json().get("objects", [])), 1 if sees(org, o) else 0)

    # The SQL predicate and its Python twin agree with the oracle for every principal and row.
    with w.sessions() as s:
        by_id = {o.id: o for o in objs}
        for org in ORGS:
            p = admin.authenticate(s, w.keys[org, "reader"])
            visible_sql = {r.stix_id for r in s.query(StixObject).filter(access.visible(p))}
            for row in s.query(StixObject):
                o = by_id[row.stix_id]
                in_col = org in MEMBERS[o.collection]
                check(f"can_see {org} {o.level}/{o.owner}", in_col and access.can_see(s, p, row), sees(org, o))
                check(f"visible() {org} {o.level}/{o.owner}", in_col and row.stix_id in visible_sql, sees(org, o))

    # --- writes: new objects of every level into every collection -------------------------------------------
    before = len(w.rows())
    accepted = 0
    for (org, role), col, level in itertools.product(itertools.product(ORGS, ROLES), ("G", "H", "public"), tlp.LEVELS):
        if org not in MEMBERS[col]:
            expected = 404
        elif role == "reader":
            expected = 403
        elif col == "public" and level != "clear":
            expected = 422
        else:
            expected = 202
        accepted += expected == 202
        got = w.post(org, role, col, [make(level, 1000)]).status_code
        check(f"{org}/{role} POST {level} into {col}", got, expected)
    check("objects stored by the write matrix", len(w.rows()) - before, accepted)

    # --- writes: a new version of every existing object ----------------------------------------------------
    before = len(w.rows())
    accepted = 0
    for (org, role), o in itertools.product(itertools.product(ORGS, ROLES), objs):
        body = make(o.level, 5000)
        body.update(id=o.id, modified=f"2030-01-01T00:00:00.{uuid.uuid4().int % 10**6:06d}Z")
        if org not in MEMBERS[o.collection]:
            expected = 404
        elif role == "reader":
            expected = 403
        elif org != o.owner:
            expected = 422  # an id belongs to the organization that first shared it
        else:
            expected = 202
        accepted += expected == 202
        check(f"{org}/{role} POST version of {o.owner}'s {o.level} in {o.collection}",
              w.post(org, role, o.collection, [body]).status_code, expected)
    check("versions stored by the version matrix", len(w.rows()) - before, accepted)

    # --- status resources belong to the organization that posted ----------------------------------------------
    r = w.post("A", "analyst", "G", [make("green", 7000)])
    status_url = f"{w.url}/taxii2/root/status/{r.json()['id']}/"
    for org, role in itertools.product(ORGS, ROLES):
        check(f"{org}/{role} GET A's status", w.req("GET", org, role, status_url).status_code, 200 if org == "A" else 404)

    # --- deletes: everyone but the owner's admin fails, and nothing goes ---------------------------------------
    before = len(w.rows())
    for (org, role), o in itertools.product(itertools.product(ORGS, ROLES), objs):
        if org == o.owner and role == "admin":
            continue
        expected = 404 if not sees(org, o) else 403
        got = w.req("DELETE", org, role, w.col_url(o.collection) + f"objects/{o.id}/").status_code
        check(f"{org}/{role} DELETE {o.owner}'s {o.level} in {o.collection}", got, expected)
    check("rows after refused deletes", len(w.rows()), before)
    for o in objs:
        got = w.req("DELETE", o.owner, "admin", w.col_url(o.collection) + f"objects/{o.id}/").status_code
        check(f"{o.owner}/admin DELETE own {o.level}", got, 200)
    remaining = {r.stix_id for r in w.rows()}
    check("deleted objects gone", remaining & {o.id for o in objs}, set())

    assert not wrong, f"{len(wrong)} authorization violations:\n" + "\n".join(wrong[:60])
