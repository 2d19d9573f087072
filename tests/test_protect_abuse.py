"""Abuse reports: ARF emails with X-ARF JSON, received by a real SMTP server (aiosmtpd) and parsed back."""
from __future__ import annotations

import csv
import email
import email.policy
import io
import json
from datetime import timedelta

import pytest

from necoma.analyze.alert import Alert, Subject
from necoma.analyze.runner import load_alerts, store_alerts
from necoma.knowledge.correlate import correlate
from necoma.protect.drivers import load_driver
from necoma.protect.model import Action, DriverError, Match
from necoma.protect.reports import xarf
from necoma.protect.reports.contacts import ContactBook
from tests._mailservers import HttpServer, SmtpServer
from tests.test_analyze_support import at, flow, write_lake

VICTIM = "203.0.113.9"
NET_A = ("192.0.2.1", "192.0.2.2")  # abuse@net-a.example (config, /24 beats the /16)
NO_CONTACT = "198.51.100.7"
V6 = "2001:db8:5::1"  # abuse contact from the RDAP cache


def rdap_network(cidr: str, email: str) -> dict:
    prefix, length = cidr.split("/")
    key = "v6prefix" if ":" in prefix else "v4prefix"
    return {
        "objectClassName": "ip network", "handle": f"NET-{prefix}", "cidr0_cidrs": [{key: prefix, "length": int(length)}],
        "entities": [{"objectClassName": "entity", "roles": ["registrant"], "vcardArray": ["vcard", [["version", {}, "text", "4.0"]]],
                      "entities": [{"objectClassName": "entity", "roles": ["abuse"], "vcardArray": [
                          "vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse desk"],
                                    ["email", {}, "text", email]]]}]}],
    }


def _incident_lake(root, amplifiers, victim=VICTIM, hour=0):
    rows = [flow(at(hour, m), a, victim, 123, 40000 + m, packets=10, bytes=4680) for a in amplifiers for m in range(5)]
    rows += [flow(at(hour, 1), "192.0.2.99", "203.0.113.50", 443, 50000, proto=6)]  # unrelated traffic
    write_lake(root, flows=rows)
    alert = Alert(detector="ntp_amplifier", window_start=at(hour), window_end=at(hour, 10),
                  subjects=[Subject(role="amplifier", value=a) for a in amplifiers] + [Subject(role="victim", value=victim)],
                  score=0.9, confidence="high", metrics={"bytes": 4680.0 * 5 * len(amplifiers)},
                  evidence=f"SELECT * FROM flows WHERE src_port = 123 AND dst_ip = '{victim}' ORDER BY start_time, src_ip")
    store_alerts(root, [alert])
    return alert


@pytest.fixture
def world(tmp_path):
    lake = tmp_path / "data" / "lake"
    _incident_lake(lake, [*NET_A, NO_CONTACT, V6])
    (tmp_path / "rdap").mkdir()
    (tmp_path / "rdap" / "net6.json").write_text(json.dumps(rdap_network("2001:db8:5::/48", "abuse@v6-net.example")))
    clock = {"now": at(2)}
    with SmtpServer() as smtp:
        options = {
            "sender": "abuse-reports@cert.example", "reporter_org": "Example CERT",
            "abuse_contacts": {"192.0.2.0/24": "abuse@net-a.example", "192.0.0.0/16": "wide@registry.example"},
            "rdap_cache": str(tmp_path / "rdap"), "data_dir": str(tmp_path / "data"),
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "clock": lambda: clock["now"],
        }
        yield {"lake": lake, "smtp": smtp, "options": options, "clock": clock, "tmp": tmp_path}


def _action(incident_id, addresses, **params):
    return Action(kind="report_abuse", point="abuse", incident_id=incident_id, params=params,
                  match=Match(src_prefixes=tuple(addresses)), ttl_seconds=86400).with_id()


