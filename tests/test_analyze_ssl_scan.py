from __future__ import annotations

from necoma.analyze.detectors.ssl_scan import SslScan
from tests.test_analyze_support import at, flow, run, write_lake

SCANNER = "192.0.2.66"
SYN, ACK, RST, PSH, FIN = 2, 16, 4, 8, 1


def scan(n=1000, hour=7, answered_every=50, ports=(443,), src=SCANNER):
    rows = []
    for i in range(n):
        dst = f"10.{i // 250 % 250}.{i % 250}.{(i * 7) % 250 + 1}"
        port = ports[i % len(ports)]
        rows.append(flow(at(hour, i % 60), src, dst, 40000 + i % 20000, port, proto=6, packets=1, bytes=60, flags=SYN))
        if answered_every and i % answered_every == 0:
            rows.append(flow(at(hour, i % 60), dst, src, port, 40000 + i % 20000, proto=6, packets=1, bytes=60, flags=SYN | ACK))
    return rows


def busy_proxy(hour=7):
    """A proxy opening complete HTTPS connections to 2000 servers: SYN, ACK, PSH, FIN."""
    return [flow(at(hour, i % 60), "10.0.0.8", f"172.16.{i // 200}.{i % 200 + 1}", 50000 + i, 443, proto=6,
                 packets=12, bytes=4000, flags=SYN | ACK | PSH | FIN) for i in range(2000)]


def test_scanner_found(tmp_path):
    write_lake(tmp_path, flows=scan(ports=(443, 8443, 993)) + busy_proxy())
    (a,) = run(SslScan, tmp_path)
    assert a.subjects_with("scanner") == [SCANNER]
    assert a.metrics["targets"] == 1000
    assert a.metrics["networks"] >= 10
    assert a.metrics["answered_fraction"] == 20 / 1000
    assert a.metrics["ports"] == 3


def test_complete_connections_do_not_alert(tmp_path):
    write_lake(tmp_path, flows=busy_proxy(7) + busy_proxy(8))
    assert run(SslScan, tmp_path) == []


def test_mostly_answered_probes_or_few_networks_do_not_alert(tmp_path):
    # a monitoring host health-checking its own 300 servers every hour (all answer)
    write_lake(tmp_path, flows=scan(n=300, answered_every=1, src="10.0.0.9"))
    assert run(SslScan, tmp_path) == []
    # probing one /24 is a sweep, not the wide TLS scan this detector looks for
    rows = [flow(at(9, i % 60), "10.0.0.10", f"10.50.0.{i}", 40000 + i, 443, proto=6, flags=SYN) for i in range(1, 255)]
    write_lake(tmp_path / "b", flows=rows)
    assert run(SslScan, tmp_path / "b") == []
    assert len(run(SslScan, tmp_path / "b", min_networks=1)) == 1


def test_scanner_flows_with_rst_count_as_probes(tmp_path):
    rows = scan(n=400)
    for r in rows:
        if r["src_ip"] == SCANNER:
            r["tcp_flags"] = SYN | RST  # nmap -sS resets the half-open connection
    write_lake(tmp_path, flows=rows)
    assert len(run(SslScan, tmp_path)) == 1
