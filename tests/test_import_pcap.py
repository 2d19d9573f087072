"""pcap/pcapng import: real captures checked field by field against tshark, damaged
files, dedup, and hand-built frames for every link type and protocol we decode."""
from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from necoma.cli.main import app
from necoma.collect.capture_file import CaptureReader
from necoma.collect.flowagg import FlowAggregator
from necoma.collect.importing import ImportFailed, run_import
from necoma.collect.packet import decode_frames
from necoma.config import Settings
from necoma.lake.catalog import connect
from tests.conftest import require_tool

scapy = pytest.importorskip("scapy.all")
from scapy.all import (  # noqa: E402
    DNS, DNSQR, DNSRR, DNSRROPT, IP, TCP, UDP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, IPv6,
    IPv6ExtHdrFragment, Raw, raw, wrpcap, wrpcapng,
)

# rows per table, checked with `tshark -r FILE -Y "ip or ipv6" | wc -l` and `-Y dns`
# Explicit MAC addresses: without them scapy resolves the destination MAC by ARP on a
# real interface while building the frame; these tests must send nothing anywhere.
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}

EXPECTED = {
    "dpkt_dns_icmp.pcap": (32, 10),
    "gopacket_test_dns.pcap": (10, 10),
    "lab_mixed.pcap": (200, 80),
    "pathspider_dns_valid_response.pcap": (2, 2),
    "pathspider_real.pcap.gz": (62038, 390),
    "libtrace_anon-v4.pcap.gz": (197, 28),  # gzipped twice; tshark needs one layer removed
    "dpkt_truncated_dns.pcap": (1, 1),
}


def lake(settings):
    return connect(settings.lake_path)


def tshark(path: Path, *fields: str, display: str = "") -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-o", "ip.defragment:FALSE", "-T", "fields", "-E", "occurrence=f"]
    cmd += ["-Y", display] if display else []
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def epoch_us(text: str) -> int:
    sec, frac = text.split(".")
    return int(sec) * 1_000_000 + int(frac[:6].ljust(6, "0"))


def readable_by_tshark(path: Path, tmp: Path) -> Path:
    """tshark reads one gzip layer; libtrace's sample is gzipped twice."""
    with open(path, "rb") as fh:
        data = fh.read()
    layers = 0
    while data[:2] == b"\x1f\x8b":
        data, layers = gzip.decompress(data), layers + 1
    if layers <= 1:
        return path
    out = tmp / (path.name.replace(".gz", ""))
    out.write_bytes(data)
    return out


# -- real captures --------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_pcap_matches_tshark(name, shared_data, settings, tmp_path):
    require_tool("tshark")
    path = shared_data / "pcap" / name
    report = run_import("pcap", path, settings)
    n_packets, n_dns = EXPECTED[name]
    assert report.rows["packets"] == n_packets
    assert report.rows.get("dns", 0) == n_dns
    ref = readable_by_tshark(path, tmp_path)

    # every IP packet: time, addresses, protocol, ports, IP length, TTL, TCP flags
    want = []
    for t, s4, s6, d4, d6, proto, nxt, us, ts, ud, td, ln, plen, ttl, hlim, flags in tshark(
        ref, "frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.proto", "ipv6.nxt",
        "udp.srcport", "tcp.srcport", "udp.dstport", "tcp.dstport", "ip.len", "ipv6.plen", "ip.ttl",
        "ipv6.hlim", "tcp.flags", display="ip or ipv6",
    ):
        sport, dport = us or ts, ud or td
        if (proto or nxt) not in ("6", "17"):  # ICMP errors quote a UDP/TCP header: not this packet's ports
            sport = dport = None
        want.append((epoch_us(t), s4 or s6, d4 or d6, int(sport) if sport else None, int(dport) if dport else None,
                     int(ln) if ln else int(plen) + 40, int(ttl or hlim), int(flags, 16) if flags else None))
    got = lake(settings).execute(
        "SELECT epoch_us(time), src_ip, dst_ip, CASE WHEN protocol IN (6, 17) THEN src_port END,"
        " CASE WHEN protocol IN (6, 17) THEN dst_port END, ip_length, ttl, tcp_flags FROM packets"
    ).fetchall()
    assert sorted(got, key=repr) == sorted(want, key=repr)

    # every DNS message: id, question, flags, rcode, answer count and the A answers
    want_dns = []
    for t, ident, qname, qtype, resp, rcode, an, a, cap, wire in tshark(
        ref, "frame.time_epoch", "dns.id", "dns.qry.name", "dns.qry.type", "dns.flags.response",
        "dns.flags.rcode", "dns.count.answers", "dns.a", "frame.cap_len", "frame.len", display="dns",
    ):
        want_dns.append((epoch_us(t), int(ident, 16), qname.lower(), int(qtype), resp == "1",
                         int(rcode) if resp == "1" else None, int(an)))
    got_dns = lake(settings).execute(
        "SELECT epoch_us(time), transaction_id, qname, qtype, is_response, rcode, answer_count FROM dns"
    ).fetchall()
    assert sorted(got_dns, key=repr) == sorted(want_dns, key=repr)


