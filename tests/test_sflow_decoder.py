"""sFlow v5 decoder on hand-built datagrams (tests/sflow_encode.py): every field, every rejection."""
from __future__ import annotations

import logging
import struct

import pytest

from necoma.collect.sflow import SflowDecoder
from necoma.schemas import FLOWS, INTERFACES, PACKETS
from tests import sflow_encode as enc

T0 = 1_764_000_000.25  # reception time: the only clock sFlow rows get
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}  # no ARP lookup while building
SRC = "203.0.113.9"  # UDP source, the key of the counters


def feed(dec: SflowDecoder, *dgrams: bytes, exporter: str = SRC) -> None:
    for d in dgrams:
        dec.feed(d, exporter, T0)


def rejected(dec: SflowDecoder, exporter: str = SRC) -> dict[str, int]:
    return dict(dec.stats.of(exporter).rejected)


def packet_decoder_available() -> bool:
    try:
        import necoma.collect.packet  # noqa: F401
    except ImportError:
        return False
    return True


needs_packet = pytest.mark.skipif(not packet_decoder_available(),
                                  reason="necoma.collect.packet (shared frame decoder) not written yet")


# --- counter samples -----------------------------------------------------------------------

@pytest.mark.parametrize("expanded", [False, True])
def test_generic_counters_become_interface_rows(expanded):
    dec = SflowDecoder()
    sample = enc.counter_sample(
        [enc.ethernet_counters(),
         enc.generic_counters(if_index=7, if_type=6, if_speed=10**10, if_direction=1, if_status=3,
                              in_octets=2**40 + 5, in_ucast_pkts=11, in_mcast_pkts=12, in_bcast_pkts=13,
                              in_discards=14, in_errors=15, in_unknown_protos=16, out_octets=2**33,
                              out_ucast_pkts=21, out_mcast_pkts=22, out_bcast_pkts=23, out_discards=24,
                              out_errors=25),
         enc.tagged(1, b"\0" * 8, enterprise=4300)],  # enterprise record: skipped by length
        seq=3, source_index=7, expanded=expanded)
    feed(dec, enc.datagram([sample], agent="192.0.2.10"))
    tables = dec.drain(T0)
    assert set(tables) == {"interfaces"}
    t = tables["interfaces"]
    assert t.schema == INTERFACES
    row = t.to_pylist()[0]
    assert row["exporter"] == "192.0.2.10"
    assert row["time"].timestamp() == T0
    assert (row["if_index"], row["if_type"], row["if_speed"], row["if_status"]) == (7, 6, 10**10, 3)
    assert (row["in_octets"], row["in_ucast_pkts"], row["in_errors"]) == (2**40 + 5, 11, 15)
    assert (row["out_octets"], row["out_bcast_pkts"], row["out_errors"]) == (2**33, 23, 25)
    assert dec.stats.of(SRC).records == 1
    assert rejected(dec) == {}


# --- flow samples without a header (sampled IPv4/IPv6 records) -----------------------------

@pytest.mark.parametrize("expanded", [False, True])
def test_sampled_ipv4_flow_row(expanded):
    dec = SflowDecoder()
    sample = enc.flow_sample(
        [enc.sampled_ipv4("10.1.2.3", "198.51.100.4", length=1500, protocol=6, src_port=443,
                          dst_port=50000, tcp_flags=0x18, tos=0x28),
         enc.ext_switch(src_vlan=42),
         enc.ext_router(),
         enc.ext_gateway(src_as=64496, dst_path=[64510, 64511, 65550]),
         enc.tagged(2000, b"\1\2\3\4")],  # unknown record: skipped, sample kept
        seq=9, rate=2048, input_if=3, output_if=4, expanded=expanded)
    feed(dec, enc.datagram([sample], agent="192.0.2.1", sub_agent=5))
    tables = dec.drain(T0 + 1)
    assert set(tables) == {"flows"}
    f = tables["flows"]
    assert f.schema == FLOWS
    row = f.to_pylist()[0]
    assert row["start_time"] == row["end_time"] and row["start_time"].timestamp() == T0
    assert (row["exporter"], row["observation_domain"], row["source"]) == ("192.0.2.1", 5, "sflow")
    assert (row["src_ip"], row["dst_ip"], row["src_port"], row["dst_port"]) == ("10.1.2.3", "198.51.100.4", 443, 50000)
    assert (row["protocol"], row["tcp_flags"], row["tos"]) == (6, 0x18, 0x28)
    assert (row["packets"], row["bytes"], row["sampling_rate"]) == (1, 1500, 2048)
    assert (row["input_if"], row["output_if"]) == (3, 4)
    assert (row["src_as"], row["dst_as"]) == (64496, 65550)
    assert rejected(dec) == {}


