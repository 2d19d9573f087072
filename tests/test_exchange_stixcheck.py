"""The fast STIX 2.1 check of TAXII ingest agrees with stix2 and stix2-validator.

`stixcheck.proves_valid` may only say True for objects stix2 accepts; the
ingest verdict (`ingest.prepare`) must equal stix2's on every sample, plus the
one rule stix2 misses (modified before created). A corpus of valid and invalid
objects, many chosen to sit on the edge of a rule, and generated patterns.
"""
from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timedelta, timezone

import pytest
import stix2
from stix2patterns.validator import validate as pattern_valid
from stix2validator import ValidationOptions, validate_instance

from necoma.analyze.alert import Alert, Subject
from necoma.exchange import stixcheck
from necoma.exchange.ingest import prepare
from necoma.knowledge.correlate import build
from necoma.knowledge.stix import incident_objects

IDENT = "identity--7ee08ed9-d210-452e-9a6d-bdc94318a53a"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
IND = "indicator--224a5d2d-40da-434a-a697-eca158dae277"
IP = "ipv4-addr--0d34a239-3388-54a0-808b-c4cc01d8aa40"
T1, T2 = "2024-05-01T00:00:00.000Z", "2024-05-02T00:00:00.000Z"


def sdo(kind: str, uid: str = "51ca3137-12cf-4fd1-a919-c2be70324c77", **props) -> dict:
    return {"type": kind, "spec_version": "2.1", "id": f"{kind}--{uid}", "created": T1, "modified": T2,
            "created_by_ref": IDENT, "object_marking_refs": [GREEN], **props}


def indicator(**props) -> dict:
    base = {"pattern": "[ipv4-addr:value = '10.0.0.1']", "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": T1}
    return sdo("indicator", **{**base, **props})


def necoma_objects() -> list[dict]:
    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    subjects = [Subject(role="bot", value="10.1.2.3"), Subject(role="cnc", value="203.0.113.9"),
                Subject(role="domain", value="kq3vbx0a.example.com")]
    alert = Alert(detector="zeus_dga", window_start=t0, window_end=t0 + timedelta(hours=1), subjects=subjects,
                  score=0.9, confidence="high", metrics={"flows": 3})
    return [json.loads(o.serialize()) for o in incident_objects(build([alert]), "acme", "green", now=t0 + timedelta(days=1))]