@pytest.mark.shared_data
def test_dns_answers_and_edns_match_tshark(shared_data, settings):
    require_tool("tshark")
    for name in ("pathspider_dns_valid_response.pcap", "gopacket_test_dns.pcap", "dpkt_dns_icmp.pcap"):
        run_import("pcap", shared_data / "pcap" / name, settings)
        cmd = ["tshark", "-r", str(shared_data / "pcap" / name), "-Y", "dns", "-T", "fields", "-E", "occurrence=a",
               "-E", "aggregator=,", "-e", "frame.time_epoch", "-e", "dns.a", "-e", "dns.cname",
               "-e", "dns.rr.udp_payload_size"]
        for line in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines():
            t, a, cname, edns = line.split("\t")
            row = lake(settings).execute(
                "SELECT answers, edns_buffer_size FROM dns WHERE epoch_us(time) = ?", [epoch_us(t)]
            ).fetchone()
            answers = row[0]
            assert sorted(x["data"] for x in answers if x["type"] == 1) == sorted(filter(None, a.split(",")))
            assert sorted(x["data"] for x in answers if x["type"] == 5) == sorted(filter(None, cname.split(",")))
            assert row[1] == (int(edns.split(",")[0]) if edns else None)


@pytest.mark.shared_data
def test_known_values(shared_data, settings):
    run_import("pcap", shared_data / "pcap" / "pathspider_dns_valid_response.pcap", settings)
    (answers,) = lake(settings).execute("SELECT answers FROM dns WHERE is_response").fetchone()
    assert answers[0] == {"name": "l9bjkkhaycw6f8f4.soundcloud.com", "type": 5, "ttl": answers[0]["ttl"],
                          "data": "eventgateway.soundcloud.com"}
    assert {"54.229.249.37", "52.31.52.63"} <= {a["data"] for a in answers}
    run_import("pcap", shared_data / "pcap" / "pathspider_real.pcap.gz", settings)
    top = lake(settings).execute(
        "SELECT src_ip FROM flows WHERE exporter = 'pathspider_real.pcap.gz' GROUP BY 1 ORDER BY sum(bytes) DESC LIMIT 1"
    ).fetchone()
    assert top == ("10.64.88.105",)  # the documented top talker
    # flows account for every packet and byte of the capture
    assert lake(settings).execute(
        "SELECT (SELECT sum(packets) FROM flows WHERE exporter = 'pathspider_real.pcap.gz'),"
        " (SELECT count(*) FROM packets WHERE exporter = 'pathspider_real.pcap.gz'),"
        " (SELECT sum(bytes) FROM flows WHERE exporter = 'pathspider_real.pcap.gz') ="
        " (SELECT sum(ip_length) FROM packets WHERE exporter = 'pathspider_real.pcap.gz')"
    ).fetchone() == (62038, 62038, True)
    ntp = lake(settings).execute("SELECT count(*) FROM packets WHERE ntp_mode = 7").fetchone()
    assert ntp == (0,)


