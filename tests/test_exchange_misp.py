"""MISP: incidents exported as events and feeds that PyMISP reads; PyMISP-made feeds imported as STIX."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pymisp import MISPEvent, MISPOrganisation

from necoma.analyze.alert import Alert, Subject
from necoma.exchange import admin, misp
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.models import StixObject
from necoma.exchange.testing import database_url
from necoma.knowledge import correlate

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def incident():
    return correlate([Alert(
        detector="zeus_dga", window_start=T0, window_end=T0 + timedelta(days=1), score=0.9, confidence="high",
        subjects=[Subject(role="bot", value="10.1.2.3"), Subject(role="cnc", value="203.0.113.7"),
                  Subject(role="domain", value="qwzxbplmnrt.com"), Subject(role="url", value="http://x.example/gate.php"),
                  Subject(role="victim", value="198.51.100.9")])])[0]


def test_event_is_read_by_pymisp():
    inc = incident()
    event = misp.incident_event(inc, "cert-a", "green", now=T0 + timedelta(days=2))
    e = MISPEvent()
    e.load(json.dumps(event))
    assert e.uuid == event["Event"]["uuid"] and e.info.startswith(inc.title)
    attrs = {(a.type, a.value): a.to_ids for a in e.attributes}
    assert attrs == {("ip-src", "10.1.2.3"): True, ("ip-dst", "203.0.113.7"): True, ("domain", "qwzxbplmnrt.com"): True,
                     ("url", "http://x.example/gate.php"): True, ("ip-dst", "198.51.100.9"): False}
    assert {t.name for t in e.tags} >= {"tlp:green", 'necoma:category="bots"', 'necoma:n6-category="bots"'}
    assert str(e.distribution) == "2" and str(e.threat_level_id) in ("1", "2", "3")
    again = misp.incident_event(inc, "cert-a", "green", now=T0 + timedelta(days=3))
    assert again["Event"]["uuid"] == event["Event"]["uuid"]  # stable: re-export updates the same event


def test_feed_directory(tmp_path):
    events = [misp.incident_event(incident(), "cert-a", "amber")]
    misp.write_feed(tmp_path, events)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    uid = events[0]["Event"]["uuid"]
    assert list(manifest) == [uid] and manifest[uid]["Orgc"]["name"] == "cert-a"
    e = MISPEvent()
    e.load_file(str(tmp_path / f"{uid}.json"))
    assert len(e.attributes) == 5
    assert len((tmp_path / "hashes.csv").read_text().splitlines()) == 5
    assert misp.read_feed(tmp_path) == events


def _pymisp_feed(directory, tlp_tag: str | None):
    ev = MISPEvent()
    ev.info = "Emotet distribution"
    ev.uuid = "5b9a2f1e-6f0c-4d8e-9a3e-2a9c1d7b0e99"
    org = MISPOrganisation()
    org.name, org.uuid = "circl-like", "55f6ea5e-2c60-40e5-964f-47a8950d210f"
    ev.Orgc = org
    ev.add_attribute("ip-dst", "192.0.2.77", to_ids=True)
    ev.add_attribute("domain", "bad.example", to_ids=True)
    ev.add_attribute("url", "http://bad.example/it's.exe", to_ids=True)
    ev.add_attribute("ip-dst", "192.0.2.78", to_ids=False)  # context only: not an indicator
    ev.add_attribute("md5", "d41d8cd98f00b204e9800998ecf8427e", to_ids=True)  # not a network indicator
    if tlp_tag:
        ev.add_tag(tlp_tag)
    feed = ev.to_feed(with_meta=True)
    manifest = feed["Event"].pop("_manifest")
    feed["Event"].pop("_hashes")
    directory.mkdir()
    (directory / f"{ev.uuid}.json").write_text(json.dumps(feed))
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_import_pymisp_feed(kind, tmp_path):
    engine = open_engine(database_url(kind, tmp_path))
    sessions = session_factory(engine)
    with sessions.begin() as s:
        admin.add_org(s, "cert-a")
        col = admin.add_group(s, "csirts")[1].id
        admin.add_member(s, "csirts", "cert-a")
    _pymisp_feed(tmp_path / "feed", "tlp:green")
    counts = misp.import_feed(sessions, tmp_path / "feed", "cert-a", "csirts")
    assert counts == {"events": 1, "indicators": 3, "skipped_attributes": 2, "rejected_events": 0}
    with sessions() as s:
        rows = [r for r in s.query(StixObject).filter(StixObject.collection_id == col, StixObject.stix_type == "indicator")]
    assert {r.tlp for r in rows} == {"green"}
    patterns = {json.loads(r.body)["pattern"] for r in rows}
    assert patterns == {"[ipv4-addr:value = '192.0.2.77']", "[domain-name:value = 'bad.example']",
                        "[url:value = 'http://bad.example/it\\'s.exe']"}
    assert misp.import_feed(sessions, tmp_path / "feed", "cert-a", "csirts")["events"] == 1  # idempotent
    with sessions() as s:
        assert s.query(StixObject).filter(StixObject.stix_type == "indicator").count() == 3
    # Untagged events are AMBER: refused by the public collection, so the event is rejected whole.
    _pymisp_feed(tmp_path / "feed2", None)
    assert misp.import_feed(sessions, tmp_path / "feed2", "cert-a", None)["rejected_events"] == 1
    engine.dispose()


def test_import_refuses_path_tricks(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"../../etc/passwd": {}}))
    with pytest.raises(ValueError, match="not a UUID"):
        misp.read_feed(tmp_path)