# Valid: stix2 accepts each. `fast` says whether the fast path must prove it (the common shapes) or may leave it to stix2.
VALID = [
    ("identity", sdo("identity", name="ACME", identity_class="organization"), True),
    ("ipv4-addr", {"type": "ipv4-addr", "spec_version": "2.1", "id": IP, "value": "10.0.0.1"}, True),
    ("ipv6-addr", {"type": "ipv6-addr", "spec_version": "2.1", "id": "ipv6-addr--1e61d36c-a16c-53b7-a80f-2a00161c96b1",
                   "value": "2001:db8::1"}, True),
    ("url", {"type": "url", "spec_version": "2.1", "id": "url--c1477287-23ac-5971-a010-5c287877fa60",
             "value": "http://example.com/x"}, True),
    ("sco without spec_version", {"type": "domain-name", "id": "domain-name--3d37170c-3a99-563e-8e35-8fa861e8ee42",
                                  "value": "example.com"}, True),
    ("indicator", indicator(), True),
    ("indicator OR/AND/FOLLOWEDBY", indicator(pattern="[ipv4-addr:value = '10.0.0.1' OR ipv4-addr:value ISSUBSET "
                                              "'10.2.0.0/16'] FOLLOWEDBY [domain-name:value != 'a\\'b.com']"), True),
    ("indicator with a qualifier", indicator(pattern="[ipv4-addr:value = '10.0.0.1'] REPEATS 5 TIMES WITHIN 60 SECONDS"),
     False),
    ("indicator, valid hash", indicator(pattern="[file:hashes.'SHA-256' = "
                                        "'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"), False),
    ("indicator, snort pattern", indicator(pattern="alert tcp any any -> any any", pattern_type="snort",
                                           pattern_version=None), True),
    ("timestamps with 1 and 6 fraction digits", indicator(valid_from="2024-02-29T23:59:59.1Z",
                                                          valid_until="2024-03-01T00:00:00.123456Z"), True),
    ("malware family", sdo("malware", name="GOZ", is_family=True, malware_types=["bot"]), True),
    ("malware sample without name", sdo("malware", is_family=False), True),
    ("sighting", sdo("sighting", sighting_of_ref=IND, first_seen=T1, last_seen=T1, count=0), True),
    ("relationship", sdo("relationship", relationship_type="indicates", source_ref=IND, target_ref=IP,
                         start_time=T1, stop_time=T2), True),
    ("observed-data", sdo("observed-data", first_observed=T1, last_observed=T2, number_observed=1,
                          object_refs=[IP]), True),
    ("network-traffic ended", {"type": "network-traffic", "spec_version": "2.1",
                               "id": "network-traffic--86ba7d73-0325-52aa-bd7f-48fca8ac2d47", "src_ref": IP,
                               "start": T1, "end": T2, "is_active": False, "protocols": ["tcp"]}, True),
    ("report", sdo("report", name="r", published=T2, object_refs=[IND, IP], report_types=["threat-report"]), True),
    ("note on an SCO", sdo("note", content="seen again", object_refs=[IP]), True),
    ("revoked, confidence 100", sdo("identity", name="x", revoked=True, confidence=100), True),
    ("kill chain phases (embedded)", sdo("attack-pattern", name="p", kill_chain_phases=[
        {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"}]), False),
    ("external references (embedded)", sdo("identity", name="x", external_references=[
        {"source_name": "cve", "external_id": "CVE-2024-0001"}]), False),
    ("granular markings", sdo("identity", name="x", granular_markings=[{"marking_ref": GREEN,
                                                                        "selectors": ["name"]}]), False),
    ("location", sdo("location", country="JP"), False),
    ("marking definition (TLP)", {"type": "marking-definition", "spec_version": "2.1", "id": GREEN,
                                  "created": "2022-10-01T00:00:00.000Z", "name": "TLP:GREEN",
                                  "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":
                                                 {"extension_type": "property-extension", "tlp_2_0": "green"}}}, False),
]

# Lenient cases: stix2 coerces these and accepts them, so ingest does too (it judged them before this module);
# the fast path must not prove them.
LENIENT = [
    ("confidence as a string", sdo("identity", name="x", confidence="50")),
    ("labels as a bare string", sdo("identity", name="x", labels="bots")),
    ("revoked as 'true'", sdo("identity", name="x", revoked="true")),
    ("upper-case UUID", sdo("identity", uid="51CA3137-12CF-4FD1-A919-C2BE70324C77", name="x")),
    ("name as a number", sdo("identity", name=7)),
    ("description null", sdo("identity", name="x", description=None)),
    ("empty labels", sdo("identity", name="x", labels=[])),
    ("roles that are not strings", sdo("identity", name="x", roles=[1, {}])),
]

# Invalid: rejected, each with a message naming what is wrong.
INVALID = [
    ("id prefix is another type", sdo("identity", name="x") | {"id": "malware--51ca3137-12cf-4fd1-a919-c2be70324c77"}, "id"),
    ("not an RFC 4122 UUID", sdo("identity", uid="51ca3137-12cf-4fd1-c919-c2be70324c77", name="x"), "id"),
    ("UUID too short", sdo("identity", uid="51ca3137-12cf-4fd1-a919-c2be70324c7", name="x"), "id"),
    ("no id", {k: v for k, v in sdo("identity", name="x").items() if k != "id"}, "id"),
    ("missing required name", sdo("identity"), "name"),
    ("unknown type", {"type": "x-thing", "spec_version": "2.1", "id": "x-thing--51ca3137-12cf-4fd1-a919-c2be70324c77"},
     "x-thing"),
    ("custom property", sdo("identity", name="x", x_custom=1), "x_custom"),
    ("spec_version 2.0", sdo("identity", name="x") | {"spec_version": "2.0"}, "spec_version"),
    ("30 February", sdo("identity", name="x", created="2024-02-30T00:00:00.000Z"), "created"),
    ("timestamp with an offset", sdo("identity", name="x", created="2024-05-01T00:00:00+01:00"), "created"),
    ("timestamp without Z", sdo("identity", name="x", modified="2024-05-01T00:00:00.000"), "modified"),
    ("modified before created", sdo("identity", name="x", created=T2, modified=T1), "modified"),
    ("created_by_ref not an identity", sdo("identity", name="x", created_by_ref=IND), "created_by_ref"),
    ("marking ref to an indicator", sdo("identity", name="x", object_marking_refs=[IND]), "object_marking_refs"),
    ("marking ref not an id", sdo("identity", name="x", object_marking_refs=["TLP:GREEN"]), "object_marking_refs"),
    ("confidence 101", sdo("identity", name="x", confidence=101), "confidence"),
    ("network-traffic ends before it starts", {"type": "network-traffic", "spec_version": "2.1",
                                 "id": "network-traffic--86ba7d73-0325-52aa-bd7f-48fca8ac2d47", "src_ref": IP,
                                 "start": T2, "end": T1, "is_active": False, "protocols": ["tcp"]}, "end"),
    ("network-traffic ended but active", {"type": "network-traffic", "spec_version": "2.1",
                                          "id": "network-traffic--86ba7d73-0325-52aa-bd7f-48fca8ac2d47",
                                          "src_ref": IP, "end": T2, "is_active": True, "protocols": ["tcp"]}, "is_active"),
    ("network-traffic without endpoints", {"type": "network-traffic", "spec_version": "2.1",
                                           "id": "network-traffic--86ba7d73-0325-52aa-bd7f-48fca8ac2d47",
                                           "protocols": ["tcp"]}, "src_ref"),
    ("pattern missing a bracket", indicator(pattern="[ipv4-addr:value = '10.0.0.1'"), "pattern"),
    ("pattern with a keyword as type", indicator(pattern="[true:value = 'x']"), "pattern"),
    ("pattern with an unterminated string", indicator(pattern="[ipv4-addr:value = '10.0.0.1]"), "pattern"),
    ("pattern with a bad MD5", indicator(pattern="[file:hashes.MD5 = 'abc']"), "pattern"),
    ("pattern_type stix, garbage", indicator(pattern="alert tcp any any"), "pattern"),
    ("valid_until equal to valid_from", indicator(valid_until=T1), "valid_until"),
    ("sighting seen backwards", sdo("sighting", sighting_of_ref=IND, first_seen=T2, last_seen=T1), "last_seen"),
    ("sighting of an SCO", sdo("sighting", sighting_of_ref=IP), "sighting_of_ref"),
    ("malware family without a name", sdo("malware", is_family=True), "name"),
    ("relationship with an empty type", sdo("relationship", relationship_type="", source_ref=IND, target_ref=IP),
     "relationship_type"),
    ("relationship stop equals start", sdo("relationship", relationship_type="indicates", source_ref=IND,
                                           target_ref=IP, start_time=T1, stop_time=T1), "stop_time"),
    ("observed-data without objects", sdo("observed-data", first_observed=T1, last_observed=T2,
                                          number_observed=1), "object"),
    ("observed-data number_observed 0", sdo("observed-data", first_observed=T1, last_observed=T2,
                                            number_observed=0, object_refs=[IP]), "number_observed"),
    ("report with empty object_refs", sdo("report", name="r", published=T2, object_refs=[]), "object_refs"),
    ("not an object", ["identity"], "object"),
    ("a bundle", {"type": "bundle", "id": "bundle--51ca3137-12cf-4fd1-a919-c2be70324c77", "objects": []}, "bundle"),
]


SPEC_RULES = {"modified before created", "confidence 101"}
OWN_RULES = {"no id", "spec_version 2.0", "not an object", "a bundle"}  # checked by ingest before stix2


def _stix2_accepts(obj) -> bool:
    try:
        stix2.parse(copy.deepcopy(obj), allow_custom=False, version="2.1")
        return True
    except Exception:
        return False


def _validator_accepts(obj) -> bool:
    return validate_instance(copy.deepcopy(obj), ValidationOptions(version="2.1")).is_valid


@pytest.mark.parametrize("name,obj,fast", VALID, ids=[v[0] for v in VALID])
def test_valid_objects_are_accepted(name, obj, fast):
    obj = {k: v for k, v in obj.items() if v is not None}
    assert _stix2_accepts(obj)
    assert stixcheck.proves_valid(obj) is fast
    prepared = prepare(obj, 0)
    assert prepared.stix_id == obj["id"]
    if fast:  # what the fast path proves is valid for stix2-validator too
        assert _validator_accepts(obj), name


@pytest.mark.parametrize("name,obj", LENIENT, ids=[v[0] for v in LENIENT])
def test_lenient_objects_are_left_to_stix2(name, obj):
    assert not stixcheck.proves_valid(obj)
    assert _stix2_accepts(obj)
    prepare(obj, 0)  # accepted, as before the fast path existed


@pytest.mark.parametrize("name,obj,word", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_objects_are_rejected_with_a_reason(name, obj, word):
    if name not in SPEC_RULES:
        assert not (isinstance(obj, dict) and stixcheck.proves_valid(obj))
    with pytest.raises(ValueError) as err:
        prepare(obj, 0)
    assert word in str(err.value), str(err.value)
    if name in SPEC_RULES:  # rules stix2 lacks and stix2-validator has: ingest checks them itself
        assert _stix2_accepts(obj) and not _validator_accepts(obj)
    elif name not in OWN_RULES:
        assert not _stix2_accepts(obj)


def test_necoma_objects_take_the_fast_path_and_agree():
    objects = [o for o in necoma_objects() if o["type"] != "marking-definition"]
    assert {o["type"] for o in objects} >= {"indicator", "sighting", "relationship", "ipv4-addr", "observed-data"}
    for obj in objects:
        assert stixcheck.proves_valid(obj), obj["type"]
        assert _stix2_accepts(obj) and _validator_accepts(obj), obj["id"]


def test_one_broken_property_is_never_proven():
    """Every property of every necoma object, replaced by a wrong value of each kind: never proven valid
    unless stix2 accepts the result too."""
    rnd = random.Random(6)
    wrong = [None, 1, -1, 1.5, True, "", "x", [], ["x"], {}, "2024-13-01T00:00:00Z", "identity--bad",
             "indicator--224a5d2d-40da-434a-a697-eca158dae27", IND.upper()]
    checked = 0
    for obj in necoma_objects():
        for key in obj:
            for value in rnd.sample(wrong, 5):
                mutant = dict(obj, **{key: value})
                if stixcheck.proves_valid(mutant):
                    assert _stix2_accepts(mutant), (key, value)
                checked += 1
    assert checked > 300


def _random_pattern(rnd: random.Random) -> str:
    """Mostly patterns of the plain subset, each piece wrong now and then."""
    def pick(good: list[str], bad: list[str]) -> str:
        return rnd.choice(bad) if rnd.random() < 0.06 else rnd.choice(good)

    def cmp() -> str:
        return (pick(["ipv4-addr", "domain-name", "url", "x-acme-thing", "network-traffic"],
                     ["a", "true", "ipv4_addr", "4x", "ipv4-", "-x"])
                + pick([":"], [" :", "::", "."])
                + pick(["value", "src_ref.value", "x_y", "name"], ["false", "va-lue", "value.0", "Value", "hashes.MD5",
                                                                  "value.", "'value'"])
                + pick([" = ", "=", " != ", " ISSUBSET ", " ISSUPERSET "], [" LIKE ", " == ", " IN ", "ISSUBSET", " > "])
                + pick(["'10.0.0.1'", "'a\\'b'", "'\\\\'", "''", "'10.0.0.0/8'", "'é'"],
                       ["'unterminated", "'x\\y'", "10", "true", "'a'b'"]))

    def obs() -> str:
        inner = cmp()
        for _ in range(rnd.randrange(3)):
            inner += pick([" AND ", " OR "], [" and ", "  OR ", " FOLLOWEDBY "]) + cmp()
        return pick(["[{}]"], ["({})", "[{}", "[ {} ]", "[[{}]]"]).format(inner)

    text = obs()
    for _ in range(rnd.randrange(3)):
        text += pick([" AND ", " OR ", " FOLLOWEDBY "], [" ", " followedby "]) + obs()
    return text + pick([""], [" WITHIN 5 SECONDS", "]", " AND"])


def test_generated_patterns_proven_only_when_stix2_patterns_accepts():
    rnd = random.Random(11)
    proven = 0
    for _ in range(600):
        text = _random_pattern(rnd)
        if stixcheck.pattern_proven(text):
            proven += 1
            assert pattern_valid(text, stix_version="2.1"), text
    assert 60 < proven < 540  # the generator reaches the subset, so the check above means something


@pytest.mark.parametrize("text", [
    "[ipv4-addr:value = '203.0.113.9']",
    "[domain-name:value = 'kq3vbx0a.example.com'] OR [url:value = 'http://x/\\'q']",
    "[network-traffic:dst_ref.value ISSUBSET '10.0.0.0/8' AND network-traffic:dst_port.x = '53']",
])
def test_plain_patterns_are_proven(text):
    assert stixcheck.pattern_proven(text) and pattern_valid(text, stix_version="2.1")


def test_timestamps_match_stix2():
    for text in ["2024-02-29T23:59:59Z", "1999-12-31T23:59:59.999999Z", "2024-05-01T00:00:00.1Z"]:
        us = stixcheck.stamp_us(text)
        parsed = stix2.utils.parse_into_datetime(text)
        assert us == int(parsed.timestamp()) * 1_000_000 + parsed.microsecond
    for text in ["2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T00:00:60Z", "2024-05-01 00:00:00Z",
                 "2024-05-01T00:00:00.1234567Z", "2024-05-01T00:00:00z", 20240501, "\u0662024-05-01T00:00:00Z"]:
        assert stixcheck.stamp_us(text) is None