@pytest.mark.shared_data
def test_lab_mixed_ntp_mode7(shared_data, settings):
    require_tool("tshark")
    path = shared_data / "pcap" / "lab_mixed.pcap"
    run_import("pcap", path, settings)
    want = len(tshark(path, "frame.number", display="ntp.priv.reqcode == 42"))
    assert want > 0
    assert lake(settings).execute(
        "SELECT count(*) FROM packets WHERE ntp_mode = 7 AND ntp_request_code = 42").fetchone() == (want,)


@pytest.mark.shared_data
def test_truncated_dns_is_rejected_and_counted(shared_data, settings):
    report = run_import("pcap", shared_data / "pcap" / "dpkt_truncated_dns.pcap", settings)
    assert report.rejects.total == 1
    assert "dns: resource record truncated" in next(iter(report.rejects.by_reason))
    assert report.rejects.first_seen[next(iter(report.rejects.by_reason))] == "frame 1"
    # the IP/UDP header and the DNS question are intact and kept; only the complete answers are stored
    row = lake(settings).execute("SELECT qname, answer_count, len(answers) FROM dns").fetchone()
    assert row[0] == "api.spd.samsungdm.com" and row[1] == 9 and row[2] < 9


@pytest.mark.shared_data
def test_import_twice_no_duplicates_and_cli(shared_data, settings, tmp_path):
    path = shared_data / "pcap" / "gopacket_test_dns.pcap"
    first = run_import("pcap", path, settings)
    again = run_import("pcap", path, settings)
    assert again.already_imported and again.rows == first.rows
    assert lake(settings).execute("SELECT count(*) FROM dns").fetchone() == (10,)
    forced = run_import("pcap", path, settings, force=True)
    assert forced.rows == first.rows
    assert lake(settings).execute("SELECT count(*) FROM dns").fetchone() == (10,)

    conf = tmp_path / "necoma.toml"
    conf.write_text(f'data_dir = "{tmp_path / "cli-data"}"\n')
    res = CliRunner().invoke(app, ["--config", str(conf), "import", "pcap", str(path),
                                   str(shared_data / "pcap" / "dpkt_truncated_dns.pcap")])
    assert res.exit_code == 0, res.output
    assert "imported 10 dns" in res.output and "rejected 1" in res.output
    res = CliRunner().invoke(app, ["--config", str(conf), "import", "pcap", str(path)])
    assert "skipped" in res.output and "already imported" in res.output
    out = subprocess.run([shutil.which("necoma") or str(Path(__import__("sys").executable).parent / "necoma"),
                          "--config", str(conf), "query", "SELECT count(*) AS n FROM packets", "--format", "csv"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "11" in out.stdout, out.stderr


@pytest.mark.shared_data
def test_truncated_copy_imports_up_to_the_cut(shared_data, settings, tmp_path):
    data = gzip.decompress((shared_data / "pcap" / "pathspider_real.pcap.gz").read_bytes())
    # walk the records to cut in the middle of record 30001
    pos, n = 24, 0
    while n < 30000:
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        n += 1
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: pos + 20])
    report = run_import("pcap", cut, settings)
    frames_ip = report.rows["packets"]
    assert 29000 < frames_ip <= 30000  # the IP frames among the 30000 complete records
    assert any(f"record 30001 at byte {pos}" in note for note in report.notes), report.notes
    # the same 30000 records, imported from a clean cut, give the same rows
    clean = tmp_path / "clean.pcap"
    clean.write_bytes(data[:pos])
    other = Settings(data_dir=tmp_path / "other")
    assert run_import("pcap", clean, other).rows["packets"] == frames_ip
    assert not any("stopped" in note for note in run_import("pcap", clean, other, force=True).notes)
    # a gzip file cut short: what decompresses before the cut is imported
    gz = tmp_path / "cut.pcap.gz"
    whole = gzip.compress(data)
    gz.write_bytes(whole[: len(whole) // 2])
    report = run_import("pcap", gz, settings)
    assert 20000 < report.rows["packets"] < 62038
    assert any("gzip stream is truncated" in note for note in report.notes), report.notes


def test_garbage_file_fails_clearly_and_keeps_the_lake(settings, tmp_path):
    good = tmp_path / "good.pcap"
    wrpcap(str(good), [Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)])
    run_import("pcap", good, settings)
    for name, content in (("junk.pcap", b"this is not a capture at all\n" * 10), ("empty.pcap", b""),
                          ("junk.gz", gzip.compress(b"hello world" * 100))):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ImportFailed, match="not a pcap|empty|not a capture"):
            run_import("pcap", bad, settings)
    assert lake(settings).execute("SELECT count(*) FROM packets").fetchone() == (1,)
    conf = tmp_path / "necoma.toml"
    conf.write_text(f'data_dir = "{settings.data_dir}"\n')
    res = CliRunner().invoke(app, ["--config", str(conf), "import", "pcap", str(tmp_path / "junk.pcap")])
    assert res.exit_code == 1 and "not a pcap or pcapng file" in res.output


