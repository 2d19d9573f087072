"""The incident bot end to end: alerts → incidents → STIX in TAXII + timeline posts; n6 search; public Atom feed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from taxii2client.v21 import Collection

from necoma.analyze.alert import Alert, Subject
from necoma.exchange import admin
from necoma.exchange.db import session_factory
from necoma.exchange.publish import PublishError, publish_incident
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url
from necoma.knowledge import correlate

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)
ATOM = "{http://www.w3.org/2005/Atom}"


def _alert(detector, start, hours, *subjects, **kw):
    return Alert(detector=detector, window_start=T0 + start, window_end=T0 + start + hours * H,
                 subjects=[Subject(role=r, value=v) for r, v in subjects], score=kw.get("score", 0.9),
                 confidence=kw.get("confidence", "high"))


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    app = create_app(database_url(request.param, tmp_path))
    sessions = session_factory(app.state.engine)
    keys = {}
    with sessions.begin() as s:
        for org in ("cert-a", "cert-b", "cert-c"):
            admin.add_org(s, org)
            keys[org] = admin.create_key(s, org, "reader")[1]
        col_id = admin.add_group(s, "csirts")[1].id
        admin.add_member(s, "csirts", "cert-a")
        admin.add_member(s, "csirts", "cert-b")
    bot, ddos = correlate([
        _alert("zeus_dga", timedelta(0), 24, ("bot", "10.1.2.3"), ("domain", "qwzxbplmnrt.com"), ("cnc", "203.0.113.7")),
        _alert("heavy_hitter", 2 * H, 1, ("destination", "203.0.113.7"), score=0.5, confidence="medium"),
        _alert("ntp_amplifier", 30 * H, 1, ("amplifier", "192.0.2.1"), ("victim", "198.51.100.9")),
    ])
    published = {
        "bot": publish_incident(sessions, "cert-a", bot, group="csirts", level="amber"),
        "ddos": publish_incident(sessions, "cert-a", ddos, group=None, level="clear"),
    }
    with ServerThread(app) as srv:
        yield {"url": srv.url, "keys": keys, "col": col_id, "published": published, "incidents": (bot, ddos),
               "sessions": sessions}
    app.state.engine.dispose()


def test_incidents_reach_taxii_and_the_timeline(world):
    url, keys = world["url"], world["keys"]
    col = Collection(f"{url}/taxii2/root/collections/{world['col']}/", user="x", password=keys["cert-b"])
    incidents = col.get_objects(type="incident")["objects"]
    assert len(incidents) == 1 and "rating" in incidents[0]["description"]
    assert [m["name"] for m in col.get_objects(type="malware")["objects"]] == ["GameOver ZeuS"]
    posts = httpx.get(f"{url}/api/v1/posts", auth=("x", keys["cert-b"])).json()["posts"]
    bot_post = next(p for p in posts if p["id"] == world["published"]["bot"].post_id)
    assert {"bots", "n6-bots", "zeus_dga"} <= set(bot_post["tags"]) and bot_post["author"] == "incident-bot"
    assert bot_post["group"] == "csirts" and bot_post["tlp"] == "amber"
    assert bot_post["attachment"]["type"] == "bundle"
    c_posts = httpx.get(f"{url}/api/v1/posts", auth=("x", keys["cert-c"])).json()["posts"]
    assert [p["id"] for p in c_posts] == [world["published"]["ddos"].post_id]  # only the public one


def test_publish_refuses_non_clear_public(world):
    with pytest.raises(PublishError):
        publish_incident(world["sessions"], "cert-a", world["incidents"][0], group=None, level="green")


def test_n6_search(world):
    url, keys = world["url"], world["keys"]

    def q(who, **params):
        r = httpx.get(f"{url}/n6/search/events.json", params=params, auth=("x", keys[who]))
        assert r.status_code == 200, r.text
        return r.json()

    every = q("cert-b")
    assert {e["category"] for e in every} == {"bots", "amplifier"}
    bots = q("cert-b", category="bots")
    assert {a["ip"] for e in bots for a in e.get("address", [])} == {"10.1.2.3", "203.0.113.7"}
    assert {e["fqdn"] for e in bots if "fqdn" in e} == {"qwzxbplmnrt.com"}
    assert all(e["restriction"] == "need-to-know" and e["confidence"] in ("low", "medium", "high") for e in bots)
    assert [a["ip"] for e in q("cert-b", **{"ip.net": "203.0.113.0/24"}) for a in e["address"]] == ["203.0.113.7"]
    assert [e["fqdn"] for e in q("cert-b", **{"fqdn.sub": "qwzx"})] == ["qwzxbplmnrt.com"]
    assert q("cert-b", ip="192.0.2.1")[0]["restriction"] == "public"
    assert q("cert-b", **{"time.min": "2030-01-01T00:00:00Z"}) == []
    assert len(q("cert-b", **{"opt.limit": "1"})) == 1
    # cert-c is not in the group: only the public (TLP:CLEAR) amplifier incident
    assert {e["category"] for e in q("cert-c")} == {"amplifier"}
    assert httpx.get(f"{url}/n6/search/events.json", params={"ip.net": "x"}, auth=("x", keys["cert-b"])).status_code == 400
    assert httpx.get(f"{url}/n6/search/events.json").status_code == 401


def test_public_atom_feed(world):
    r = httpx.get(f"{world['url']}/feeds/public.atom")  # no key: it is public
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    ddos = world["incidents"][1]
    assert entries[0].find(f"{ATOM}title").text == ddos.title
    assert {c.get("term") for c in entries[0].findall(f"{ATOM}category")} >= {"amplifier"}
    assert "10.1.2.3" not in r.text and "qwzxbplmnrt" not in r.text  # the TLP:AMBER botnet stays out
