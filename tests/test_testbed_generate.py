"""Scenario generation: reproducible bytes, and truth.json consistent with the data of every layer."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from necoma.testbed.attacks import ATTACKS
from necoma.testbed.scenario import SCENARIOS, build, generate
from necoma.testbed.truth import ENTITY_FIELDS
from necoma.testbed.writers.container import read_datagrams
from tests._testbed import SCALE, scenario
from tests.conftest import require_tool


def _digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate("mixed", 3, a, scale=0.15)
    generate("mixed", 3, b, scale=0.15)
    generate("mixed", 4, c, scale=0.15)
    da, db, dc = _digests(a), _digests(b), _digests(c)
    assert set(da) == {"dns.pcap", "dns-query.log", "netflow/nf9-site-a.bin", "netflow/ipfix-site-b.bin",
                       "sflow/sflow-core.bin", "syslog.log", "urls.csv", "spam.txt", "open-resolvers.txt",
                       "truth.json"}
    assert da == db
    assert da["dns.pcap"] != dc["dns.pcap"] and da["truth.json"] != dc["truth.json"]


def test_mixed_holds_every_attack_once_per_kind():
    truth = json.loads((scenario() / "truth.json").read_text())
    kinds = [a["kind"] for a in truth["attacks"]]
    assert set(kinds) == set(ATTACKS)
    assert truth["scenario"] == "mixed" and truth["start"] < truth["end"]
    for a in truth["attacks"]:
        assert set(ENTITY_FIELDS) <= set(a) and a["id"].startswith(a["kind"])
        assert truth["start"] <= a["start"] < a["end"] <= truth["end"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_truth_entities_appear_in_the_data(name):
    """Every entity truth.json names shows up where it should: DNS clients, flow endpoints, feeds."""
    sc = build(name, seed=5, scale=SCALE)
    cols = sc.flows.columns()
    endpoints = set(cols["src"]) | set(cols["dst"])
    clients = {t.client for t in sc.dns_pcap + sc.dns_log}
    qnames = {t.qname for t in sc.dns_pcap + sc.dns_log}
    feed_urls = {f.url for f in sc.feeds}
    assert {a["kind"] for a in sc.attacks} == set(SCENARIOS[name])
    for a in sc.attacks:
        for f in ("victims", "amplifiers", "scanners", "senders", "hosts", "cnc", "attackers"):
            assert set(a[f]) <= endpoints, (a["kind"], f, set(a[f]) - endpoints)
        assert set(a["bots"]) <= clients
        if a["kind"] != "dns_amplification":  # its names are in the spoofed queries, which we never see
            assert set(a["domains"]) <= qnames
        assert set(a["urls"]) <= feed_urls
    if name == "background":
        assert sc.attacks == []
        assert {"heavy_hitters", "ntp_servers", "resolvers", "mail_servers"} <= set(sc.benign)


def test_mixed_pcap_has_the_dga_names(tmp_path):
    """Read dns.pcap with an independent parser (scapy): the bots' DGA queries are there, answered NXDOMAIN."""
    from scapy.all import DNS, DNSQR, IP, PcapReader

    truth = json.loads((scenario() / "truth.json").read_text())
    zeus = next(a for a in truth["attacks"] if a["kind"] == "zeus_dga")
    seen: dict[str, set[int]] = {}
    with PcapReader(str(scenario() / "dns.pcap")) as pcap:
        for pkt in pcap:
            if pkt.haslayer(DNSQR) and pkt.haslayer(IP) and pkt[DNS].qr == 1:
                seen.setdefault(pkt[DNSQR].qname.decode().rstrip("."), set()).add(pkt[DNS].rcode)
    captured = set(zeus["domains"]) & set(seen)
    assert len(captured) > 0.5 * len(zeus["domains"])  # the rest went through resolver B (query log)
    registered = set(zeus["details"]["registered_domains"])
    assert all(seen[d] == {3} for d in captured - registered)
    log = (scenario() / "dns-query.log").read_text()
    assert all(d in seen or d in log for d in zeus["domains"])


def test_mixed_pcap_is_clean_for_tshark():
    require_tool("tshark")
    out = subprocess.run(["tshark", "-r", str(scenario() / "dns.pcap"), "-q", "-z", "expert,error"],
                         capture_output=True, text=True, check=True).stdout
    assert "Malformed" not in out


def test_sflow_carries_monlist_responses_of_468_bytes():
    """Walk the sFlow XDR by hand and parse the sampled headers with scapy."""
    import struct

    from scapy.all import IP, UDP, Ether

    truth = json.loads((scenario() / "truth.json").read_text())
    ntp = next(a for a in truth["attacks"] if a["kind"] == "ntp_amplification")
    meta, items = read_datagrams(next((scenario() / "sflow").glob("*.bin")))
    assert meta["format"] == "sflow5"
    monlist = set()
    for _, d in items:
        assert struct.unpack(">I", d[:4])[0] == 5
        off = 8 + 4 + 12  # version, address type + IPv4, sub-agent/seq/uptime
        n = struct.unpack(">I", d[off:off + 4])[0]
        off += 4
        for _ in range(n):
            fmt, length = struct.unpack(">II", d[off:off + 8])
            body = d[off + 8: off + 8 + length]
            off += 8 + length
            if fmt != 1:
                continue
            # 8 words of flow sample, then the record's format and length, then protocol, frame length, stripped
            hdr_len = struct.unpack(">I", body[52:56])[0]
            pkt = Ether(body[56:56 + hdr_len])
            if pkt.haslayer(UDP) and pkt[UDP].sport == 123 and pkt[IP].len == 468:
                raw = bytes(pkt[UDP].payload)
                assert raw[0] & 0x07 == 7 and raw[3] == 42  # mode 7, MON_GETLIST_1
                monlist.add((pkt[IP].src, pkt[IP].dst))
    assert {s for s, _ in monlist} == set(ntp["amplifiers"])
    assert {d for _, d in monlist} == set(ntp["victims"])


def test_netflow_files_start_with_templates():
    import struct

    for path in sorted((scenario() / "netflow").glob("*.bin")):
        meta, items = read_datagrams(path)
        _, first = next(items)
        version = struct.unpack(">H", first[:2])[0]
        assert version == (10 if meta["format"] == "ipfix" else 9)
        set_id = struct.unpack(">H", first[20 if version == 9 else 16:][:2])[0]
        assert set_id == (2 if version == 10 else 0)  # a template set first
