"""The timeline (NECOMAtter): posts, markdown, tags, mentions, replies, TLP visibility, regex streams for bots."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from necoma.exchange import admin
from necoma.exchange.db import session_factory
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def tl(request, tmp_path):
    app = create_app(database_url(request.param, tmp_path))
    keys = {}
    with session_factory(app.state.engine).begin() as s:
        for org in ("A", "B", "C"):
            admin.add_org(s, org)
            keys[org] = admin.create_key(s, org, "analyst", user=f"alice-{org}")[1]
        keys["A-reader"] = admin.create_key(s, "A", "reader")[1]
        keys["bot"] = admin.create_key(s, "B", "analyst", label="ioc-bot")[1]
        admin.add_group(s, "G")
        admin.add_member(s, "G", "A")
        admin.add_member(s, "G", "B")
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as c:
        yield c, keys
    app.state.engine.dispose()


def post(c, keys, who, text, **kw):
    return c.post("/posts", json={"text": text, **kw}, auth=("u", keys[who]))


def visible_texts(c, keys, who, **params) -> set[str]:
    return {p["text"] for p in c.get("/posts", params=params, auth=("u", keys[who])).json()["posts"]}


def test_post_markdown_tags_mentions(tl):
    c, keys = tl
    r = post(c, keys, "A", "**Botnet** seen: #GameOverZeus #c2 talk to @B <script>alert(1)</script> `10.0.0.1`")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["tags"] == ["c2", "gameoverzeus"] and p["mentions"] == ["B"]
    assert "<strong>Botnet</strong>" in p["html"] and "<script>" not in p["html"] and "&lt;script&gt;" in p["html"]
    assert p["author"] == "alice-A" and p["organization"] == "A" and p["tlp"] == "clear" and p["group"] is None
    assert post(c, keys, "A-reader", "hello").status_code == 403
    assert post(c, keys, "C", "x", group="G").status_code == 403
    assert post(c, keys, "A", "x", tlp="green").status_code == 400  # no audience without a group
    assert post(c, keys, "A", "").status_code in (400, 422)
    assert c.get("/posts").status_code == 401


def test_visibility_follows_tlp(tl):
    c, keys = tl
    for text, kw in {
        "public": {},
        "org-only": {"tlp": "amber+strict"},
        "group-green": {"group": "G", "tlp": "green"},
        "group-strict": {"group": "G", "tlp": "amber+strict"},
        "red to @C": {"tlp": "red"},
        "group-red": {"group": "G", "tlp": "red"},
    }.items():
        assert post(c, keys, "A", text, **kw).status_code == 201
    assert visible_texts(c, keys, "A") == {"public", "org-only", "group-green", "group-strict", "red to @C", "group-red"}
    assert visible_texts(c, keys, "B") == {"public", "group-green"}
    assert visible_texts(c, keys, "C") == {"public", "red to @C"}


def test_replies_never_widen_the_audience(tl):
    c, keys = tl
    root = post(c, keys, "A", "group thread #ddos", group="G", tlp="amber").json()
    reply = post(c, keys, "B", "same here, from 198.51.100.7", reply_to=root["id"]).json()
    assert (reply["group"], reply["tlp"]) == ("G", "amber")  # asked for public, stays in the group
    assert "same here, from 198.51.100.7" not in visible_texts(c, keys, "C")
    red = post(c, keys, "A", "only for @B", tlp="red").json()
    r2 = post(c, keys, "B", "thanks", reply_to=red["id"]).json()
    assert r2["tlp"] == "red" and set(r2["mentions"]) == {"A", "B"}
    assert "thanks" not in visible_texts(c, keys, "C")
    assert post(c, keys, "C", "sneaky", reply_to=red["id"]).status_code == 404  # C cannot see it: no such post
    t = c.get(f"/posts/{root['id']}", auth=("u", keys["A"])).json()
    assert t["post"]["id"] == root["id"] and [x["id"] for x in t["replies"]] == [reply["id"]]
    assert c.get(f"/posts/{root['id']}", auth=("u", keys["C"])).status_code == 404


def test_search(tl):
    c, keys = tl
    post(c, keys, "A", "phishing wave #phish against @B")
    post(c, keys, "A", "scanner 203.0.113.9 #scan")
    assert visible_texts(c, keys, "B", tag="phish") == {"phishing wave #phish against @B"}
    assert visible_texts(c, keys, "B", tag="#SCAN") == {"scanner 203.0.113.9 #scan"}
    assert visible_texts(c, keys, "B", mention="@B") == {"phishing wave #phish against @B"}
    assert visible_texts(c, keys, "B", q="203.0.113") == {"scanner 203.0.113.9 #scan"}
    assert visible_texts(c, keys, "B", q="%") == set()  # LIKE wildcards are literal


def _collect(c, key, params, out: list, stop: threading.Event, fmt_sse=False):
    headers = {"Accept": "text/event-stream"} if fmt_sse else {}
    with c.stream("GET", "/stream", params=params, auth=("u", key), headers=headers, timeout=30) as r:
        out.append(("status", r.status_code, r.headers.get("content-type")))
        for line in r.iter_lines():
            if line:
                out.append(line)
            if stop.is_set():
                break


def test_stream_delivers_matching_visible_posts_with_groups(tl):
    c, keys = tl
    out, stop = [], threading.Event()
    pattern = r"(?P<ip>\d{1,3}(?:\.\d{1,3}){3})(?:\s+port\s+(\d+))?"
    t = threading.Thread(target=_collect, args=(c, keys["bot"], {"pattern": pattern, "heartbeat": 0.5}, out, stop),
                         daemon=True)
    t.start()
    time.sleep(1.0)
    post(c, keys, "A", "C&C at 203.0.113.7 port 443 #zeus")
    post(c, keys, "A", "nothing to match here")
    post(c, keys, "A", "secret 10.9.9.9", tlp="amber+strict")  # not visible to the bot's organization
    post(c, keys, "C", "outsider 192.0.2.1 port 53", tlp="red")  # red, B not named
    post(c, keys, "A", "in the group 198.51.100.1", group="G")
    deadline = time.time() + 10
    while time.time() < deadline and sum('"post"' in x for x in out if isinstance(x, str)) < 2:
        time.sleep(0.1)
    time.sleep(1.2)  # room for heartbeats and for anything that should not arrive
    stop.set()
    post(c, keys, "A", "wake the stream 1.1.1.1")
    t.join(timeout=10)
    assert out[0][1] == 200 and out[0][2].startswith("application/x-ndjson")
    items = [json.loads(x) for x in out[1:]]
    got = [i for i in items if "post" in i]
    assert [i["post"]["text"] for i in got][:2] == ["C&C at 203.0.113.7 port 443 #zeus", "in the group 198.51.100.1"]
    assert got[0]["named"] == {"ip": "203.0.113.7"} and got[0]["groups"] == ["203.0.113.7", "443"]
    assert got[1]["groups"] == ["198.51.100.1", None]
    assert any("heartbeat" in i for i in items)


def test_stream_sse_and_bad_patterns(tl):
    c, keys = tl
    assert c.get("/stream", params={"pattern": "("}, auth=("u", keys["bot"])).status_code == 400
    assert c.get("/stream", params={"pattern": "x" * 501}, auth=("u", keys["bot"])).status_code == 400
    out, stop = [], threading.Event()
    # A catastrophic pattern: the post that triggers backtracking is skipped, the stream goes on.
    pattern = r"^(a+a+)+b$|(?P<hit>hit-\d+)"
    t = threading.Thread(target=_collect, args=(c, keys["bot"], {"pattern": pattern}, out, stop, True), daemon=True)
    t.start()
    time.sleep(1.0)
    post(c, keys, "A", "a" * 3000)
    post(c, keys, "A", "hit-42")
    deadline = time.time() + 10
    while time.time() < deadline and not any("hit-42" in x for x in out if isinstance(x, str)):
        time.sleep(0.1)
    stop.set()
    post(c, keys, "A", "hit-43")
    t.join(timeout=10)
    assert out[0][1] == 200 and out[0][2].startswith("text/event-stream")
    data = [json.loads(x[len("data: "):]) for x in out[1:] if isinstance(x, str) and x.startswith("data: ")]
    assert data and data[0]["post"]["text"] == "hit-42" and data[0]["named"] == {"hit": "hit-42"}
    assert any(x.startswith("event: post") for x in out[1:] if isinstance(x, str))


def test_oversized_and_malformed_posts_store_nothing(tmp_path):
    from necoma.config import ExchangeSettings

    app = create_app(database_url("sqlite", tmp_path), ExchangeSettings(max_request_bytes=16384))
    with session_factory(app.state.engine).begin() as s:
        admin.add_org(s, "A")
        key = admin.create_key(s, "A", "analyst")[1]
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as c:
        auth = ("u", key)
        r = c.post("/posts", json={"text": "big", "attachment": "x" * 20000}, auth=auth)
        assert r.status_code == 413 and "limited to 16384 bytes" in r.json()["description"]
        chunked = c.post("/posts", content=iter([b'{"text": "big", "attachment": "', b"x" * 20000, b'"}']),
                         headers={"Content-Type": "application/json"}, auth=auth)
        assert chunked.status_code == 413  # no Content-Length: counted while it arrives
        assert c.post("/posts", content=b"{not json", headers={"Content-Type": "application/json"}, auth=auth).status_code == 400
        assert c.post("/posts", json={"text": 5}, auth=auth).status_code == 400
        assert c.post("/posts", json={"text": "x" * 10_001}, auth=auth).status_code == 400
        assert c.get("/posts", auth=auth).json()["posts"] == []
        assert c.post("/posts", json={"text": "small"}, auth=auth).status_code == 201
    app.state.engine.dispose()
