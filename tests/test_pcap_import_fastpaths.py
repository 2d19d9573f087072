"""The fast paths of pcap import checked against slow, obvious references: address
text against `ipaddress`, flow cutting against a per-packet Python loop (on real
captures, with buffers small enough that open flows are carried many times), the
record walk on damaged lengths, and the Parquet encodings the lake writer picks."""
from __future__ import annotations

import gzip
import ipaddress
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from necoma.collect.capture_file import CaptureReader
from necoma.collect.flowagg import FlowAggregator
from necoma.collect.importing import run_import
from necoma.collect.packet import decode_frames
from necoma.collect.wire import ipv4_text, key_text, repeated


def test_ipv4_text_matches_ipaddress():
    rng = np.random.default_rng(11)
    addrs = np.r_[rng.integers(0, 2**32, 5000, dtype=np.uint64).astype(np.uint32), [0, 2**32 - 1, 0x0A000001, 0x64000009]]
    expected = [str(ipaddress.IPv4Address(int(a))) for a in addrs]
    assert ipv4_text(addrs).to_pylist() == expected
    many = np.tile(addrs[:50], 100)  # repeated addresses take the distinct-values path
    assert ipv4_text(many, repeats=True).to_pylist() == [str(ipaddress.IPv4Address(int(a))) for a in many]
    assert ipv4_text(np.zeros(0, np.uint32)).to_pylist() == []


def test_key_text_ipv4_ipv6_and_mapped():
    v4 = ipaddress.IPv4Address("192.0.2.7")
    rows = [(v4, True), (ipaddress.IPv6Address("2001:db8::1"), False),
            (ipaddress.IPv6Address("::ffff:192.0.2.7"), False)]  # mapped, but from an IPv6 header
    keys = [int(ipaddress.IPv6Address(f"::ffff:{a}")) if is4 else int(a) for a, is4 in rows]
    hi = np.array([k >> 64 for k in keys], np.uint64)
    lo = np.array([k & (2**64 - 1) for k in keys], np.uint64)
    is4 = np.array([r[1] for r in rows])
    assert key_text(hi, lo, is4).to_pylist() == ["192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7"]
    assert repeated("pcap", 3).to_pylist() == ["pcap"] * 3 and repeated("x", 0).to_pylist() == []


def _reference_flows(packets: pa.Table, idle_us: int, active_us: int) -> list[tuple]:
    """Flows cut one packet at a time: a new flow when the key changes, after an idle
    gap, or at the first packet `active_us` after the flow's start."""
    cols = {c: packets.column(c).to_pylist() for c in ("src_ip", "dst_ip", "src_port", "dst_port", "protocol",
                                                        "ip_length", "tcp_flags", "more_fragments", "fragment_offset")}
    t = packets.column("time").cast(pa.int64()).to_pylist()  # microseconds
    idx = sorted(range(len(t)), key=lambda i: (cols["src_ip"][i], cols["dst_ip"][i], cols["src_port"][i] or 0,
                                               cols["dst_port"][i] or 0, cols["protocol"][i], t[i], i))
    flows, cur = [], None
    for i in idx:
        key = (cols["src_ip"][i], cols["dst_ip"][i], cols["src_port"][i] or 0, cols["dst_port"][i] or 0,
               cols["protocol"][i])
        if cur is None or cur["key"] != key or t[i] - cur["last"] > idle_us or t[i] - cur["first"] >= active_us:
            cur = {"key": key, "first": t[i], "last": t[i], "packets": 0, "bytes": 0, "flags": 0, "frags": 0}
            flows.append(cur)
        cur["last"] = max(cur["last"], t[i])
        cur["packets"] += 1
        cur["bytes"] += cols["ip_length"][i]
        cur["flags"] |= cols["tcp_flags"][i] or 0
        cur["frags"] += bool(cols["more_fragments"][i] or cols["fragment_offset"][i])
    return sorted((*f["key"], f["first"], f["last"], f["packets"], f["bytes"], f["flags"], f["frags"]) for f in flows)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["pathspider_real.pcap.gz", "lab_mixed.pcap", "dpkt_dns_icmp.pcap"])
