"""Incidents as STIX 2.1: valid per stix2-validator and the stix2 library, and readable over TAXII."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Collection

from necoma.exchange import admin
from necoma.exchange.db import session_factory
from necoma.exchange.taxii import create_app
from necoma.exchange.testing import ServerThread, database_url
from necoma.knowledge.correlate import correlate
from necoma.knowledge.markings import TLP2_IDS, identity_id
from necoma.knowledge.stix import incident_objects, to_bundle
from tests.test_knowledge_correlate import alert, botnet

NOW = datetime(2024, 5, 3, tzinfo=timezone.utc)
# Strict (SHOULDs are errors) except network-traffic ports: alerts do not say which ports bots used.
STRICT = ValidationOptions(version="2.1", strict=True, disabled=["network-traffic-ports"])


def incidents():
    h = timedelta(hours=1)
    return {
        "bots": correlate(botnet())[0],
        "amplifier": correlate([
            alert("ntp_amplifier", timedelta(0), 1, ("amplifier", "192.0.2.1"), ("victim", "198.51.100.9"), bytes=4e9),
            alert("udp_fragmentation", h, 1, ("victim", "198.51.100.9")),
        ])[0],
        "scanning": correlate([alert("ssl_scan", timedelta(0), 1, ("scanner", "2001:db8::66"))])[0],
        "phish": correlate([alert("phishing_feed", timedelta(0), 1, ("url", "http://login-bank.example/it's"))])[0],
        "flow-anomaly": correlate([alert("heavy_hitter", timedelta(0), 1, ("source", "198.51.100.0/24"))])[0],
    }


@pytest.mark.parametrize("kind", ["bots", "amplifier", "scanning", "phish", "flow-anomaly"])
@pytest.mark.parametrize("level", ["clear", "amber", "red"])
def test_bundles_are_valid_stix(kind, level):
    inc = incidents()[kind]
    bundle = to_bundle(inc, "cert-a", level, now=NOW)
    result = validate_instance(bundle, STRICT)
    assert result.is_valid, [str(e) for o in result.object_results for e in o.errors]
    for obj in bundle["objects"]:
        stix2.parse(obj, allow_custom=False, version="2.1")  # what necoma's TAXII server will demand
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"] == [TLP2_IDS[level]], obj["id"]
        if "created" in obj and obj["type"] not in ("marking-definition", "identity"):
            assert obj["created_by_ref"] == identity_id("cert-a")


def test_botnet_mapping():
    inc = incidents()["bots"]
    objs = {o["id"]: o for o in to_bundle(inc, "cert-a", "amber", now=NOW)["objects"]}
    by_type: dict[str, list] = {}
    for o in objs.values():
        by_type.setdefault(o["type"], []).append(o)
    malware = by_type["malware"][0]
    assert malware["name"] == "GameOver ZeuS" and malware["is_family"]
    assert by_type["infrastructure"][0]["infrastructure_types"] == ["botnet"]
    patterns = {i["pattern"] for i in by_type["indicator"]}
    assert "[ipv4-addr:value = '203.0.113.7']" in patterns and "[domain-name:value = 'qwzxbplmnrt.com']" in patterns
    assert all(i["indicator_types"] for i in by_type["indicator"])
    assert {i["indicator_types"][0] for i in by_type["indicator"] if "10.1.2.3" in i["pattern"]} == {"compromised"}
    assert {r["relationship_type"] for r in by_type["relationship"]} == {"indicates", "consists-of", "controls"}
    assert all(r["target_ref"] == malware["id"] for r in by_type["relationship"] if r["relationship_type"] == "indicates")
    assert len(by_type["observed-data"]) == len(inc.alerts)
    for s in by_type["sighting"]:
        assert s["sighting_of_ref"] in objs and s["where_sighted_refs"] == [identity_id("cert-a")]
        assert all(ref in objs for ref in s["observed_data_refs"])
    traffic = by_type["network-traffic"]
    assert traffic and all(objs[t["src_ref"]]["value"].startswith("10.1.") for t in traffic)
    assert by_type["identity"][0]["name"] == "cert-a"
    incident = by_type["incident"][0]
    assert f"rating {inc.rating}/100" in incident["description"] and "layers" in incident["description"]
    assert set(by_type["report"][0]["object_refs"]) == {i for i, o in objs.items() if o["type"] not in ("marking-definition", "report")}
    for o in objs.values():  # every reference resolves inside the bundle
        for key in ("created_by_ref", "sighting_of_ref", "source_ref", "target_ref", "src_ref", "dst_ref"):
            if key in o:
                assert o[key] in objs, (o["id"], key)


def test_victims_are_never_indicators():
    objs = to_bundle(incidents()["amplifier"], "cert-a", "green", now=NOW)["objects"]
    patterns = " ".join(o["pattern"] for o in objs if o["type"] == "indicator")
    assert "192.0.2.1" in patterns and "198.51.100.9" not in patterns
    traffic = [o for o in objs if o["type"] == "network-traffic"]
    assert traffic[0]["src_port"] == 123 and traffic[0]["protocols"] == ["ipv4", "udp"]


def test_prefix_and_ipv6_patterns_and_escaping():
    objs = to_bundle(incidents()["flow-anomaly"], "cert-a", now=NOW)["objects"]
    assert any(o["type"] == "ipv4-addr" and o["value"] == "198.51.100.0/24" for o in objs)
    scan = to_bundle(incidents()["scanning"], "cert-a", now=NOW)["objects"]
    assert "[ipv6-addr:value = '2001:db8::66']" in {o.get("pattern") for o in scan}
    phish = to_bundle(incidents()["phish"], "cert-a", now=NOW)["objects"]
    assert "[url:value = 'http://login-bank.example/it\\'s']" in {o.get("pattern") for o in phish}


def test_reexport_keeps_ids_and_makes_a_new_version():
    inc = incidents()["bots"]
    first = {o.id: o for o in incident_objects(inc, "cert-a", now=NOW)}
    again = {o.id: o for o in incident_objects(inc, "cert-a", now=NOW + timedelta(hours=1))}
    assert set(first) == set(again)
    ind = next(i for i in first if i.startswith("indicator--"))
    assert again[ind].modified > first[ind].modified and again[ind].created == first[ind].created


def test_incidents_published_over_taxii_are_read_by_taxii2_client(tmp_path):
    """Two organizations publish overlapping incidents (shared SCOs, TLP definitions) into one group."""
    app = create_app(database_url("sqlite", tmp_path))
    with session_factory(app.state.engine).begin() as s:
        tokens = {}
        for org in ("cert-a", "cert-b"):
            admin.add_org(s, org)
            tokens[org] = admin.create_key(s, org, "analyst")[1]
        col_id = admin.add_group(s, "csirts")[1].id
        admin.add_member(s, "csirts", "cert-a")
        admin.add_member(s, "csirts", "cert-b")
    inc = incidents()["bots"]
    with ServerThread(app) as srv:
        cols = {o: Collection(f"{srv.url}/taxii2/root/collections/{col_id}/", user="x", password=t)
                for o, t in tokens.items()}
        bundle_a = to_bundle(inc, "cert-a", "amber", now=NOW)
        status = cols["cert-a"].add_objects(json.dumps(bundle_a))
        assert status.success_count == len(bundle_a["objects"])
        # cert-b saw the same botnet: same IPs (SCO ids), same TLP definition, its own SDOs.
        bundle_b = to_bundle(inc, "cert-b", "amber+strict", now=NOW)
        assert cols["cert-b"].add_objects(json.dumps(bundle_b)).success_count == len(bundle_b["objects"])
        read = cols["cert-a"].get_objects(type="indicator")["objects"]
        assert {o["created_by_ref"] for o in read} == {identity_id("cert-a")}  # cert-b's are AMBER+STRICT
        got = {o["id"] for o in cols["cert-b"].get_objects(type="indicator")["objects"]}
        assert {o["id"] for o in bundle_b["objects"] if o["type"] == "indicator"} <= got
        malware = cols["cert-a"].get_objects(type="malware")["objects"]
        assert [m["name"] for m in malware] == ["GameOver ZeuS"]
    app.state.engine.dispose()
