from __future__ import annotations

from necoma.analyze.detectors.reflection import Reflection
from tests.test_analyze_support import at, flow, run, write_lake

VICTIM = "203.0.113.80"


def reflected(port, size, n=12, hour=1, victim=VICTIM, rate=100, prefix="198.51.100"):
    return [flow(at(hour, i), f"{prefix}.{i + 1}", victim, port, 5555, packets=1000, bytes=1000 * size, rate=rate)
            for i in range(n)]


def snmp_polling(hour=1):
    """A monitoring server polling 100 devices with GetBulk: large responses, but it asked."""
    rows = []
    for i in range(100):
        dev = f"10.20.{i // 200}.{i % 200 + 1}"
        rows.append(flow(at(hour, i % 60), "10.0.0.5", dev, 50000 + i, 161, packets=1000, bytes=1000 * 90, rate=100))
        rows.append(flow(at(hour, i % 60), dev, "10.0.0.5", 161, 50000 + i, packets=1000, bytes=1000 * 1200, rate=100))
    return rows


def test_each_service_is_named(tmp_path):
    write_lake(tmp_path, flows=reflected(11211, 1400) + reflected(1900, 320, victim="203.0.113.81")
               + reflected(389, 1480, hour=5) + reflected(19, 480, hour=6, victim="203.0.113.82"))
    alerts = sorted(run(Reflection, tmp_path), key=lambda a: (a.window_start, a.metrics["port"]))
    got = [(a.window_start.hour, int(a.metrics["port"]), a.subjects_with("victim")[0]) for a in alerts]
    assert got == [(1, 1900, "203.0.113.81"), (1, 11211, VICTIM), (5, 389, VICTIM), (6, 19, "203.0.113.82")]
    assert all(len(a.subjects_with("amplifier")) == 12 for a in alerts)
    assert "memcached" in alerts[1].summary


def test_solicited_snmp_does_not_alert(tmp_path):
    write_lake(tmp_path, flows=snmp_polling(1) + snmp_polling(2))
    assert run(Reflection, tmp_path) == []


def test_small_responses_below_service_size_do_not_alert(tmp_path):
    write_lake(tmp_path, flows=reflected(11211, 600) + reflected(161, 200))
    assert run(Reflection, tmp_path) == []


def test_services_are_configurable(tmp_path):
    write_lake(tmp_path, flows=reflected(27015, 900))  # a game server query protocol, not in the default list
    assert run(Reflection, tmp_path) == []
    (a,) = run(Reflection, tmp_path, services={"a2s": (27015, 500.0)})
    assert a.metrics["port"] == 27015
