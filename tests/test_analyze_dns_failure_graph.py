from __future__ import annotations

import random

from necoma.analyze.detectors.dns_failure_graph import DnsFailureGraph, prune
from necoma.lake.engines import open_engine
from tests.test_analyze_support import at, dns, run, write_lake

SPAM_BOTS = [f"10.5.0.{i}" for i in range(1, 6)]
TROJANS = [f"10.6.0.{i}" for i in range(1, 4)]


def spam(rng):
    recipients = [f"shop{i}-mail.{rng.choice(['com', 'net', 'biz'])}" for i in range(40)]
    rows = []
    for b in SPAM_BOTS:
        for name in rng.sample(recipients, 26):
            rows.append(dns(at(13, rng.randrange(60)), b, name, qtype=15, rcode=3 if hash(name) % 7 else 2))
    return rows


def trojans(rng):
    names = [f"update-{i}.{tld}" for i, tld in enumerate(["info", "org", "ru", "info", "org", "ru"])]
    return [dns(at(h, m), t, n, rcode=3) for t in TROJANS for n in names for h in (14, 15) for m in (5, 35)]


def noise(rng):
    rows = []
    popular = ["www.google.com", "mail.example.com", "api.github.com", "cdn.jsdelivr.net", "login.live.com"]
    for c in range(60):
        host = f"10.7.{c // 50}.{c % 50 + 1}"
        for _ in range(2):  # typos and browser probes: scattered
            rows.append(dns(at(rng.randrange(24)), host, "".join(rng.choice("abcdefghij") for _ in range(9)), rcode=3))
        for name in popular:  # every host retries popular names with a mis-set search suffix
            rows.append(dns(at(rng.randrange(24)), host, f"{name}.corp.example", rcode=3))
        rows.append(dns(at(rng.randrange(24)), host, "www.google.com", answers=["192.0.2.1"]))  # successes are not failures
    return rows


def test_spam_and_trojan_groups_found_background_not(tmp_path):
    rng = random.Random(7)
    write_lake(tmp_path, dns=spam(rng) + trojans(rng) + noise(rng))
    alerts = run(DnsFailureGraph, tmp_path)
    groups = sorted((sorted(a.subjects_with("bot")), len(a.subjects_with("domain"))) for a in alerts)
    assert [g[0] for g in groups] == [SPAM_BOTS, TROJANS]
    assert groups[1][1] == 6
    assert groups[0][1] >= 30  # recipient domains failed by at least two bots
    for a in alerts:
        assert not any(d.endswith(".corp.example") for d in a.subjects_with("domain"))


def test_evidence_gives_fqdn_host_cluster_rows(tmp_path):
    rng = random.Random(7)
    write_lake(tmp_path, dns=trojans(rng) + noise(rng))
    (a,) = run(DnsFailureGraph, tmp_path)
    with open_engine("duckdb", tmp_path) as eng:
        rows = eng.query(a.evidence)
    assert len(rows) == 3 * 6
    assert set(rows[0]) == {"fqdn", "host", "cluster", "cluster_size", "degree", "failures", "confidence"}
    assert {r["degree"] for r in rows} == {3} and {r["cluster_size"] for r in rows} == {9}
    assert {r["failures"] for r in rows} == {4}


def test_background_failures_alone_do_not_alert(tmp_path):
    write_lake(tmp_path, dns=noise(random.Random(3)))
    assert run(DnsFailureGraph, tmp_path) == []


def test_prune_is_repeated_until_stable():
    edges = {("a", "x"): 1, ("b", "x"): 1, ("a", "y"): 1, ("c", "z"): 1}
    assert prune(edges, 2, 2) == {}
    edges.update({("b", "y"): 1})
    assert set(prune(edges, 2, 2)) == {("a", "x"), ("b", "x"), ("a", "y"), ("b", "y")}


def test_one_bot_recipients_rejoin_a_spam_cluster_not_a_trojan_one(tmp_path):
    rng = random.Random(7)
    lone_mx = [dns(at(13, 30), SPAM_BOTS[i], f"lonely{i}-mail.net", qtype=15, rcode=3) for i in range(3)]
    lone_a = [dns(at(14, 30), TROJANS[0], "lonely-update.info", rcode=3),  # A, like everyone's failures
              dns(at(13, 40), SPAM_BOTS[0], "lonely-a.example.org", rcode=3)]
    write_lake(tmp_path, dns=spam(rng) + trojans(rng) + noise(rng) + lone_mx + lone_a)
    by_bots = {tuple(sorted(a.subjects_with("bot"))): set(a.subjects_with("domain")) for a in run(DnsFailureGraph, tmp_path)}
    spam_names, trojan_names = by_bots[tuple(SPAM_BOTS)], by_bots[tuple(TROJANS)]
    assert {"lonely0-mail.net", "lonely1-mail.net", "lonely2-mail.net"} <= spam_names  # MX: the spam signature
    assert "lonely-a.example.org" not in spam_names  # another query type than the cluster's
    assert "lonely-update.info" not in trojan_names and len(trojan_names) == 6  # A failures are no signature
    # when ordinary hosts fail MX lookups as often (a mail relay), MX is no signature: nothing rejoins
    relay = [dns(at(h, m), f"10.7.0.{c}", f"relay{c}-{h}-{m}.example.com", qtype=15, rcode=3)
             for c in range(1, 13) for h in range(24) for m in (0, 30)]
    write_lake(tmp_path / "b", dns=spam(random.Random(7)) + noise(random.Random(7)) + lone_mx + relay)
    (a,) = [a for a in run(DnsFailureGraph, tmp_path / "b") if sorted(a.subjects_with("bot")) == SPAM_BOTS]
    assert not any(d.startswith("lonely") for d in a.subjects_with("domain"))


def resolver_trouble(rng):
    """SERVFAIL on popular names that resolve for everyone else: many unrelated hosts, a dense-looking block."""
    popular = [f"{w}.{d}" for w in ("www", "api", "cdn") for d in ("example.com", "example.net", "example.org")]
    rows = []
    for c in range(40):
        host = f"10.8.0.{c + 1}"
        for name in rng.sample(popular, 6):
            rows.append(dns(at(rng.randrange(24)), host, name, rcode=2))
            rows.append(dns(at(rng.randrange(24)), host, name, answers=["192.0.2.7"]))
    return rows


def test_servfail_on_names_that_resolve_is_resolver_trouble_not_a_group(tmp_path):
    rng = random.Random(5)
    write_lake(tmp_path, dns=resolver_trouble(rng))
    assert run(DnsFailureGraph, tmp_path) == []  # names that resolved the same day: not counted
    write_lake(tmp_path / "all", dns=resolver_trouble(random.Random(5)))
    counted = run(DnsFailureGraph, tmp_path / "all", transient_rcodes=[])  # the same failures, all counted
    assert counted and {n for a in counted for n in a.subjects_with("domain")} <= {
        f"{w}.{d}" for w in ("www", "api", "cdn") for d in ("example.com", "example.net", "example.org")}


def test_servfail_on_names_that_never_resolve_still_counts(tmp_path):
    rng = random.Random(7)
    write_lake(tmp_path, dns=spam(rng) + resolver_trouble(rng))
    alerts = run(DnsFailureGraph, tmp_path)
    assert [sorted(a.subjects_with("bot")) for a in alerts] == [SPAM_BOTS]
    spam_servfail = {r["qname"] for r in spam(random.Random(7)) if r["rcode"] == 2}
    assert spam_servfail & set(alerts[0].subjects_with("domain"))  # SERVFAIL of a dead recipient domain
