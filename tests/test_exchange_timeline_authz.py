"""Timeline authorization matrix: every read endpoint × organization × role × audience (public, organization,
sharing group at each TLP level, TLP:RED to named organizations, lists), plus stars, follows, lists and replies.

The expected audience of each post is written out by hand below (the oracle),
independently of necoma.exchange.timeline.posts; all disagreements are
reported together. Runs on SQLite and PostgreSQL against a real server.
"""
from __future__ import annotations

import itertools
import json

import httpx
import pytest

from necoma.config import ExchangeSettings
from necoma.exchange import admin
from necoma.exchange.db import session_factory
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url

ORGS = ("A", "B", "C", "D")  # A, B, D share group G; C is alone in group H
ROLES = ("reader", "analyst", "admin")

# (author org, text, request fields, the organizations that may read it)
POSTS = [
    ("A", "p-public", {}, "ABCD"),
    ("A", "p-org", {"tlp": "amber+strict"}, "A"),
    ("A", "p-G-clear", {"group": "G", "tlp": "clear"}, "ABD"),
    ("A", "p-G-green", {"group": "G", "tlp": "green"}, "ABD"),
    ("A", "p-G-amber", {"group": "G"}, "ABD"),
    ("A", "p-G-strict", {"group": "G", "tlp": "amber+strict"}, "A"),
    ("A", "p-G-red for @B", {"group": "G", "tlp": "red"}, "AB"),
    ("A", "p-red for @C", {"tlp": "red"}, "AC"),
    ("A", "p-list-green", {"list": "L1", "tlp": "green"}, "AB"),
    ("A", "p-list-amber", {"list": "L1"}, "AB"),
    ("A", "p-list-red", {"list": "L1", "tlp": "red"}, "AB"),
    ("C", "p-H-green", {"group": "H", "tlp": "green"}, "C"),
    ("B", "p-G-amber-B", {"group": "G"}, "ABD"),
    ("D", "p-red-D for @A", {"tlp": "red"}, "AD"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    app = create_app(database_url(request.param, tmp_path), ExchangeSettings(rate_burst=100_000, rate_per_second=100_000))
    keys = {}
    with session_factory(app.state.engine).begin() as s:
        for org in ORGS:
            admin.add_org(s, org)
            for role in ROLES:
                keys[org, role] = admin.create_key(s, org, role, user=f"{role}-{org}")[1]
        for g, members in (("G", "ABD"), ("H", "C")):
            admin.add_group(s, g)
            for m in members:
                admin.add_member(s, g, m)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as c:
        yield c, keys
    app.state.engine.dispose()


def _all_texts(c, key, path, **params) -> set[str] | int:
    out, before = set(), None
    while True:
        r = c.get(path, params={**params, "limit": 4, **({"before_id": before} if before else {})}, auth=("u", key))
        if r.status_code != 200:
            return r.status_code
        page = r.json()["posts"]
        out |= {p["text"] for p in page}
        if len(page) < 4:
            return out
        before = page[-1]["id"]


def _stream_texts(c, key) -> set[str]:
    """Everything the stream sends from the beginning, until its first heartbeat."""
    out = set()
    with c.stream("GET", "/stream", params={"pattern": r"^(p|r)-", "since_id": 0, "heartbeat": 0.5},
                  auth=("u", key)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line:
                continue
            item = json.loads(line)
            if "heartbeat" in item:
                return out
            out.add(item["post"]["text"])
    return out


def test_timeline_authorization_matrix(world):
    c, keys = world
    wrong: list[str] = []

    def check(what, got, expected):
        if got != expected:
            wrong.append(f"{what}: got {got}, expected {expected}")

    a = ("u", keys["A", "analyst"])
    assert c.post("/lists", json={"name": "L1", "members": ["B"]}, auth=a).status_code == 201
    ids = {}
    for org, text, kw, _ in POSTS:
        r = c.post("/posts", json={"text": text + " #m", **kw}, auth=("u", keys[org, "analyst"]))
        assert r.status_code == 201, (text, r.text)
        ids[text] = r.json()["id"]
    # A list is an audience fixed when posting: adding C later shows C nothing of the past.
    assert c.post("/lists/L1/members", json={"org": "C"}, auth=a).status_code == 200
    audience = {text + " #m": set(aud) for _, text, _, aud in POSTS}

    for org, role in itertools.product(ORGS, ROLES):
        who, key = f"{org}/{role}", keys[org, role]
        expected = {t for t, aud in audience.items() if org in aud}
        check(f"{who} GET /posts", _all_texts(c, key, "/posts"), expected)
        check(f"{who} tag search", _all_texts(c, key, "/posts", tag="m"), expected)
        check(f"{who} text search", _all_texts(c, key, "/posts", q="p-"), expected)
        check(f"{who} mention @B", _all_texts(c, key, "/posts", mention="B"),
              {t for t in expected if "@B" in t})
        for text, pid in ids.items():
            code = 200 if org in audience[text + " #m"] else 404
            check(f"{who} GET post {text}", c.get(f"/posts/{pid}", auth=("u", key)).status_code, code)
            check(f"{who} star {text}", c.put(f"/posts/{pid}/star", auth=("u", key)).status_code, code)
        check(f"{who} /stars", _all_texts(c, key, "/stars"), expected)
        for target in ORGS:
            assert c.post("/follows", json={"target": target}, auth=("u", key)).status_code == 201
        check(f"{who} /home following everyone", _all_texts(c, key, "/home"), expected)
        if role != "reader":
            lst = f"all-{role}"
            assert c.post("/lists", json={"name": lst, "members": list(ORGS)}, auth=("u", key)).status_code == 201
            check(f"{who} list timeline", _all_texts(c, key, f"/lists/{lst}/posts"), expected)
        else:
            check(f"{who} creates a list", c.post("/lists", json={"name": "x"}, auth=("u", key)).status_code, 403)
        check(f"{who} stream", _stream_texts(c, key), expected)
    check("C reads A's list", c.get("/lists/L1/posts", auth=("u", keys["C", "analyst"])).status_code, 404)

    # Replies: readers cannot; nobody can answer what they cannot see; a reply never reaches further than its parent.
    replies = {}
    for org, (text, pid) in itertools.product(ORGS, ids.items()):
        parent_aud = audience[text + " #m"]
        check(f"{org}/reader reply to {text}",
              c.post("/posts", json={"text": "r-x", "reply_to": pid}, auth=("u", keys[org, "reader"])).status_code, 403)
        r = c.post("/posts", json={"text": f"r-{org}-{pid}", "reply_to": pid}, auth=("u", keys[org, "analyst"]))
        check(f"{org}/analyst reply to {text}", r.status_code, 201 if org in parent_aud else 404)
        if r.status_code == 201:
            replies[f"r-{org}-{pid}"] = parent_aud
    for org in ORGS:
        seen = {t for t in _all_texts(c, keys[org, "reader"], "/posts", q="r-")}
        for text, parent_aud in replies.items():
            if text in seen and org not in parent_aud:
                wrong.append(f"{org} sees reply {text} to a post it may not read")
    assert replies and not wrong, f"{len(wrong)} timeline authorization violations:\n" + "\n".join(wrong[:60])


def test_follows_lists_and_stars(world):
    c, keys = world
    a, b, d = (("u", keys[o, "analyst"]) for o in "ABD")
    for who, text in ((b, "from B"), (d, "from D"), (("u", keys["B", "admin"]), "from B's admin")):
        assert c.post("/posts", json={"text": text}, auth=who).status_code == 201
    assert c.post("/follows", json={"target": "B/analyst-B"}, auth=a).status_code == 201
    assert {p["text"] for p in c.get("/home", auth=a).json()["posts"]} == {"from B"}
    assert c.post("/follows", json={"target": "D"}, auth=a).json()["following"] == ["B/analyst-B", "D"]
    assert {p["text"] for p in c.get("/home", auth=a).json()["posts"]} == {"from B", "from D"}
    assert c.delete("/follows/D", auth=a).status_code == 200
    assert c.delete("/follows/D", auth=a).status_code == 404
    assert c.post("/follows", json={"target": "nobody"}, auth=a).status_code == 404
    assert c.get("/follows", auth=("u", keys["A", "reader"])).json()["following"] == []  # follows are per account

    assert c.post("/lists", json={"name": "peers", "members": ["B"]}, auth=a).status_code == 201
    assert c.post("/lists", json={"name": "peers"}, auth=a).status_code == 400
    assert c.post("/lists", json={"name": "bad", "members": ["nobody"]}, auth=a).status_code == 404
    assert {p["text"] for p in c.get("/lists/peers/posts", auth=a).json()["posts"]} == {"from B", "from B's admin"}
    assert c.get("/lists", auth=("u", keys["A", "reader"])).json()["lists"] == [{"name": "peers", "members": ["B"]}]
    assert c.get("/lists", auth=b).json()["lists"] == []  # lists belong to their organization
    assert c.delete("/lists/peers/members/B", auth=a).json()["lists"] == [{"name": "peers", "members": []}]
    assert c.post("/posts", json={"text": "x", "list": "peers", "tlp": "clear"}, auth=a).status_code == 400
    assert c.post("/posts", json={"text": "x", "list": "peers", "group": "G"}, auth=a).status_code == 400
    assert c.post("/posts", json={"text": "x", "list": "nope"}, auth=a).status_code == 404
    assert c.delete("/lists/peers", auth=a).json()["lists"] == []

    pid = c.get("/posts", auth=a).json()["posts"][0]["id"]
    assert c.put(f"/posts/{pid}/star", auth=a).status_code == 200
    assert c.put(f"/posts/{pid}/star", auth=a).status_code == 200  # idempotent
    assert c.put(f"/posts/{pid}/star", auth=b).status_code == 200
    assert c.get(f"/posts/{pid}", auth=a).json()["post"]["stars"] == 2
    assert [p["id"] for p in c.get("/stars", auth=a).json()["posts"]] == [pid]
    assert c.delete(f"/posts/{pid}/star", auth=a).status_code == 200
    assert c.get("/stars", auth=a).json()["posts"] == []
    assert c.put("/posts/999999/star", auth=a).status_code == 404
