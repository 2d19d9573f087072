"""Alert → incident correlation, the category taxonomy and the explainable rating."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from necoma.analyze.alert import Alert, Subject
from necoma.knowledge import taxonomy
from necoma.knowledge.correlate import CorrelationParams, correlate
from necoma.knowledge.lists import Lists

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)

# n6's category vocabulary (CERT Polska n6 event model).
N6 = {"amplifier", "bots", "backdoor", "cnc", "deface", "dns-query", "dos-attacker", "dos-victim", "flow",
      "flow-anomaly", "fraud", "leak", "malurl", "malware-action", "other", "phish", "proxy", "sandbox-url",
      "scam", "scanning", "server-exploit", "spam", "spam-url", "tor", "vulnerable", "webinject"}


def alert(detector: str, start: timedelta, hours: float, *subjects: tuple[str, str], score=0.8, confidence="high",
          **metrics) -> Alert:
    return Alert(detector=detector, window_start=T0 + start, window_end=T0 + start + hours * H,
                 subjects=[Subject(role=r, value=v) for r, v in subjects], score=score, confidence=confidence,
                 metrics=metrics)


def botnet() -> list[Alert]:
    """A GameOver ZeuS bot seen in DNS twice and as a heavy hitter in flows (by its /24)."""
    return [
        alert("zeus_dga", timedelta(0), 24, ("bot", "10.1.2.3"), ("bot", "10.1.9.9"), ("domain", "qwzxbplmnrt.com"),
              ("cnc", "203.0.113.7")),
        alert("dns_failure_graph", 5 * H, 1, ("bot", "10.1.2.3"), ("domain", "ykfjrudnwq.net"), confidence="medium"),
        alert("heavy_hitter", 30 * H, 1, ("source", "10.1.2.0/24"), score=0.5, confidence="medium"),
        alert("heavy_hitter", 7 * H, 1, ("destination", "203.0.113.7"), score=0.4, confidence="low"),
    ]


def test_bot_seen_by_three_detectors_is_one_incident():
    incidents = correlate(botnet())
    # The /24 heavy hitter at hour 30 is beyond the daily window plus the 1-hour gap: its own incident.
    assert [len(i.alerts) for i in incidents] == [3, 1]
    bot = incidents[0]
    assert bot.category == "bots" and bot.n6_category == "bots"
    assert bot.detectors == ["dns_failure_graph", "heavy_hitter", "zeus_dga"]
    assert bot.layers == ["dns", "flow"]
    assert {"10.1.2.3", "203.0.113.7", "qwzxbplmnrt.com"} <= {s.value for s in bot.subjects}
    assert bot.window_start == T0 and bot.window_end == T0 + 24 * H
    assert incidents[1].category == "flow-anomaly"
    wider = correlate(botnet(), CorrelationParams(gap=12 * H))
    assert len(wider) == 1 and len(wider[0].alerts) == 4  # a wider gap reaches it


def test_prefix_links_addresses_inside_it_only_when_long_enough():
    alerts = [alert("ssl_scan", timedelta(0), 1, ("scanner", "198.51.100.23")),
              alert("heavy_hitter", timedelta(0), 1, ("source", "198.51.100.0/24"))]
    assert len(correlate(alerts)) == 1
    broad = [alerts[0], alert("heavy_hitter", timedelta(0), 1, ("source", "198.0.0.0/8"))]
    assert len(correlate(broad)) == 2  # a /8 must not glue every host in it together
    assert len(correlate(broad, CorrelationParams(min_prefix_v4=8))) == 1
    v6 = [alert("ssl_scan", timedelta(0), 1, ("scanner", "2001:db8:1:2::5")),
          alert("heavy_hitter", timedelta(0), 1, ("source", "2001:db8:1::/48"))]
    assert len(correlate(v6)) == 1


def test_time_overlap_transitivity_and_independence():
    a = alert("ntp_amplifier", timedelta(0), 1, ("amplifier", "192.0.2.1"), ("victim", "198.51.100.9"))
    b = alert("udp_fragmentation", 1.5 * H, 1, ("victim", "198.51.100.9"))
    c = alert("dns_amplifier", 2 * H, 1, ("amplifier", "192.0.2.53"), ("victim", "198.51.100.9"))
    later = alert("ntp_amplifier", 10 * H, 1, ("amplifier", "192.0.2.1"), ("victim", "198.51.100.77"))
    other = alert("ssl_scan", timedelta(0), 1, ("scanner", "203.0.113.200"))
    incidents = correlate([a, b, c, later, other])
    sizes = sorted(len(i.alerts) for i in incidents)
    assert sizes == [1, 1, 3]
    ddos = next(i for i in incidents if len(i.alerts) == 3)
    assert ddos.category == "amplifier" and ddos.layers == ["flow", "packet"]


def test_urls_link_through_their_host_and_domains_case_insensitively():
    a = alert("phishing_feed", timedelta(0), 1, ("url", "http://Login-Bank.example/x?y=1"))
    b = alert("zeus_dga", timedelta(0), 2, ("domain", "login-bank.EXAMPLE."), ("bot", "10.0.0.1"))
    incidents = correlate([a, b])
    assert len(incidents) == 1 and incidents[0].category == "bots" and incidents[0].layers == ["dns", "web"]


def test_ids_are_stable_and_order_independent():
    alerts = botnet()
    first = correlate(alerts)
    shuffled = alerts[:]
    random.Random(7).shuffle(shuffled)
    assert [i.id for i in correlate(shuffled)] == [i.id for i in first]
    assert [i.model_dump() for i in correlate(shuffled + alerts)] == [i.model_dump() for i in first]  # duplicates too


def test_rating_terms_explain_the_rating():
    single = correlate([alert("zeus_dga", timedelta(0), 24, ("bot", "10.1.2.3"), ("cnc", "203.0.113.7"))])[0]
    corroborated = correlate(botnet())[0]
    assert corroborated.rating > single.rating
    for inc in (single, corroborated):
        assert inc.rating == max(0, min(100, round(sum(t.points for t in inc.rating_terms))))
        assert {t.name for t in inc.rating_terms} >= {"detector confidence", "volume"}
        assert all(t.why for t in inc.rating_terms)
    names = {t.name: t for t in corroborated.rating_terms}
    assert names["layers"].points == 15 and "dns, flow" in names["layers"].why
    assert names["detectors"].points == 10
    assert corroborated.confidence == "high"
    text = corroborated.explain()
    assert f"rating {corroborated.rating}/100" in text and "layers" in text


@pytest.mark.parametrize("allow, deny, direction", [((), ("203.0.113.0/24",), 1), (("10.0.0.0/8",), (), -1),
                                                    ((), ("QWZXBPLMNRT.com",), 1)])
def test_allow_and_deny_lists(allow, deny, direction):
    alerts = botnet()[:1]
    base = correlate(alerts)[0]
    listed = correlate(alerts, lists=Lists.of(allow=allow, deny=deny))[0]
    assert (listed.rating - base.rating) * direction > 0
    term = "deny list" if deny else "allow list"
    assert any(t.name == term for t in listed.rating_terms)
    if allow:
        assert listed.confidence == "low"


def test_lists_match_subdomains_prefixes_and_url_hosts():
    lists = Lists.of(allow=["example.org", "192.0.2.0/24", "# comment", ""], deny=["2001:db8::/32"])
    assert "www.example.org" in lists.allow and "example.org." in lists.allow
    assert "notexample.org" not in lists.allow
    assert "https://cdn.example.org/a" in lists.allow and "192.0.2.44" in lists.allow
    assert "192.0.3.1" not in lists.allow and "2001:db8::1" in lists.deny and "2001:db9::1" not in lists.deny


def test_taxonomy_maps_to_n6():
    assert {c.n6 for c in taxonomy.CATEGORIES.values()} <= N6
    for name, info in taxonomy.DETECTORS.items():
        assert info.category in taxonomy.CATEGORIES and info.layer in taxonomy.LAYERS, name
    assert taxonomy.detector_info("brand_new", ["victim", "amplifier"]).category == "amplifier"
    assert taxonomy.detector_info("brand_new", ["host"]).category == "other"
    assert taxonomy.pick(["flow-anomaly", "bots", "scanning"]) == "bots"
    assert taxonomy.pick([]) == "other"
    from necoma.analyze.alert import ROLES

    known = {"cnc", "bot", "url", "amplifier", "victim", "attacker", "scanner"}
    assert known <= set(ROLES)


def test_every_registered_detector_has_a_layer_and_category():
    from necoma.analyze.registry import ORDER

    assert set(ORDER) <= set(taxonomy.DETECTORS)