def test_reports_go_out_bundled_per_network_with_arf_and_valid_xarf(world):
    incident = correlate(load_alerts(world["lake"]))[0]
    driver = load_driver("abuse", "abuse", world["options"])
    action = _action(incident.id, [*NET_A, NO_CONTACT, V6])
    driver.apply([action])

    got = {rcpts[0]: msg for _, rcpts, msg in world["smtp"].messages}
    assert sorted(got) == ["abuse@net-a.example", "abuse@v6-net.example"]  # one per network, /24 beat the /16
    msg = got["abuse@net-a.example"]
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "feedback-report"
    assert msg["X-Necoma-Incident"] == incident.id
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts[:3]] == ["text/plain", "message/feedback-report", "text/csv"]
    human = parts[0].get_content()
    assert all(a in human for a in NET_A) and VICTIM in human and incident.id in human
    fields = parts[1].get_payload()[0]  # message/* parts parse as a nested header block
    assert fields["Feedback-Type"] == "abuse" and fields["Version"] == "1"
    assert fields["User-Agent"].startswith("necoma/") and fields["Source-IP"] in NET_A
    assert fields["Arrival-Date"] and int(fields["Incidents"]) == 10
    rows = list(csv.DictReader(io.StringIO(parts[2].get_content())))
    assert {r["src_ip"] for r in rows} == set(NET_A) and {r["src_port"] for r in rows} == {"123"}

    xarfs = [json.loads(p.get_content()) for p in parts[3:]]
    assert sorted(x["source_identifier"] for x in xarfs) == sorted(NET_A)
    for x in xarfs:
        xarf.validate(x)  # the official schema, formats checked
        assert (x["category"], x["type"], x["source_port"], x["destination_ip"]) == ("connection", "ddos", 123, VICTIM)
        assert x["attack_vector"] == "ntp_amplification" and x["reporter"]["org"] == "Example CERT"
        assert x["evidence"][0]["content_type"] == "text/csv"
    v6 = got["abuse@v6-net.example"]
    assert [json.loads(p.get_content())["source_identifier"] for p in list(v6.iter_parts())[3:]] == [V6]

    assert driver.refusals(action.id) == [(NO_CONTACT, f"no abuse contact for {NO_CONTACT}")]
    assert driver.installed() == {action.id}

    # idempotent: applying again sends nothing; another action on the same incident is de-duplicated
    driver.apply([action])
    driver.apply([_action(incident.id, NET_A, note="second playbook")])
    assert len(world["smtp"].messages) == 2

    world["clock"]["now"] += timedelta(days=2)  # past the TTL
    assert driver.installed() == set()


def test_invalid_report_is_refused_not_sent(world):
    ev_params = {"incident_id": "inc-x", "title": "scan", "category": "scanning", "window_start": "2026-03-02T00:00:00Z",
                 "window_end": "2026-03-02T01:00:00Z", "subjects": [["scanner", NET_A[0]]]}
    driver = load_driver("abuse", "abuse", world["options"])
    a = Action(kind="report_abuse", point="abuse", match=Match(src_prefixes=(NET_A[0],)), params={"evidence": ev_params}).with_id()
    with pytest.raises(DriverError, match="source_port"):  # X-ARF port_scan needs the source port; no rows give it
        driver.apply([a])
    assert world["smtp"].messages == []
    bad = Action(kind="report_abuse", point="abuse", match=Match(src_prefixes=(NET_A[0],)),
                 params={"evidence": {"title": "no id"}}).with_id()
    with pytest.raises(DriverError, match="params.evidence is invalid"):
        driver.apply([bad])


def test_network_without_contact_is_refused_with_the_reason(world):
    driver = load_driver("abuse", "abuse", world["options"])
    incident = correlate(load_alerts(world["lake"]))[0]
    action = _action(incident.id, [NO_CONTACT])
    with pytest.raises(DriverError, match=f"no abuse contact for {NO_CONTACT}"):
        driver.apply([action])
    assert world["smtp"].messages == [] and driver.installed() == set()


