"""Timeline bots for real: a server on loopback, the bot connected to its stream, a post in, the reply out."""
from __future__ import annotations

import functools
import http.server
import threading
import time
from datetime import datetime, timezone

import httpx
import pytest

from necoma.enrich import Enricher, GeoIP
from necoma.exchange import admin
from necoma.exchange.bots.client import TimelineClient
from necoma.exchange.bots.enrichment import EnrichmentBot, LakeHistory, subjects
from necoma.exchange.bots.feed import FeedBot, FeedError
from necoma.exchange.db import session_factory
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url
from necoma.lake import LakeWriter

T = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def server(tmp_path):
    app = create_app(database_url("sqlite", tmp_path))
    keys = {}
    with session_factory(app.state.engine).begin() as s:
        for org in ("A", "B", "C"):
            admin.add_org(s, org)
        keys["A"] = admin.create_key(s, "A", "analyst", user="alice")[1]
        keys["C"] = admin.create_key(s, "C", "analyst", user="carol")[1]
        keys["bot"] = admin.create_key(s, "A", "analyst", label="enrichment-bot")[1]
        keys["feed"] = admin.create_key(s, "A", "analyst", label="feed-bot")[1]
        admin.add_group(s, "G")
        admin.add_member(s, "G", "A")
        admin.add_member(s, "G", "B")
    with ServerThread(app) as srv:
        yield srv.url, keys
    app.state.engine.dispose()


def _lake(path):
    with LakeWriter(path, tag="t") as w:
        w.write("flows", [{"start_time": T, "end_time": T, "src_ip": "81.2.69.142", "dst_ip": "10.0.0.1", "protocol": 17,
                           "packets": 1, "bytes": 100, "source": "pcap"} for _ in range(3)])
        w.write("dns", [{"time": T, "client_ip": "81.2.69.142", "qname": "x.evil.example", "qtype": 1, "is_response": False,
                         "source": "pcap"}])
        w.write("iplists", [{"network": "81.2.69.0/24", "list_name": "deny", "first_seen": T, "last_seen": T},
                            {"network": "1.128.0.1/32", "list_name": "open-resolvers", "first_seen": T, "last_seen": T}])


def _wait_for(c: TimelineClient, pred, timeout=15.0) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [p for p in c.search(limit=100) if pred(p)]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_subjects():
    assert subjects("C&C 81.2.69.142 and evil.example. plus ::1, 999.1.1.1, 2001:db8::5 and @B #x.y") == \
        ["81.2.69.142", "evil.example", "::1", "2001:db8::5"]
    assert subjects("nothing here") == []


def test_enrichment_bot_answers_on_the_stream(server, tmp_path, shared_data):
    url, keys = server
    mmdb = shared_data / "mmdb"
    _lake(tmp_path / "lake")
    enricher = Enricher(GeoIP(mmdb / "GeoLite2-City-Test.mmdb", mmdb / "GeoLite2-ASN-Test.mmdb"))
    bot_client = TimelineClient(url, keys["bot"])
    bot = EnrichmentBot(bot_client, enricher, LakeHistory(tmp_path / "lake"))
    stop = threading.Event()
    t = threading.Thread(target=bot.run, kwargs={"stop": stop.is_set, "heartbeat": 0.5}, daemon=True)
    t.start()
    time.sleep(1.0)
    alice, carol = TimelineClient(url, keys["A"]), TimelineClient(url, keys["C"])
    root = alice.post("bots at 81.2.69.142 and 1.128.0.1 resolving x.evil.example #zeus", group="G")
    alice.post("no subjects in this one")
    replies = _wait_for(alice, lambda p: p["reply_to"] == root["id"])
    stop.set()
    alice.post("wake the stream 2.125.160.216")
    t.join(timeout=10)
    assert len(replies) == 1, replies
    text = replies[0]["text"]
    assert "`81.2.69.142`: London, GB; 3 flows, first 2024-05-01 12:00" in text and "1 DNS queries for 1 names" in text
    assert "on lists: deny" in text
    assert "`1.128.0.1`: AS1221 Telstra Pty Ltd; on lists: open-resolvers" in text
    assert "`x.evil.example`: 1 DNS queries by 1 clients" in text
    assert replies[0]["group"] == "G"  # the answer reaches the question's audience, no further
    assert not [p for p in carol.search(limit=100) if p["reply_to"] == root["id"]]
    assert len([p for p in alice.search(limit=100) if p["text"].startswith("enrichment-bot:")]) == 1  # never answers itself


FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Advisories</title><link>https://cert.example/</link>
{items}
</channel></rss>"""
ITEM = "<item><title>{t}</title><link>https://cert.example/{n}</link><guid>adv-{n}</guid><description>{d}</description></item>"


def test_feed_bot_posts_each_item_once(server, tmp_path):
    url, keys = server
    feed = tmp_path / "advisories.xml"
    feed.write_text(FEED.format(items=ITEM.format(t="OpenSSL flaw", n=2, d="Patch <b>now</b>")
                                + ITEM.format(t="DNS amplification", n=1, d="Open resolvers abused")))
    bot = FeedBot(TimelineClient(url, keys["feed"]), str(feed), tag="certex")
    assert bot.poll() == 2
    assert bot.poll() == 0  # nothing new: the timeline remembers
    feed.write_text(FEED.format(items=ITEM.format(t="New botnet", n=3, d="GameOver")
                                + ITEM.format(t="OpenSSL flaw", n=2, d="Patch now")))
    assert FeedBot(TimelineClient(url, keys["feed"]), str(feed), tag="certex").poll() == 1  # a restarted bot too
    reader = TimelineClient(url, keys["C"])  # public posts: every organization reads them
    posts = reader.search(tag="advisory")
    assert [p["text"].split("**")[1] for p in posts] == ["New botnet", "OpenSSL flaw", "DNS amplification"]
    assert "https://cert.example/1" in posts[-1]["text"] and "certex" in posts[-1]["tags"]


def test_feed_bot_over_http_and_bad_feeds(server, tmp_path):
    url, keys = server
    (tmp_path / "not-a-feed.txt").write_text("hello")
    bot = FeedBot(TimelineClient(url, keys["feed"]), str(tmp_path / "not-a-feed.txt"))
    with pytest.raises(FeedError, match="not an RSS/Atom feed"):
        bot.poll()
    with pytest.raises(FeedError, match="no feed file"):
        FeedBot(TimelineClient(url, keys["feed"]), str(tmp_path / "missing.xml")).poll()
    with pytest.raises(FeedError, match="cannot fetch"):
        FeedBot(TimelineClient(url, keys["feed"]), url + "/feeds/none.atom").poll()
    # The server's own public Atom feed is a real Atom document over HTTP: it parses (and is empty here).
    assert FeedBot(TimelineClient(url, keys["feed"]), url + "/feeds/public.atom").poll() == 0
    # An RSS feed served over HTTP on loopback.
    (tmp_path / "rss.xml").write_text(FEED.format(items=ITEM.format(t="Served advisory", n=9, d="x")))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        feed_url = f"http://127.0.0.1:{httpd.server_address[1]}/rss.xml"
        assert FeedBot(TimelineClient(url, keys["feed"]), feed_url).poll() == 1
        assert FeedBot(TimelineClient(url, keys["feed"]), feed_url).poll() == 0
    finally:
        httpd.shutdown()