def test_flows_match_a_per_packet_reference(name, shared_data):
    idle, active = 2_000_000, 10_000_000  # short timeouts so that cutting and carrying both happen
    agg = FlowAggregator("x", idle_s=idle / 1e6, active_s=active / 1e6, cut_rows=3000)
    packets, out = [], []
    with CaptureReader(shared_data / "pcap" / name, chunk_bytes=256 << 10) as reader:
        for b in reader.batches():
            d = decode_frames(b.buf, b.offsets, b.caplens, b.wirelens, b.times_us, b.linktypes, exporter="x")
            packets.append(d.packets)
            out.append(agg.add(d.packets, d.tos, d.addr_keys))
    out.append(agg.finish())
    flows = pa.concat_tables(out)
    got = sorted(zip(*(flows.column(c).to_pylist() for c in ("src_ip", "dst_ip", "src_port", "dst_port", "protocol")),
                     flows.column("start_time").cast(pa.int64()).to_pylist(),
                     flows.column("end_time").cast(pa.int64()).to_pylist(),
                     *(flows.column(c).to_pylist() for c in ("packets", "bytes", "tcp_flags", "fragments"))))
    expected = _reference_flows(pa.concat_tables(packets), idle, active)
    assert len(got) > 1 and got == expected


def test_record_claiming_an_absurd_length_stops_the_walk(tmp_path):
    frame = bytes(14) + bytes([0x45]) + bytes(19)
    records = [struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame for i in range(50)]
    bad = struct.pack("<IIII", 1_700_000_050, 0, 1 << 30, 60) + frame
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records[:30]) + bad + b"".join(records[30:])
    for chunk in (64, 1 << 20):  # the bad record inside a chunk and across chunk edges
        path = tmp_path / f"bad{chunk}.pcap"
        path.write_bytes(data)
        with CaptureReader(path, chunk_bytes=chunk) as reader:
            frames = sum(len(b.offsets) for b in reader.batches())
        assert frames == 30
        assert reader.stopped.startswith(f"record 31 at byte {24 + 30 * (16 + len(frame))} claims {1 << 30}")


def test_writer_encodings_and_round_trip(tmp_path, settings):
    scapy = pytest.importorskip("scapy.all")
    eth = scapy.Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # explicit: no ARP look-up
    pkts = [eth / scapy.IP(src=f"10.0.0.{i % 7}", dst="192.0.2.53") / scapy.UDP(sport=1000 + i, dport=53)
            / scapy.DNS(id=i, qd=scapy.DNSQR(qname=f"h{i % 3}.example")) for i in range(200)]
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 10
    path = tmp_path / "dns.pcap.gz"
    scapy.wrpcap(str(tmp_path / "dns.pcap"), pkts)
    path.write_bytes(gzip.compress((tmp_path / "dns.pcap").read_bytes()))
    report = run_import("pcap", path, settings)
    assert report.rows == {"packets": 200, "dns": 200, "flows": 200}
    (packets_file,) = (settings.lake_path / "packets").rglob("*.parquet")
    meta = pq.ParquetFile(packets_file).metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert not any("DICTIONARY" in e for e in enc["time"] + enc["src_port"])  # high-cardinality: plain
    assert any("DICTIONARY" in e for e in enc["src_ip"])
    # few numeric values per file: zstd packs plain pages as well, without building a dictionary;
    # few text values (source, read by every traffic query) keep one, DuckDB reads it faster
    assert not any("DICTIONARY" in e for e in enc["protocol"] + enc["tcp_flags"])
    assert any("DICTIONARY" in e for e in enc["source"]) and any("DICTIONARY" in e for e in enc["exporter"])
    table = pq.read_table(packets_file)
    assert sorted(table.column("src_port").to_pylist()) == list(range(1000, 1200))
    assert set(table.column("dns_qname").to_pylist()) == {"h0.example", "h1.example", "h2.example"}


def test_flow_sort_equals_lexsort():
    from necoma.collect.flowagg import _by_hash_then_time

    rng = np.random.default_rng(3)
    for n, distinct in ((2000, 1990), (2000, 60), (7, 3), (1, 1)):  # few ties, many ties, tiny
        h = rng.integers(0, distinct, n).astype(np.uint64)
        t = rng.integers(0, 4, n)  # equal times too: ties keep input order
        assert (_by_hash_then_time(h, t) == np.lexsort((t, h))).all()


