from __future__ import annotations

from necoma.analyze.detectors.ntp_amplifier import NtpAmplifier
from necoma.enrich import Enricher, GeoIP
from tests.test_analyze_support import at, flow, packet, run, write_lake

VICTIM = "203.0.113.7"


def amplified(n_amps=20, hour=3, rate=100, victim=VICTIM, first_amp="81.2.69.142"):
    rows = []
    amps = [first_amp] + [f"198.51.100.{i}" for i in range(1, n_amps)]
    for i, a in enumerate(amps):
        rows.append(flow(at(hour, i % 60), a, victim, 123, 80, packets=100, bytes=46_800, rate=rate))
    return rows


def normal_ntp(hour=3):
    """Clients and servers exchanging ordinary mode 3/4 packets (76 B), some busy, sampled 1:100."""
    rows = []
    for c in range(200):
        client = f"10.1.{c // 250}.{c % 250}"
        for s in range(4):
            server = f"192.0.2.{100 + s}"
            rows.append(flow(at(hour, c % 60), client, server, 123, 123, packets=20, bytes=1520, rate=100))
            rows.append(flow(at(hour, c % 60), server, client, 123, 123, packets=20, bytes=1520, rate=100))
    return rows


def test_amplification_is_found_with_victim_and_amplifiers(tmp_path):
    write_lake(tmp_path, flows=amplified() + normal_ntp())
    alerts = run(NtpAmplifier, tmp_path)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.subjects_with("victim") == [VICTIM]
    assert len(a.subjects_with("amplifier")) == 20
    assert a.metrics["bytes"] == 20 * 46_800 * 100  # scaled by the sampling rate
    assert a.metrics["packets"] == 20 * 100 * 100
    assert a.metrics["amplifiers"] == 20
    assert a.window_start == at(3) and a.window_end == at(4)
    assert a.confidence in ("medium", "high")


def test_legitimate_ntp_does_not_alert(tmp_path):
    write_lake(tmp_path, flows=normal_ntp(3) + normal_ntp(4))
    assert run(NtpAmplifier, tmp_path) == []


def test_few_amplifiers_or_little_volume_do_not_alert(tmp_path):
    # an admin running ntpdc monlist against two servers
    write_lake(tmp_path, flows=amplified(n_amps=2, rate=1) + amplified(n_amps=10, rate=1, victim="203.0.113.9"))
    assert run(NtpAmplifier, tmp_path) == []  # 2 amplifiers; 10 amplifiers but only 468 kB
    assert len(run(NtpAmplifier, tmp_path, min_bytes=100_000)) == 1  # threshold is a parameter


def test_sflow_samples_count_once_with_flows(tmp_path):
    pk = [packet(at(3, i % 60), f"198.51.100.{i}", VICTIM, 123, 80, length=468, rate=1000) for i in range(1, 30)]
    write_lake(tmp_path, flows=amplified(), packets=pk)
    (a,) = run(NtpAmplifier, tmp_path)
    assert a.metrics["bytes"] == max(20 * 46_800 * 100, 29 * 468 * 1000)


def test_evidence_reproduces_and_ids_are_stable(tmp_path):
    write_lake(tmp_path, flows=amplified() + normal_ntp())
    (a,) = run(NtpAmplifier, tmp_path)
    (b,) = run(NtpAmplifier, tmp_path)
    assert a.id == b.id
    from necoma.lake.engines import open_engine

    with open_engine("duckdb", tmp_path) as eng:
        rows = eng.query(a.evidence)
    assert len(rows) == 20 and {r["dst_ip"] for r in rows} == {VICTIM}


def test_amplifiers_carry_country_and_asn(tmp_path, shared_data):
    mmdb = shared_data / "mmdb"
    enricher = Enricher(GeoIP(mmdb / "GeoLite2-City-Test.mmdb", mmdb / "GeoLite2-ASN-Test.mmdb"))
    write_lake(tmp_path, flows=amplified(first_amp="81.2.69.142") + amplified(hour=5, first_amp="1.128.0.1"))
    alerts = {a.window_start.hour: a for a in run(NtpAmplifier, tmp_path, enricher=enricher)}
    gb = [s for s in alerts[3].subjects if s.value == "81.2.69.142"][0]
    assert gb.country == "GB"
    au = [s for s in alerts[5].subjects if s.value == "1.128.0.1"][0]
    assert au.asn == 1221
