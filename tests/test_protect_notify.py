"""Notices: signed webhooks to a real HTTP server, email notices and advice through aiosmtpd, public announcements in the Atom feed."""
from __future__ import annotations

import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from necoma.analyze.alert import Alert, Subject
from necoma.exchange.taxii import create_app
from necoma.knowledge.correlate import correlate
from necoma.protect.drivers import load_driver
from necoma.protect.model import Action, DriverError, Match
from tests._mailservers import HttpServer, SmtpServer
from tests.test_analyze_support import at

ATOM = "{http://www.w3.org/2005/Atom}"
BOT = "10.1.2.3"
DOMAINS = ("qwzxbplmnrt.com", "zzkqpmdhwlt.net")


def _incidents():
    bot = Alert(detector="zeus_dga", window_start=at(0), window_end=at(1), score=0.9, confidence="high",
                subjects=[Subject(role="bot", value=BOT), *(Subject(role="domain", value=d) for d in DOMAINS)],
                summary=f"{BOT} asked for 2 GameOver ZeuS domains")
    ntp = Alert(detector="ntp_amplifier", window_start=at(5), window_end=at(6), score=0.9, confidence="high",
                subjects=[Subject(role="amplifier", value="192.0.2.1"), Subject(role="victim", value="198.51.100.9")],
                summary="192.0.2.1 reflected NTP monlist answers to 198.51.100.9")
    return correlate([bot, ntp])


@pytest.fixture
def incidents():
    bots, ddos = _incidents()
    return {"bots": bots, "ddos": ddos, "lookup": {bots.id: bots, ddos.id: ddos}.get}


def _opts(tmp_path, incidents, **kw):
    return {"data_dir": str(tmp_path / "data"), "incident_lookup": incidents["lookup"], **kw}


def test_webhook_posts_signed_json(tmp_path, incidents):
    with HttpServer() as hook:
        driver = load_driver("notify", "soc", _opts(tmp_path, incidents, channel="webhook", url=hook.url + "/hook",
                                                    secret="s3cret"))
        a = Action(kind="notify", point="soc", incident_id=incidents["bots"].id, reason="bot on campus").with_id()
        driver.apply([a])
        driver.apply([a])  # idempotent
    assert len(hook.requests) == 1
    path, headers, body = hook.requests[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert path == "/hook" and headers["X-Necoma-Signature-256"] == expected
    payload = json.loads(body)
    assert payload["action_id"] == a.id and payload["incident"]["incident_id"] == incidents["bots"].id
    assert payload["hosts"] == [BOT] and "GameOver ZeuS" in payload["text"] and DOMAINS[0] in payload["text"]
    assert driver.installed() == {a.id}


def test_webhook_failure_is_a_driver_error(tmp_path, incidents):
    with HttpServer(status=500) as hook:
        driver = load_driver("notify", "soc", _opts(tmp_path, incidents, channel="webhook", url=hook.url))
        a = Action(kind="notify", point="soc", incident_id=incidents["bots"].id).with_id()
        with pytest.raises(DriverError, match="answered 500"):
            driver.apply([a])
    assert driver.installed() == set()


def test_email_notice_to_bot_owner_and_advice_to_ntp_operator(tmp_path, incidents):
    with SmtpServer() as smtp:
        driver = load_driver("notify", "users", _opts(tmp_path, incidents, channel="email", sender="soc@uni.example",
                                                      smtp_host="127.0.0.1", smtp_port=smtp.port))
        notice = Action(kind="notify", point="users", incident_id=incidents["bots"].id,
                        params={"recipients": ["owner@uni.example"]}).with_id()
        advice = Action(kind="advise", point="users", incident_id=incidents["ddos"].id,
                        match=Match(src_prefixes=("192.0.2.1/32",)),
                        params={"recipients": ["ntp-admin@uni.example"], "advice": "Our NOC can help: call 1234."}).with_id()
        driver.apply([notice, advice])
        driver.apply([notice, advice])
        no_advice = Action(kind="advise", point="users", incident_id=incidents["bots"].id,
                           params={"recipients": ["x@uni.example"]}).with_id()
        with pytest.raises(DriverError, match="has no advice"):
            driver.apply([no_advice])
        nobody = Action(kind="notify", point="users", incident_id=incidents["bots"].id).with_id()
        with pytest.raises(DriverError, match="no valid email recipients"):
            driver.apply([nobody])
    got = {rcpts[0]: msg for _, rcpts, msg in smtp.messages}
    assert sorted(got) == ["ntp-admin@uni.example", "owner@uni.example"]
    bot_text = got["owner@uni.example"].get_content()
    assert "infected by GameOver ZeuS" in bot_text and all(d in bot_text for d in DOMAINS) and BOT in bot_text
    assert "change the passwords" in bot_text
    ntp = got["ntp-admin@uni.example"]
    assert ntp["Subject"].startswith("Configuration advice") and ntp["X-Necoma-Incident"] == incidents["ddos"].id
    assert "disable monitor" in ntp.get_content() and "call 1234" in ntp.get_content()


def test_announce_reaches_the_public_atom_feed_without_private_subjects(tmp_path, incidents):
    url = f"sqlite:///{tmp_path / 'exchange.sqlite'}"
    driver = load_driver("notify", "public", _opts(tmp_path, incidents, channel="announce", database_url=url,
                                                   org_name="uni-cert"))
    a = Action(kind="notify", point="public", incident_id=incidents["ddos"].id, ttl_seconds=600).with_id()
    driver.apply([a])
    driver.apply([a])
    with pytest.raises(DriverError, match="sends notify, not advise"):
        driver.apply([Action(kind="advise", point="public", incident_id=incidents["ddos"].id).with_id()])
    app = create_app(url)
    try:
        with TestClient(app) as client:
            r = client.get("/feeds/public.atom")
    finally:
        app.state.engine.dispose()
    assert r.status_code == 200
    entries = ET.fromstring(r.text).findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert "192.0.2.1" in entries[0].find(f"{ATOM}title").text
    assert "198.51.100.9" not in r.text  # the victim is not public
    assert driver.installed() == {a.id}
    later = load_driver("notify", "public", _opts(tmp_path, incidents, channel="announce", database_url=url,
                                                  clock=lambda: at(0) + timedelta(days=3650)))
    assert later.installed() == set()  # past its TTL


def test_bad_point_options_explain_themselves(tmp_path, incidents):
    with pytest.raises(ValueError, match="channel must be one of webhook, email, announce"):
        load_driver("notify", "x", _opts(tmp_path, incidents))
    with pytest.raises(ValueError, match="webhook needs url"):
        load_driver("notify", "x", _opts(tmp_path, incidents, channel="webhook"))
    with pytest.raises(ValueError, match="smtp_host"):
        load_driver("notify", "x", _opts(tmp_path, incidents, channel="email", sender="a@b.example"))
    with pytest.raises(ValueError, match="set sender"):
        load_driver("abuse", "x", _opts(tmp_path, incidents))