def test_words16_reads_like_byte_pairs():
    from necoma.collect.wire import u16, words16

    rng = np.random.default_rng(8)
    buf = rng.integers(0, 256, 1000, dtype=np.uint8)
    idx = np.r_[rng.integers(0, 1000, 500), [-5, 0, 989, 990, 999, 5000]]  # incl. offsets past either end
    words = words16(buf, idx, 5)
    ok = (idx >= 0) & (idx + 10 <= len(buf))  # where both read real bytes (elsewhere: clipped garbage)
    for j in range(5):
        assert (words[ok, j] == u16(buf, idx[ok] + 2 * j)).all()
    assert words16(buf[:3], np.array([0]), 2).shape == (1, 2)  # buffer shorter than the words: no raise


def _frames(path, limit):
    out = []
    with CaptureReader(path) as reader:
        for b in reader.batches():
            for o, c, t in zip(b.offsets, b.caplens, b.times_us):
                out.append((bytes(b.buf[o:o + c]), int(t), int(np.broadcast_to(b.linktypes, b.offsets.shape)[0])))
    return out[:limit]


def _decode_list(frames):
    buf = np.frombuffer(b"".join(f[0] for f in frames), np.uint8)
    lens = np.array([len(f[0]) for f in frames], np.int64)
    offs = np.cumsum(lens) - lens
    d = decode_frames(buf, offs, lens, lens, np.array([f[1] for f in frames], np.int64),
                      np.array([f[2] for f in frames], np.int64), exporter="x")
    return d.packets.to_pylist(), d.dns.to_pylist(), d.rejects.by_reason + d.truncated.by_reason


@pytest.mark.shared_data
def test_batch_decoding_equals_frame_by_frame_on_real_and_mutated_captures(shared_data):
    """The lock-step paths (all names continuing, pointer-free names, distinct-address
    formatting of big batches, ...) must give each frame what decoding it alone gives."""
    rng = np.random.default_rng(21)
    frames = []
    real = _frames(shared_data / "pcap" / "pathspider_real.pcap.gz", 10**6)
    frames += real[:500] + [f for f in real[500:] if b"\x00\x35" in (f[0][34:36], f[0][36:38])]  # + port 53
    for name in ("dpkt_dns_icmp.pcap", "gopacket_test_dns.pcap", "lab_mixed.pcap"):
        frames += _frames(shared_data / "pcap" / name, 10**6)
    dns = [f for f in frames if len(f[0]) > 54]
    mutated = []
    for i in range(600):  # byte flips and cuts in the upper layers of real frames
        data, t, lt = dns[int(rng.integers(len(dns)))]
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(34, len(b)))] = int(rng.integers(256))
        if i % 4 == 0:
            b = b[: int(rng.integers(14, len(b)))]
        mutated.append((bytes(b), t, lt))
    everything = frames + mutated
    packets, dns_rows, rejects = _decode_list(everything)
    one_by_one = [_decode_list([f]) for f in everything]
    assert packets == [r for p, _, _ in one_by_one for r in p]
    assert dns_rows == [r for _, d, _ in one_by_one for r in d]
    total = sum((r for _, _, r in one_by_one), start=type(rejects)())
    assert rejects == total
    assert sum(rejects.values()) > 50 and len(dns_rows) > 500  # the mutations did reach the decoders


def _columns(settings, table: str) -> dict:
    (path,) = (settings.lake_path / table).rglob("*.parquet")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    return {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}


@pytest.mark.shared_data
def test_writer_dns_answers_dictionary_and_statistics(settings, shared_data):
    """Answer names/types/TTLs dictionary-encoded inside the list; no min/max over
    near-unique text (addresses, names) nor on columns every row group spans (ports,
    protocol), still on times and the rest."""
    report = run_import("pcap", shared_data / "pcap" / "dpkt_dns_icmp.pcap", settings)
    assert report.rows["dns"] > 0
    for table, with_stats, without in (("dns", ["time", "server_ip", "qtype"], ["client_ip", "qname"]),
                                       ("packets", ["time", "dns_qtype"],
                                        ["src_ip", "dst_ip", "dns_qname", "protocol", "src_port"])):
        cols = _columns(settings, table)
        assert all(cols[c].statistics is not None and cols[c].statistics.has_min_max for c in with_stats)
        assert not any(cols[c].statistics is not None and cols[c].statistics.has_min_max for c in without)
    cols = _columns(settings, "dns")
    assert any("DICTIONARY" in e for e in cols["answers.list.element.name"].encodings)
    assert not any("DICTIONARY" in e for e in cols["answers.list.element.data"].encodings)