def test_ipv6_agent_and_sampled_ipv6():
    dec = SflowDecoder()
    sample = enc.flow_sample([enc.sampled_ipv6("2001:db8::1", "2001:db8:0:1::53", length=90, protocol=17,
                                               src_port=5353, dst_port=53)], rate=10)
    feed(dec, enc.datagram([sample], agent="2001:db8::ff"))
    row = dec.drain(T0)["flows"].to_pylist()[0]
    assert row["exporter"] == "2001:db8::ff"
    assert (row["src_ip"], row["dst_ip"], row["dst_port"], row["bytes"]) == ("2001:db8::1", "2001:db8:0:1::53", 53, 90)


def test_unknown_interfaces_are_null():
    dec = SflowDecoder()
    s1 = enc.flow_sample([enc.sampled_ipv4("10.0.0.1", "10.0.0.2")], input_if=0x3FFFFFFF,
                         output_if=(2 << 30) | 5)  # output format 2: "5 interfaces", not an ifIndex
    feed(dec, enc.datagram([s1]))
    row = dec.drain(T0)["flows"].to_pylist()[0]
    assert row["input_if"] is None and row["output_if"] is None


def test_several_samples_and_agents_in_one_drain():
    dec = SflowDecoder()
    for agent in ("192.0.2.1", "192.0.2.2"):
        samples = [enc.flow_sample([enc.sampled_ipv4("10.0.0.1", f"10.0.0.{i}")], seq=i, rate=100) for i in range(1, 4)]
        samples.append(enc.counter_sample([enc.generic_counters(if_index=1)]))
        feed(dec, enc.datagram(samples, agent=agent))
    tables = dec.drain(T0)
    assert tables["flows"].num_rows == 6 and tables["interfaces"].num_rows == 2
    assert tables["flows"].column("exporter").to_pylist() == ["192.0.2.1"] * 3 + ["192.0.2.2"] * 3
    assert dec.stats.of(SRC).records == 8
    assert dec.drain(T0) == {}  # drained means empty


# --- sequence numbers -----------------------------------------------------------------------

def test_sequence_gaps_per_agent_and_sub_agent():
    dec = SflowDecoder()
    for seq in (1, 2, 5):  # 3 and 4 lost at the exporter side
        feed(dec, enc.datagram([], seq=seq))
    for seq in (1, 2):  # another sub-agent has its own numbering
        feed(dec, enc.datagram([], seq=seq, sub_agent=1))
    assert dec.stats.of(SRC).sequence_gaps == 2
    feed(dec, enc.datagram([], seq=4))  # late, not lost
    assert dec.stats.of(SRC).sequence_gaps == 1
    feed(dec, enc.datagram([], seq=5))  # duplicate
    feed(dec, enc.datagram([], seq=3_000_000_000))  # restart or forged: resynchronize, count nothing
    feed(dec, enc.datagram([], seq=3_000_000_001))
    assert dec.stats.of(SRC).sequence_gaps == 1
    feed(dec, enc.datagram([], seq=0xFFFFFFFF, agent="192.0.2.77"))
    feed(dec, enc.datagram([], seq=1, agent="192.0.2.77"))  # 32-bit wrap: 0 is missing
    assert dec.stats.of(SRC).sequence_gaps == 2


# --- hostile input ---------------------------------------------------------------------------