def test_rate_limit_per_abuse_address(world, tmp_path):
    driver = load_driver("abuse", "abuse", {**world["options"], "max_per_hour": 2})
    actions = []
    for i in range(3):  # three incidents, all from net A
        ev = {"incident_id": f"inc-{i}", "title": f"ntp amplification {i}", "category": "amplifier",
              "detectors": ["ntp_amplifier"], "window_start": at(0).isoformat(), "window_end": at(1).isoformat(),
              "subjects": [["amplifier", NET_A[0]], ["victim", VICTIM]]}
        actions.append(_action(None, [NET_A[0]], evidence=ev))
    driver.apply(actions[:2])
    with pytest.raises(DriverError, match="rate limit: 2 reports to abuse@net-a.example"):
        driver.apply(actions[2:])
    assert len(world["smtp"].messages) == 2
    world["clock"]["now"] += timedelta(minutes=61)
    driver.apply(actions)  # the hour has passed: the third goes out, the first two are not sent again
    assert len(world["smtp"].messages) == 3
    assert driver.installed() == {a.id for a in actions}
    driver.withdraw(actions[:1])
    assert driver.installed() == {a.id for a in actions[1:]}


def test_outbox_writes_eml_files(world, tmp_path):
    incident = correlate(load_alerts(world["lake"]))[0]
    opts = {k: v for k, v in world["options"].items() if not k.startswith("smtp")}
    driver = load_driver("abuse", "abuse", {**opts, "outbox": str(tmp_path / "outbox")})
    driver.apply([_action(incident.id, NET_A)])
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg.get_param("report-type") == "feedback-report" and msg["To"] == "abuse@net-a.example"


def test_contacts_config_rdap_cache_and_rdap_server(tmp_path):
    answer = json.dumps(rdap_network("198.51.100.0/24", "abuse@rdap-net.example")).encode()
    with HttpServer(routes={"/rdap/ip/198.51.100.7": (200, answer)}) as rdap:
        book = ContactBook({"2001:db8::/32": "v6@conf.example", "2001:db8:1::/48": "v6-narrow@conf.example"},
                           rdap_cache=tmp_path / "cache", rdap_url=rdap.url + "/rdap", timeout=5)
        assert book.lookup("2001:db8:1::9")[0].email == "v6-narrow@conf.example"
        assert book.lookup("2001:db8:2::9")[0].email == "v6@conf.example"
        contact, _ = book.lookup("198.51.100.7")
        assert (contact.email, contact.network, contact.source) == ("abuse@rdap-net.example", "198.51.100.0/24", "rdap")
        contact, why = book.lookup("192.0.2.7")
        assert contact is None and why.startswith("no abuse contact for 192.0.2.7 (RDAP") and "404" in why
    # the RDAP answer was cached: a new book finds it offline
    offline = ContactBook(rdap_cache=tmp_path / "cache")
    assert offline.lookup("198.51.100.200")[0].source == "rdap-cache"
    assert offline.lookup("not-an-ip")[1] == "'not-an-ip' is not an IP address or prefix"
    with pytest.raises(ValueError, match="not an email"):
        ContactBook({"192.0.2.0/24": "nobody"})


def test_bot_report_is_infected_host_with_reported_domains(world):
    rows = [{"time": at(0, m).isoformat(), "client_ip": "192.0.2.50", "qname": f"qwzxbplmnrt{m}.com", "qtype": 1, "rcode": 3}
            for m in range(3)] + [{"time": at(0).isoformat(), "client_ip": "192.0.2.60", "qname": "other.example"}]
    ev = {"incident_id": "inc-bot", "title": "bots: 192.0.2.50", "category": "bots", "detectors": ["zeus_dga"],
          "window_start": at(0).isoformat(), "window_end": at(1).isoformat(), "rows": rows,
          "subjects": [["bot", "192.0.2.50"]] + [["domain", f"qwzxbplmnrt{m}.com"] for m in range(3)]}
    driver = load_driver("abuse", "abuse", world["options"])
    driver.apply([Action(kind="report_abuse", point="abuse", params={"evidence": ev}).with_id()])  # addresses from the subjects
    (_, rcpts, msg), = world["smtp"].messages
    parts = list(msg.iter_parts())
    fields = parts[1].get_payload()[0]
    assert fields.get_all("Reported-Domain") == [f"qwzxbplmnrt{m}.com" for m in range(3)]
    assert len(list(csv.DictReader(io.StringIO(parts[2].get_content())))) == 3  # only the bot's rows
    x = json.loads(parts[3].get_content())
    assert (x["category"], x["type"], x["bot_type"], x["bot_name"]) == ("connection", "infected_host", "malicious", "GameOver ZeuS")
    assert "malware:gameover-zeus" in x["tags"]