# -- hand-built frames ----------------------------------------------------------------------

def decode(frames: list[bytes], linktype: int = 1, times: list[int] | None = None):
    buf = np.frombuffer(b"".join(frames), np.uint8)
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    t = np.array(times if times is not None else [1_700_000_000_000_000 + i for i in range(len(frames))], np.int64)
    return decode_frames(buf, offs, lens, lens, t, linktype, exporter="test")


def rows(table) -> list[dict]:
    return [{k: v for k, v in r.items() if v is not None} for r in table.to_pylist()]


QUERY = DNS(id=0x1234, rd=1, qd=DNSQR(qname="WWW.Example.COM", qtype=255), ar=DNSRROPT(rclass=1232))


def test_vlan_qinq_and_cooked_linux():
    ip = IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=5353, dport=53) / QUERY
    frames = [raw(Ether(**MACS) / Dot1Q(vlan=42) / ip), raw(Ether(**MACS) / Dot1AD(vlan=7) / Dot1Q(vlan=300) / ip)]
    d = decode(frames)
    assert [r["vlan"] for r in rows(d.packets)] == [42, 7]
    assert all(r["dns_qname"] == "www.example.com" and r["dns_qtype"] == 255 for r in rows(d.packets))
    for lt, layer in ((113, CookedLinux(proto=0x0800)), (276, CookedLinuxV2(proto=0x0800))):
        p = rows(decode([raw(layer / ip)], lt).packets)[0]
        assert (p["src_ip"], p["dst_ip"], p["dst_port"], p["dns_id"]) == ("192.0.2.1", "198.51.100.7", 53, 0x1234)
    # raw IP and BSD loopback
    assert rows(decode([raw(ip)], 101).packets)[0]["ttl"] == 64
    assert rows(decode([struct.pack("<I", 2) + raw(ip)], 0).packets)[0]["protocol"] == 17
    assert decode([raw(ip)], 147).rejects.by_reason == {"unsupported link type 147": 1}


def test_ipv6_fragment_header_and_edns():
    base = IPv6(src="2001:db8::1", dst="2001:db8:0:0:1::2")
    first = base / IPv6ExtHdrFragment(id=0xABCDEF, offset=0, m=1) / UDP(sport=4000, dport=53) / QUERY
    later = base / IPv6ExtHdrFragment(id=0xABCDEF, offset=185, m=0, nh=17) / Raw(b"x" * 64)
    d = decode([raw(Ether(**MACS) / first), raw(Ether(**MACS) / later)])
    a, b = rows(d.packets)
    assert (a["ip_version"], a["src_ip"], a["dst_ip"]) == (6, "2001:db8::1", "2001:db8::1:0:0:2")
    assert (a["ip_id"], a["fragment_offset"], a["more_fragments"], a["protocol"]) == (0xABCDEF, 0, True, 17)
    assert a["dns_qname"] == "www.example.com" and a["src_port"] == 4000
    assert (b["fragment_offset"], b["more_fragments"], b["protocol"]) == (1480, False, 17)
    assert "src_port" not in b and "dns_id" not in b  # non-first fragment: no L4 header
    (q,) = rows(d.dns)
    assert (q["edns_buffer_size"], q["qclass"], q["is_response"], q["client_ip"]) == (1232, 1, False, "2001:db8::1")
    assert "rcode" not in q and "response_size" not in q