def _flow(i: int) -> bytes:
    return enc.flow_sample([enc.sampled_ipv4("10.0.0.1", f"10.0.0.{i}", length=100 + i)], seq=i)


def _dsts(dec: SflowDecoder) -> list[str]:
    tables = dec.drain(T0)
    return tables["flows"].column("dst_ip").to_pylist() if "flows" in tables else []


@pytest.mark.parametrize("data, reason", [
    (b"", "truncated_datagram_header"),
    (b"\0\0\0\5\0\0\0\1\x7f\0", "truncated_address"),
    (enc.u32(4) + b"\0" * 40, "unknown_version"),
    (enc.u32(5, 3) + b"\0" * 40, "bad_address_type"),
    (enc.u32(5, 0) + b"\0" * 40, "bad_address_type"),
    (enc.datagram([])[:-4], "truncated_datagram_header"),
])
def test_broken_datagram_headers(data, reason):
    dec = SflowDecoder()
    feed(dec, data)
    assert rejected(dec) == {reason: 1}
    assert dec.stats.of(SRC).datagrams == 1 and dec.drain(T0) == {}


def test_sample_length_past_datagram_keeps_earlier_samples():
    d = bytearray(enc.datagram([_flow(1), _flow(2), _flow(3)]))
    second = 28 + len(_flow(1)) + 4  # the length word of sample 2
    struct.pack_into(">I", d, second, 10_000)
    dec = SflowDecoder()
    feed(dec, bytes(d))
    assert _dsts(dec) == ["10.0.0.1"]
    assert rejected(dec) == {"sample_length_overflow": 1}


def test_sample_count_beyond_data_keeps_the_samples_present():
    d = bytearray(enc.datagram([_flow(1), _flow(2)]))
    struct.pack_into(">I", d, 24, 0xFFFFFFFF)
    dec = SflowDecoder()
    feed(dec, bytes(d))
    assert _dsts(dec) == ["10.0.0.1", "10.0.0.2"]
    assert rejected(dec) == {"sample_count_exceeds_data": 1}


def test_broken_sample_is_rejected_alone():
    bad_record_len = bytearray(_flow(2))
    struct.pack_into(">I", bad_record_len, 8 + 32 + 4, 4000)  # record length past its sample
    absurd_records = bytearray(_flow(3))
    struct.pack_into(">I", absurd_records, 8 + 28, 0x7FFFFFFF)  # record count
    zero_rate = enc.flow_sample([enc.sampled_ipv4("10.0.0.1", "10.0.0.4")], rate=0, pool=1)
    short = enc.tagged(1, enc.u32(1, 2, 3))  # flow sample of 12 bytes
    short_ip = enc.flow_sample([enc.tagged(3, enc.u32(1, 2, 3))])
    gateway = enc.flow_sample([enc.tagged(1003, enc.address("192.0.2.1") + enc.u32(1, 2, 3, 1, 2, 99, 7))])
    counters = enc.counter_sample([enc.tagged(1, b"\0" * 40)])
    weird = enc.tagged(5, b"\0" * 12)  # discard sample: framed, not decoded
    vendor = enc.tagged(1, b"\0" * 8, enterprise=9)
    d = enc.datagram([_flow(1), bytes(bad_record_len), bytes(absurd_records), zero_rate, short, short_ip,
                      gateway, counters, weird, vendor, _flow(5)])
    dec = SflowDecoder()
    feed(dec, d)
    assert _dsts(dec) == ["10.0.0.1", "10.0.0.5"]
    assert rejected(dec) == {
        "record_length_overflow": 1, "record_count_exceeds_data": 1, "zero_sampling_rate": 1,
        "truncated_flow_sample": 1, "truncated_sampled_ip": 1, "as_path_length_overflow": 1,
        "truncated_generic_counters": 1, "unsupported_sample_format": 2,
    }
    assert dec.stats.of(SRC).records == 2


def test_backlog_is_bounded_until_drained():
    dec = SflowDecoder(max_pending_samples=3)
    feed(dec, enc.datagram([_flow(i) for i in range(1, 6)]))
    assert rejected(dec) == {"backlog_full": 2}
    assert len(_dsts(dec)) == 3
    feed(dec, enc.datagram([_flow(9)], seq=2))
    assert _dsts(dec) == ["10.0.0.9"]


