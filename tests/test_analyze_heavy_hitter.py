from __future__ import annotations

import datetime as dt

from necoma.analyze.detectors.heavy_hitter import HeavyHitter
from tests.test_analyze_support import DAY, flow, run, write_lake


def hour(h):
    return DAY + dt.timedelta(hours=h)


def background(first=-6, last=24):
    """120 clients in 10.1.0.0/16 browsing 60 servers, and a backup job heavy every hour (legitimate)."""
    rows = []
    for h in range(first, last):
        for c in range(120):
            client = f"10.1.{c // 10}.{c % 10 + 1}"
            server = f"172.16.{c % 60}.{c % 7 + 1}"
            rows.append(flow(hour(h) + dt.timedelta(minutes=c % 60), client, server, 40000 + c, 443, proto=6,
                             packets=40, bytes=40_000, rate=10))
            rows.append(flow(hour(h) + dt.timedelta(minutes=c % 60), server, client, 443, 40000 + c, proto=6,
                             packets=60, bytes=80_000, rate=10))
        rows.append(flow(hour(h), "10.0.5.5", "10.8.0.10", 50000, 873, proto=6, packets=5000, bytes=6_000_000, rate=10))
        rows.append(flow(hour(h), "2001:db8:5::5", "2001:db8:8::10", 50001, 873, proto=6, packets=5000, bytes=4_000_000, rate=10))
    return rows


def exfiltration(h=20):
    return [flow(hour(h) + dt.timedelta(minutes=5 * i), "10.0.7.7", "203.0.113.200", 51515, 443, proto=6,
                 packets=800, bytes=1_000_000, rate=10) for i in range(12)]


def test_new_heavy_pair_found_steady_ones_not(tmp_path):
    write_lake(tmp_path, flows=background() + exfiltration())
    alerts = run(HeavyHitter, tmp_path)
    found = sorted((a.window_start, s.role, s.value) for a in alerts for s in a.subjects if s.role != "host")
    assert found == [(hour(20), "destination", "203.0.113.0/24"), (hour(20), "source", "10.0.7.0/24")]
    src = [a for a in alerts if a.subjects_with("source")][0]
    assert src.subjects_with("host") == ["10.0.7.7"]
    assert src.metrics["bytes"] == 12 * 1_000_000 * 10
    assert src.metrics["byte_share"] > 0.10


def test_steady_heavy_hitters_never_alert(tmp_path):
    write_lake(tmp_path, flows=background())
    assert run(HeavyHitter, tmp_path) == []


def test_learning_period_and_novelty_window(tmp_path):
    # no data before the day: the first hours only learn, so the backup job is not reported at 00:00
    write_lake(tmp_path, flows=background(first=0))
    assert run(HeavyHitter, tmp_path) == []
    # a heavy hitter seen 30 hours ago is new again when the novelty window is 24 reports
    write_lake(tmp_path / "b", flows=background(first=-40) + exfiltration(-30) + exfiltration(2))
    alerts = run(HeavyHitter, tmp_path / "b")
    assert {a.window_start for a in alerts} == {hour(2)}
    assert run(HeavyHitter, tmp_path / "b", novelty_reports=36) == []


def test_host_rule_hashdoop(tmp_path):
    # a host sending very many small packets (a flood), too few bytes to pass the 10 % prefix share
    burst = [flow(hour(9) + dt.timedelta(minutes=5 * i), "10.1.3.3", "198.51.100.1", 1000 + i, 80, proto=6,
                  packets=5_000, bytes=200_000, rate=1) for i in range(12)]
    write_lake(tmp_path, flows=background() + burst)
    alerts = [a for a in run(HeavyHitter, tmp_path, min_share=0.5) if a.window_start == hour(9)]
    assert [a.subjects_with("host") for a in alerts] == [["10.1.3.3"]]
    assert alerts[0].metrics["packets"] == 60_000 + 40 * 10


def test_one_large_download_is_a_burst_not_a_heavy_hitter(tmp_path):
    download = [flow(hour(15) + dt.timedelta(minutes=31), "198.18.9.9", "10.1.2.3", 443, 45678, proto=6,
                     packets=9000, bytes=12_000_000, rate=10)]
    write_lake(tmp_path, flows=background() + download)
    assert run(HeavyHitter, tmp_path) == []
    assert len(run(HeavyHitter, tmp_path, max_burst_share=1.0)) >= 2  # source and destination prefixes


def test_steady_hitter_whose_share_rises_only_in_a_quiet_hour_is_not_new(tmp_path):
    # a steady replication stream at ~6 % of bytes; at 03:00 most clients are off, so its share passes 10 %
    quiet = [r for r in background() if not (r["start_time"].hour == 3 and r["start_time"].date() == DAY.date()
                                             and r["src_ip"].startswith(("10.1.", "172.16.")) and r["src_port"] % 10)]
    steady = [flow(hour(h) + dt.timedelta(minutes=5 * i), "10.0.9.9", "10.9.0.20", 50002, 873, proto=6,
                   packets=100, bytes=125_000, rate=10) for h in range(-6, 24) for i in range(12)]
    write_lake(tmp_path, flows=quiet + steady)
    at3 = [r for r in quiet + steady if hour(3) <= r["start_time"] < hour(4)]
    total = sum(r["bytes"] * r["sampling_rate"] for r in at3)
    assert 15_000_000 > 0.10 * total  # heavy and never heavy before: NECOMA's novelty alone would report it
    assert run(HeavyHitter, tmp_path) == []


def test_busy_server_sending_to_many_clients_is_not_a_new_pair(tmp_path):
    # an update server serving a few clients an hour, then forty at 11:00: its /24 is new and heavy, but not a pair
    cdn = [flow(hour(h) + dt.timedelta(minutes=(7 * c) % 60), "198.18.50.1", f"10.1.{c % 12}.{c % 10 + 1}", 443,
                42000 + c, proto=6, packets=300, bytes=400_000, rate=10)
           for h in range(-6, 24) for c in range(40 if h == 11 else 3)]
    write_lake(tmp_path, flows=background() + cdn)
    assert run(HeavyHitter, tmp_path) == []
    # the same with one big download in that hour: its pair has most of the bytes, but in one burst
    big = [flow(hour(11) + dt.timedelta(minutes=31), "198.18.50.1", "10.1.3.3", 443, 45000, proto=6,
                packets=20_000, bytes=20_000_000, rate=10)]
    write_lake(tmp_path / "big", flows=background() + cdn + big)
    assert run(HeavyHitter, tmp_path / "big") == []
    # without the pair conditions (one destination, spread over the hour) it would be reported
    alerts = run(HeavyHitter, tmp_path, min_top_host_share=0.0, max_burst_share=1.0)
    assert sorted((a.window_start, s.role, s.value) for a in alerts for s in a.subjects if s.role != "host") == [
        (hour(11), "source", "198.18.50.0/24")]
    assert {a.window_start for a in alerts} == {hour(11)}  # the prefix, and the host rule's same finding