def test_ipv4_fragments_and_options():
    frags = [raw(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", id=77, flags="MF", frag=0, options=[b"\x01" * 4])
                 / UDP(sport=1, dport=2) / (b"a" * 40)),
             raw(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", id=77, frag=6, proto=17) / (b"b" * 40))]
    a, b = rows(decode(frags).packets)
    assert (a["more_fragments"], a["fragment_offset"], a["src_port"], a["ip_length"]) == (True, 0, 1, 24 + 8 + 40)
    assert (b["more_fragments"], b["fragment_offset"], b["ip_id"]) == (False, 48, 77) and "src_port" not in b


def test_dns_over_tcp_and_responses():
    msg = raw(DNS(id=9, qr=1, qd=DNSQR(qname="tcp.example"), an=[
        DNSRR(rrname="tcp.example", type="CNAME", rdata="Alias.Example.NET", ttl=30),
        DNSRR(rrname="alias.example.net", rdata="203.0.113.9", ttl=60),
        DNSRR(rrname="alias.example.net", type="AAAA", rdata="2001:db8::53", ttl=60),
        DNSRR(rrname="tcp.example", type="TXT", rdata=['v=spf1 "x"']),
        DNSRR(rrname="tcp.example", type="MX", rdata=b"\x00\x0a\x04mail\xc0\x0c")]))
    seg = Ether(**MACS) / IP(src="198.51.100.53", dst="192.0.2.10") / TCP(sport=53, dport=40000, flags="PA") / (
        struct.pack(">H", len(msg)) + msg)
    syn = Ether(**MACS) / IP(src="192.0.2.10", dst="198.51.100.53") / TCP(sport=40000, dport=53, flags="S")
    d = decode([raw(syn), raw(seg)])
    assert [r["tcp_flags"] for r in rows(d.packets)] == [0x02, 0x18]
    (r,) = rows(d.dns)
    assert (r["transport"], r["client_ip"], r["server_ip"], r["client_port"]) == ("tcp", "192.0.2.10", "198.51.100.53", 40000)
    assert (r["rcode"], r["answer_count"], r["response_size"]) == (0, 5, len(msg))
    assert [(a["type"], a["data"]) for a in r["answers"]] == [
        (5, "alias.example.net"), (1, "203.0.113.9"), (28, "2001:db8::53"), (16, '"v=spf1 \\"x\\""'),
        (15, "10 mail.tcp.example")]
    assert d.rejects.total == 0


def test_ntp_mode7_and_malformed_dns_never_raise():
    ntp = Ether(**MACS) / IP() / UDP(sport=40000, dport=123) / Raw(bytes([0x17, 0x00, 0x03, 42]) + b"\0" * 4)
    loop = Ether(**MACS) / IP() / UDP(sport=1, dport=53) / Raw(bytes.fromhex("abcd01000001000000000000") + b"\xc0\x0c")
    long_label = Ether(**MACS) / IP() / UDP(sport=1, dport=53) / Raw(bytes.fromhex("abcd01000001000000000000") + b"\x45abc")
    short = Ether(**MACS) / IP() / UDP(sport=1, dport=53) / Raw(b"\x01\x02\x03")
    cut_ip = raw(Ether(**MACS) / IP() / UDP())[:20]
    d = decode([raw(ntp), raw(loop), raw(long_label), raw(short), cut_ip])
    p = rows(d.packets)
    assert (p[0]["ntp_mode"], p[0]["ntp_request_code"]) == (7, 42)
    assert len(p) == 4 and d.dns.num_rows == 0
    assert set(d.rejects.by_reason) == {
        "dns: question name compression pointer not pointing backwards", "dns: question reserved label type",
        "dns: message shorter than its 12-byte header", "ipv4: truncated header"}


def test_capture_formats(tmp_path):
    pkts = [Ether(**MACS) / IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=999, dport=53) / QUERY for _ in range(3)]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i + 0.123456
    wrpcapng(str(tmp_path / "a.pcapng"), pkts)
    wrpcap(str(tmp_path / "a.pcap"), pkts)
    # big-endian, nanosecond pcap written by hand
    be = [struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    for i, p in enumerate(pkts):
        b = raw(p)
        be.append(struct.pack(">IIII", 1_700_000_000 + i, 123_456_789, len(b), len(b)) + b)
    (tmp_path / "b.pcap").write_bytes(b"".join(be))
    (tmp_path / "c.pcap.gz").write_bytes(gzip.compress((tmp_path / "b.pcap").read_bytes()))
    for name in ("a.pcapng", "a.pcap", "b.pcap", "c.pcap.gz"):
        with CaptureReader(tmp_path / name, chunk_bytes=100) as r:  # tiny chunks: records straddle them
            batches = list(r.batches())
        times = np.concatenate([b.times_us for b in batches])
        assert list(times) == [1_700_000_000_123_456 + i * 1_000_000 for i in range(3)], name
        assert r.stopped is None and r.frames == 3
        d = decode_frames(batches[0].buf, batches[0].offsets, batches[0].caplens, batches[0].wirelens,
                          batches[0].times_us, batches[0].linktypes, exporter=name)
        assert rows(d.packets)[0]["dns_qname"] == "www.example.com"


def test_flows_idle_and_active_timeouts():
    s = 1_000_000
    t0 = 1_700_000_000 * s
    udp = raw(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6) / (b"x" * 10))
    frag = raw(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP(sport=5, dport=6) / (b"x" * 10))
    # a gap of 61 s splits (idle 60 s); a steady stream every 50 s is cut at 300 s (active)
    times = [t0, t0 + 10 * s] + [t0 + 71 * s + k * 50 * s for k in range(9)]
    frames = [udp, frag] + [udp] * 9
    d = decode(frames, times=times)
    agg = FlowAggregator("x")
    out = [agg.add(d.packets.slice(0, 5), d.tos[:5], d.addr_keys[:5]),
           agg.add(d.packets.slice(5), d.tos[5:], d.addr_keys[5:]), agg.finish()]
    flows = sorted((r for t in out for r in t.to_pylist()), key=lambda r: r["start_time"])
    assert [(r["packets"], r["fragments"]) for r in flows] == [(2, 1), (6, 0), (3, 0)]
    assert all(r["bytes"] == 38 * r["packets"] and r["src_port"] == 5 for r in flows)
    assert (flows[1]["end_time"] - flows[1]["start_time"]).total_seconds() == 250


def test_long_and_cut_names_are_counted():
    hdr = bytes.fromhex("abcd01000001000000000000")
    too_long = hdr + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"
    cut = hdr + b"\x07example\x03co"
    frames = [raw(Ether(**MACS) / IP() / UDP(sport=1, dport=53) / Raw(p)) for p in (too_long, cut)]
    d = decode(frames)
    assert d.dns.num_rows == 0 and d.packets.num_rows == 2
    assert d.rejects.by_reason == {"dns: question name longer than 255 bytes": 1,
                                   "dns: question name runs past the end of the message": 1}


def test_random_payloads_never_raise():
    rng = np.random.default_rng(5)
    frames = []
    for i in range(1500):  # DNS-looking headers with small counts, then random bytes
        payload = bytes.fromhex("abcd8180") + rng.integers(0, 4, 8, dtype=np.uint8).tobytes() if i % 2 else b""
        payload += rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        frame = raw(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=5353) / Raw(payload))
        frames.append(frame if i % 5 else frame[: int(rng.integers(0, len(frame)))])
    d = decode(frames)
    assert d.rejects.total > 0 and d.dns.num_rows > 0
    d.dns.validate(full=True)
    d.packets.validate(full=True)