def test_rejections_logged_once_per_reason_and_exporter(caplog):
    dec = SflowDecoder()
    with caplog.at_level(logging.WARNING, logger="necoma.collect.sflow"):
        for exporter in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
            feed(dec, b"junk", exporter=exporter)
            feed(dec, enc.u32(2) + b"\0" * 30, exporter=exporter)
    assert len(caplog.records) == 4
    assert dec.stats.of("192.0.2.1").rejected == {"truncated_datagram_header": 2, "unknown_version": 2}


def test_feed_never_raises_on_internal_errors(monkeypatch):
    dec = SflowDecoder()
    monkeypatch.setattr(dec, "_sample", lambda *a: 1 / 0)
    feed(dec, enc.datagram([_flow(1)]))
    assert rejected(dec) == {"internal_error": 1}


# --- raw packet headers (decoded by the shared necoma.collect.packet) --------------------------

def _frames():
    scapy = pytest.importorskip("scapy.all")
    eth = scapy.Ether(**MACS)
    dns = (eth / scapy.Dot1Q(vlan=30) / scapy.IP(src="10.0.0.1", dst="192.0.2.53", ttl=61)
           / scapy.UDP(sport=33333, dport=53) / scapy.DNS(id=77, rd=1, qd=scapy.DNSQR(qname="www.example.org", qtype=28)))
    syn = scapy.IP(src="10.0.0.2", dst="198.51.100.80") / scapy.TCP(sport=40000, dport=80, flags="S")
    v6 = scapy.IPv6(src="2001:db8::1", dst="2001:db8::2") / scapy.UDP(sport=123, dport=123) / (b"\x17" + b"\0" * 47)
    frag = scapy.IP(src="10.0.0.3", dst="10.0.0.4", flags="MF", frag=0, proto=17) / (b"x" * 1400)
    return bytes(dns), bytes(syn), bytes(v6), bytes(frag)


@needs_packet
def test_raw_headers_become_packets_and_flows():
    dns, syn, v6, frag = _frames()
    samples = [
        enc.flow_sample([enc.raw_header(dns, stripped=4, frame_length=len(dns) + 4)], seq=1, rate=512, input_if=2),
        enc.flow_sample([enc.raw_header(syn, protocol=enc.HEADER_IPV4)], seq=2, rate=512, expanded=True),
        enc.flow_sample([enc.raw_header(v6, protocol=enc.HEADER_IPV6), enc.ext_gateway(src_as=1, dst_path=[2, 3])], seq=3),
        enc.flow_sample([enc.raw_header(frag, protocol=enc.HEADER_IPV4)], seq=4, rate=8),
        enc.flow_sample([enc.raw_header(b"\xaa" * 40, protocol=2)], seq=5),  # token bus: not decodable
        enc.flow_sample([enc.sampled_ipv4("10.9.9.9", "10.8.8.8", length=77)], seq=6),
    ]
    dec = SflowDecoder()
    feed(dec, enc.datagram(samples, agent="192.0.2.9"))
    tables = dec.drain(T0)
    p, f = tables["packets"], tables["flows"]
    assert p.schema == PACKETS and f.schema == FLOWS
    assert p.num_rows == 4 and f.num_rows == 6
    rows = p.to_pylist()
    assert {r["exporter"] for r in rows} == {"192.0.2.9"} and {r["source"] for r in rows} == {"sflow"}
    assert [r["sampling_rate"] for r in rows] == [512, 512, 1, 8]
    assert (rows[0]["dns_qname"], rows[0]["dns_qtype"], rows[0]["vlan"], rows[0]["dst_port"]) == ("www.example.org", 28, 30, 53)
    assert (rows[1]["protocol"], rows[1]["tcp_flags"], rows[1]["dst_port"]) == (6, 0x02, 80)
    assert (rows[2]["ip_version"], rows[2]["src_ip"], rows[2]["ntp_mode"]) == (6, "2001:db8::1", 7)
    assert rows[3]["more_fragments"] is True
    fl = f.to_pylist()
    assert [r["bytes"] for r in fl] == [len(dns) + 4, len(syn), len(v6), len(frag), 40, 77]
    assert [r["sampling_rate"] for r in fl] == [512, 512, 1, 8, 1, 1]
    assert (fl[0]["src_ip"], fl[0]["dst_port"], fl[0]["protocol"], fl[0]["input_if"]) == ("10.0.0.1", 53, 17, 2)
    assert (fl[1]["dst_ip"], fl[1]["tcp_flags"]) == ("198.51.100.80", 2)
    assert (fl[2]["src_ip"], fl[2]["src_as"], fl[2]["dst_as"]) == ("2001:db8::1", 1, 3)
    assert fl[3]["fragments"] == 1 and fl[0]["fragments"] == 0
    assert fl[4]["src_ip"] is None and fl[5]["dst_ip"] == "10.8.8.8"
    assert rejected(dec) == {"unsupported_header_protocol": 1}


