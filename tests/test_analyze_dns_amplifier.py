from __future__ import annotations

import datetime as dt

from necoma.analyze.detectors.dns_amplifier import DnsAmplifier
from tests.test_analyze_support import DAY, at, flow, packet, run, write_lake

VICTIM = "203.0.113.50"
RESOLVERS = [f"198.51.100.{i}" for i in range(1, 31)]


def attack(hour=2, rate=100):
    """30 resolvers answering spoofed ANY queries with 3000-byte, fragmented responses."""
    return [flow(at(hour, i), r, VICTIM, 53, 33333, packets=300, bytes=300 * 1500, rate=rate, fragments=200)
            for i, r in enumerate(RESOLVERS)]


def recursive_resolver_traffic(hour=2, rate=100):
    """A busy recursive resolver asking 40 authoritative servers and getting big DNSSEC answers: it asked."""
    rows = []
    for i in range(40):
        auth = f"192.0.2.{i + 10}"
        rows.append(flow(at(hour, i), "10.9.9.9", auth, 40000 + i, 53, packets=500, bytes=500 * 80, rate=rate))
        rows.append(flow(at(hour, i), auth, "10.9.9.9", 53, 40000 + i, packets=500, bytes=500 * 900, rate=rate))
    return rows


def test_victim_and_amplifiers_found_open_resolvers_marked(tmp_path):
    iplist = [{"network": f"{r}/32", "list_name": "open-resolvers", "first_seen": DAY - dt.timedelta(days=3)} for r in RESOLVERS[:10]]
    iplist.append({"network": "198.51.100.16/29", "list_name": "open-resolvers", "first_seen": DAY})
    iplist.append({"network": "198.51.100.0/24", "list_name": "allow", "first_seen": DAY})
    write_lake(tmp_path, flows=attack() + recursive_resolver_traffic(), iplists=iplist)
    (a,) = run(DnsAmplifier, tmp_path)
    assert a.subjects_with("victim") == [VICTIM]
    assert sorted(a.subjects_with("amplifier")) == sorted(RESOLVERS)
    assert a.metrics["open_resolvers"] == 10 + 8  # ten /32 entries and the /29
    assert a.metrics["bytes"] == 30 * 300 * 1500 * 100
    assert a.metrics["fragments"] == 30 * 200 * 100


def test_legitimate_large_dns_responses_do_not_alert(tmp_path):
    write_lake(tmp_path, flows=recursive_resolver_traffic(2) + recursive_resolver_traffic(3))
    assert run(DnsAmplifier, tmp_path) == []


def test_small_responses_do_not_alert(tmp_path):
    rows = [flow(at(2, i), r, VICTIM, 53, 33333, packets=3000, bytes=3000 * 120, rate=100) for i, r in enumerate(RESOLVERS)]
    write_lake(tmp_path, flows=rows)
    assert run(DnsAmplifier, tmp_path) == []


def test_sampled_packets_first_fragments(tmp_path):
    pk = []
    for i, r in enumerate(RESOLVERS[:8]):
        for k in range(5):
            pk.append(packet(at(4, i, k), r, VICTIM, 53, 4444, length=1500, rate=2048, more=True))
    write_lake(tmp_path, packets=pk)
    (a,) = run(DnsAmplifier, tmp_path)
    assert a.window_start == at(4)
    assert a.metrics["bytes"] == 8 * 5 * 1500 * 2048
    assert a.metrics["open_resolvers"] == 0
