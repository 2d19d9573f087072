from __future__ import annotations

import datetime as dt

from necoma.analyze.detectors.udp_fragmentation import UdpFragmentation
from tests.test_analyze_support import DAY, at, flow, packet, run, write_lake

VICTIM = "203.0.113.99"


def fragments(t, dst, n, rate=512, src="198.51.100.7"):
    """n sampled packets: alternating first fragments (ports, MF) and non-first ones (no ports, offset)."""
    out = []
    for i in range(n):
        first = i % 2 == 0
        out.append(packet(t + dt.timedelta(seconds=i % 300), src, dst, 4444 if first else None, 80 if first else None,
                          length=1500 if first else 600, rate=rate, offset=0 if first else 1480, more=first))
    return out


def vpn_background(hours=26, dst="10.0.0.20"):
    """A VPN endpoint receiving a steady stream of fragments every 5 minutes, at flood-like volume."""
    rows = []
    start = DAY - dt.timedelta(hours=hours - 24)
    for k in range(hours * 12):
        rows += fragments(start + dt.timedelta(minutes=5 * k), dst, 40 + (k % 3), src="10.0.0.21")
    return rows


def test_flood_found_above_baseline_and_floor(tmp_path):
    flood = fragments(at(10, 15), VICTIM, 200) + fragments(at(10, 15), VICTIM, 50, src="198.51.100.8")
    write_lake(tmp_path, packets=vpn_background() + flood)
    alerts = run(UdpFragmentation, tmp_path)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.subjects_with("victim") == [VICTIM]
    assert a.window_start == at(10, 15) and a.window_end == at(10, 20)
    assert a.metrics["fragments"] == 250 * 512
    assert a.metrics["first_fragments"] == 125 * 512
    assert set(a.subjects_with("attacker")) == {"198.51.100.7", "198.51.100.8"}


def test_steady_fragment_receiver_does_not_alert(tmp_path):
    write_lake(tmp_path, packets=vpn_background())
    assert run(UdpFragmentation, tmp_path) == []


def test_baseline_rises_with_history_but_floor_holds(tmp_path):
    # the same 20k fragments per bin alert for a new destination...
    write_lake(tmp_path, packets=fragments(at(3), VICTIM, 40))
    assert len(run(UdpFragmentation, tmp_path)) == 1
    # ...but not below the absolute floor
    assert run(UdpFragmentation, tmp_path, min_fragments=30_000) == []


def test_flow_fragment_counts_are_used(tmp_path):
    rows = [flow(at(6, 1), "198.51.100.9", VICTIM, 0, 0, packets=30, bytes=30 * 1000, rate=1000, fragments=30)]
    write_lake(tmp_path, flows=rows)
    (a,) = run(UdpFragmentation, tmp_path)
    assert a.metrics["fragments"] == 30_000