@needs_packet
def test_header_longer_than_its_record_or_frame():
    dns, *_ = _frames()
    over = bytearray(enc.flow_sample([enc.raw_header(dns)]))
    struct.pack_into(">I", over, 8 + 32 + 8 + 12, 4096)  # header length past the record
    longer = enc.flow_sample([enc.raw_header(dns, frame_length=10)])
    dec = SflowDecoder()
    feed(dec, enc.datagram([bytes(over), longer, enc.flow_sample([enc.raw_header(dns)], seq=3)]))
    tables = dec.drain(T0)
    assert tables["packets"].num_rows == 1 and tables["flows"].num_rows == 1
    assert rejected(dec) == {"header_length_overflow": 1, "header_longer_than_frame": 1}


@needs_packet
def test_dns_cut_by_the_sampled_header_length_is_kept_and_counted_apart():
    """An agent copies only the first 128 bytes: a DNS response with answers ends mid-record.
    That is sFlow working as designed, not a rejection; header and question are kept."""
    scapy = pytest.importorskip("scapy.all")
    answers = [scapy.DNSRR(rrname="big.example.net", type="A", rdata=f"192.0.2.{i}") for i in range(1, 9)]
    resp = bytes(scapy.Ether(**MACS) / scapy.IP(src="192.0.2.53", dst="10.0.0.1") / scapy.UDP(sport=53, dport=4444)
                 / scapy.DNS(id=99, qr=1, rcode=0, qd=scapy.DNSQR(qname="big.example.net", qtype=1), an=answers))
    assert len(resp) > 128
    # a complete (uncut) frame whose DNS question is missing: a real rejection
    broken = bytes(scapy.Ether(**MACS) / scapy.IP(src="10.0.0.7", dst="192.0.2.53") / scapy.UDP(sport=5555, dport=53)
                   / (bytes(scapy.DNS(id=5, qd=scapy.DNSQR(qname="x.example")))[:14]))
    dec = SflowDecoder()
    feed(dec, enc.datagram([enc.flow_sample([enc.raw_header(resp)], seq=1, rate=256),
                            enc.flow_sample([enc.raw_header(broken)], seq=2, rate=256)]))
    tables = dec.drain(T0)
    rows = tables["packets"].to_pylist()
    assert (rows[0]["dns_id"], rows[0]["dns_qname"], rows[0]["dns_qtype"], rows[0]["dns_is_response"],
            rows[0]["dns_rcode"]) == (99, "big.example.net", 1, True, 0)
    assert tables["flows"].num_rows == 2 and tables["flows"].column("bytes").to_pylist()[0] == len(resp)
    st = dec.stats.of(SRC)
    assert sum(st.truncated.values()) == 1 and all(k.startswith("header: dns:") for k in st.truncated)
    assert list(st.rejected) and all(k.startswith("header: dns:") for k in st.rejected)
    assert sum(st.rejected.values()) == 1  # only the frame that was complete yet broken
    assert st.as_dict()["truncated"] == dict(st.truncated)
