"""NetflowDecoder unit tests on built datagrams: every RFC 3954 / RFC 7011 feature and hostile shape.

The proof against real exporters is tests/test_netflow_exporters.py; these pin
down the cases real exporters here do not produce (variable-length fields,
enterprise fields, withdrawals, options applied per interface, hostile input).
"""
from __future__ import annotations

import ipaddress
import logging
import struct
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from necoma.collect.decoder import Decoder
from necoma.collect.netflow import NetflowDecoder
from necoma.schemas import FLOWS

EXPORT = 1_796_000_000  # 2026-12-01, epoch seconds
EXP = "192.0.2.1"


# -- datagram builders (also used by test_netflow_fuzz.py) ------------------------
def fset(set_id: int, body: bytes, pad: bool = True) -> bytes:
    if pad:
        body += b"\0" * (-len(body) % 4)
    return struct.pack(">HH", set_id, len(body) + 4) + body


def template(tid: int, fields: list[tuple]) -> bytes:
    """fields: (ie, length) or (ie, length, pen)."""
    out = struct.pack(">HH", tid, len(fields))
    for f in fields:
        if len(f) == 3:
            out += struct.pack(">HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack(">HH", f[0], f[1])
    return out


def ipfix_options_template(tid: int, scope: list[tuple], fields: list[tuple]) -> bytes:
    out = struct.pack(">HHH", tid, len(scope) + len(fields), len(scope))
    return out + b"".join(struct.pack(">HH", ie, n) for ie, n in scope + fields)


def v9_options_template(tid: int, scope: list[tuple], fields: list[tuple]) -> bytes:
    out = struct.pack(">HHH", tid, 4 * len(scope), 4 * len(fields))
    return out + b"".join(struct.pack(">HH", t, n) for t, n in scope + fields)


def ipfix(*sets: bytes, seq: int = 0, domain: int = 0, export: int = EXPORT) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), export, seq, domain) + body


def v9(*sets: bytes, seq: int = 0, source: int = 0, uptime: int = 1000, secs: int = EXPORT) -> bytes:
    return struct.pack(">HHIIII", 9, len(sets), uptime, secs, seq, source) + b"".join(sets)


def v5(records: list[dict], seq: int = 0, uptime: int = 100_000, secs: int = EXPORT, sampling: int = 0) -> bytes:
    out = struct.pack(">HHIIIIBBH", 5, len(records), uptime, secs, 0, seq, 0, 0, sampling)
    for r in records:
        out += struct.pack(
            ">4s4s4sHHIIIIHHBBBBHHBBH",
            ipaddress.IPv4Address(r.get("src", "10.0.0.1")).packed, ipaddress.IPv4Address(r.get("dst", "10.0.0.2")).packed,
            b"\0" * 4, r.get("in", 1), r.get("out", 2), r.get("packets", 3), r.get("bytes", 300),
            r.get("first", (uptime - 5000) % 2**32), r.get("last", (uptime - 1000) % 2**32), r.get("sport", 1234), r.get("dport", 80),
            0, r.get("flags", 0x12), r.get("proto", 6), r.get("tos", 0), r.get("src_as", 64500), r.get("dst_as", 64501),
            24, 24, 0)
    return out


V4_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (152, 8), (153, 8)]


def v4_record(src="10.1.1.1", dst="10.2.2.2", sport=1000, dport=53, proto=17, packets=2, nbytes=200,
              start_ms=EXPORT * 1000 - 2000, end_ms=EXPORT * 1000 - 1000) -> bytes:
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack(">HHBIIQQ", sport, dport, proto, packets, nbytes, start_ms, end_ms))


def rows(dec: NetflowDecoder) -> list[dict]:
    t = dec.drain(EXPORT + 1).get("flows")
    if t is None:
        return []
    assert t.schema == FLOWS
    return t.to_pylist()


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


# -- contract -----------------------------------------------------------------------------------
def test_follows_decoder_contract():
    dec: Decoder = NetflowDecoder()  # the Protocol is structural (not runtime-checkable)
    assert callable(dec.feed) and callable(dec.drain) and dec.stats.protocol == "netflow"
    assert dec.protocol == "netflow"
    assert dec.drain(0) == {}


# -- NetFlow v5 ------------------------------------------------------------------------------------
def test_v5_fields_sampling_and_uptime_wrap():
    dec = NetflowDecoder()
    # uptime 100 ms, flow First/Last just below 2^32: the counter wrapped after the flow started
    wrapped = {"first": (1 << 32) - 4900, "last": (1 << 32) - 900}
    dec.feed(v5([{}, wrapped], uptime=100, sampling=(1 << 14) | 64), EXP, EXPORT)
    a, b = rows(dec)
    assert a["src_ip"] == "10.0.0.1" and a["dst_ip"] == "10.0.0.2"
    assert (a["src_port"], a["dst_port"], a["protocol"], a["tcp_flags"]) == (1234, 80, 6, 0x12)
    assert (a["packets"], a["bytes"], a["input_if"], a["output_if"]) == (3, 300, 1, 2)
    assert (a["src_as"], a["dst_as"], a["sampling_rate"], a["source"]) == (64500, 64501, 64, "netflow5")
    assert b["start_time"] == ts(EXPORT - 5.0) and b["end_time"] == ts(EXPORT - 1.0)
    assert dec.stats.of(EXP).records == 2


def test_v5_sequence_gap_reorder_and_restart():
    dec = NetflowDecoder()
    st = dec.stats.of(EXP)
    one = [{}]
    dec.feed(v5(one, seq=0), EXP, EXPORT)
    dec.feed(v5(one, seq=1), EXP, EXPORT)
    dec.feed(v5(one, seq=5), EXP, EXPORT)  # 2, 3, 4 missing
    assert st.sequence_gaps == 3
    dec.feed(v5(one, seq=3), EXP, EXPORT)  # late, not lost
    assert st.sequence_gaps == 2
    dec.feed(v5(one, seq=6), EXP, EXPORT)
    dec.feed(v5(one, seq=0), EXP, EXPORT)  # exporter restarted ...
    dec.feed(v5(one, seq=1), EXP, EXPORT)  # ... and goes on from there
    dec.feed(v5(one, seq=2), EXP, EXPORT)
    assert st.sequence_gaps == 2
    dec.feed(v5(one, seq=4_000_000_000), EXP, EXPORT)  # wild jump: resync, not billions lost
    assert st.sequence_gaps == 2


# -- NetFlow v9 ------------------------------------------------------------------------------------
def test_v9_odd_lengths_ipv6_and_relative_times():
    fields = [(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (2, 3), (1, 6), (22, 4), (21, 4), (10, 2), (16, 4)]
    rec = (ipaddress.IPv6Address("2001:db8::1").packed + ipaddress.IPv6Address("2001:db8:0:0:1::").packed
           + struct.pack(">HHB", 443, 50000, 6) + (70000).to_bytes(3, "big") + (2**40 + 5).to_bytes(6, "big")
           + struct.pack(">IIHI", 4000, 9000, 7, 65551))
    dec = NetflowDecoder()
    dec.feed(v9(fset(0, template(300, fields)), fset(300, rec * 2), uptime=10_000, source=7), EXP, EXPORT)
    r = rows(dec)
    assert len(r) == 2
    assert r[0]["src_ip"] == "2001:db8::1" and r[0]["dst_ip"] == "2001:db8:0:0:1::" == str(ipaddress.IPv6Address("2001:db8:0:0:1::"))
    assert (r[0]["packets"], r[0]["bytes"], r[0]["input_if"], r[0]["src_as"]) == (70000, 2**40 + 5, 7, 65551)
    assert r[0]["start_time"] == ts(EXPORT - 6) and r[0]["end_time"] == ts(EXPORT - 1)
    assert (r[0]["observation_domain"], r[0]["source"], r[0]["output_if"]) == (7, "netflow9", None)


def test_v9_sequence_counts_packets_per_source_id():
    dec = NetflowDecoder()
    tpl = fset(0, template(256, V4_FIELDS))
    for seq in (10, 11, 14):
        dec.feed(v9(tpl, seq=seq, source=1), EXP, EXPORT)
    dec.feed(v9(tpl, seq=500, source=2), EXP, EXPORT)  # another stream: no gap
    assert dec.stats.of(EXP).sequence_gaps == 2


def test_data_before_template_is_held_then_decoded():
    dec = NetflowDecoder()
    dec.feed(v9(fset(256, v4_record()), seq=0), EXP, EXPORT)
    assert dec.pending.count(EXP) == 1 and rows(dec) == []
    dec.feed(v9(fset(0, template(256, V4_FIELDS)), seq=1), EXP, EXPORT + 2)
    r = rows(dec)
    assert len(r) == 1 and r[0]["dst_port"] == 53
    assert dec.stats.of(EXP).template_misses == 0


def test_template_never_comes_counts_misses():
    dec = NetflowDecoder(template_wait_seconds=5, max_pending_datagrams=3)
    for i in range(5):
        dec.feed(v9(fset(256 + i, v4_record()), seq=i), EXP, EXPORT)
    assert dec.pending.count(EXP) == 3 and dec.stats.of(EXP).template_misses == 2  # bounded
    assert dec.drain(EXPORT + 10) == {}
    assert dec.pending.count() == 0 and dec.stats.of(EXP).template_misses == 5


def test_templates_are_per_exporter_and_domain():
    dec = NetflowDecoder()
    short = [(8, 4), (12, 4), (2, 4), (1, 4)]
    dec.feed(ipfix(fset(2, template(256, V4_FIELDS)), domain=1), EXP, EXPORT)
    dec.feed(ipfix(fset(2, template(256, short)), domain=2), EXP, EXPORT)
    rec2 = ipaddress.IPv4Address("10.9.9.9").packed * 2 + struct.pack(">II", 1, 99)
    dec.feed(ipfix(fset(256, v4_record()), domain=1), EXP, EXPORT)
    dec.feed(ipfix(fset(256, rec2), domain=2), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record()), domain=1), "192.0.2.2", EXPORT)  # no template from this one
    r = sorted(rows(dec), key=lambda x: x["observation_domain"])
    assert [(x["observation_domain"], x["bytes"]) for x in r] == [(1, 200), (2, 99)]
    assert dec.pending.count("192.0.2.2") == 1


# -- IPFIX -----------------------------------------------------------------------------------------
def test_ipfix_variable_length_and_enterprise_fields():
    fields = [(8, 4), (12, 4), (96, 65535), (2, 4), (12345, 65535, 9), (1, 4), (4, 1), (100, 3, 29305)]
    def rec(name: bytes, vendor: bytes) -> bytes:
        def var(v: bytes) -> bytes:
            return (bytes([len(v)]) if len(v) < 255 else b"\xff" + struct.pack(">H", len(v))) + v
        return (ipaddress.IPv4Address("10.0.0.5").packed + ipaddress.IPv4Address("10.0.0.6").packed
                + var(name) + struct.pack(">I", 4) + var(vendor) + struct.pack(">IB", 400, 17) + b"xyz")
    dec = NetflowDecoder()
    dec.feed(ipfix(fset(2, template(400, fields)), fset(400, rec(b"http", b"") + rec(b"x" * 300, b"v" * 1000))),
             EXP, EXPORT)
    r = rows(dec)
    assert [(x["packets"], x["bytes"], x["protocol"], x["src_ip"]) for x in r] == [(4, 400, 17, "10.0.0.5")] * 2
    assert not dec.stats.of(EXP).rejected


def test_ipfix_absolute_time_encodings():
    ntp = lambda s: ((s + 2_208_988_800) << 32) | (1 << 31)  # noqa: E731 - .5 s
    cases = [
        ([(150, 4), (151, 4)], struct.pack(">II", EXPORT - 10, EXPORT - 5), EXPORT - 10, EXPORT - 5),
        ([(152, 8), (153, 8)], struct.pack(">QQ", (EXPORT - 10) * 1000 + 250, EXPORT * 1000), EXPORT - 9.75, EXPORT),
        ([(154, 8), (155, 8)], struct.pack(">QQ", ntp(EXPORT - 10), ntp(EXPORT - 2)), EXPORT - 9.5, EXPORT - 1.5),
        ([(156, 8), (157, 8)], struct.pack(">QQ", ntp(EXPORT - 10), ntp(EXPORT - 2)), EXPORT - 9.5, EXPORT - 1.5),
        ([(158, 4), (159, 4)], struct.pack(">II", 3_000_000, 1_000_000), EXPORT - 3, EXPORT - 1),
    ]
    for fields, body, start, end in cases:
        dec = NetflowDecoder()
        dec.feed(ipfix(fset(2, template(256, [(2, 4)] + fields)), fset(256, struct.pack(">I", 1) + body)), EXP, EXPORT)
        (r,) = rows(dec)
        assert (r["start_time"], r["end_time"]) == (ts(start), ts(end)), fields


def test_ipfix_relative_times_need_system_init_time():
    dec = NetflowDecoder()
    init_ms = (EXPORT - 3600) * 1000
    opt = fset(3, ipfix_options_template(500, [(143, 4)], [(160, 8)]))
    data = fset(2, template(256, [(2, 4), (22, 4), (21, 4)]))
    dec.feed(ipfix(opt, data, fset(500, struct.pack(">IQ", 1, init_ms)),
                   fset(256, struct.pack(">III", 1, 3_590_000, 3_595_000))), EXP, EXPORT)
    (r,) = rows(dec)
    assert (r["start_time"], r["end_time"]) == (ts(EXPORT - 10), ts(EXPORT - 5))


def test_ipfix_template_withdrawal_and_id_reuse():
    dec = NetflowDecoder()
    dec.feed(ipfix(fset(2, template(256, V4_FIELDS)), fset(256, v4_record(nbytes=111))), EXP, EXPORT)
    dec.feed(ipfix(fset(2, struct.pack(">HH", 256, 0))), EXP, EXPORT)  # withdraw 256
    assert dec.templates.count(EXP) == 0
    short = [(2, 4), (1, 4)]
    dec.feed(ipfix(fset(256, struct.pack(">II", 1, 333))), EXP, EXPORT)  # now held, not mis-decoded
    assert dec.pending.count(EXP) == 1
    dec.feed(ipfix(fset(2, template(256, short)), fset(256, struct.pack(">II", 1, 222))), EXP, EXPORT)  # reused id
    dec.feed(ipfix(fset(2, template(257, short)), fset(2, struct.pack(">HH", 2, 0))), EXP, EXPORT)  # withdraw all
    assert dec.templates.count(EXP) == 0
    got = sorted(x["bytes"] for x in rows(dec))
    assert got == [111, 222, 333]  # the held record was decoded with the new definition of id 256


def test_options_sampling_per_domain_interface_and_sampler():
    dec = NetflowDecoder()
    fields = [(8, 4), (12, 4), (10, 4), (2, 4), (1, 4)]
    rec = lambda ifindex: ipaddress.IPv4Address("10.0.0.1").packed * 2 + struct.pack(">III", ifindex, 1, 100)  # noqa: E731
    sets = [
        fset(3, ipfix_options_template(600, [(149, 4)], [(34, 4)])),  # system-wide 1-in-100
        fset(3, ipfix_options_template(601, [(10, 4)], [(305, 4), (306, 4), (82, 16)])),  # per interface
        fset(2, template(256, fields)),
        fset(600, struct.pack(">II", 0, 100)),
        fset(601, struct.pack(">III", 5, 1, 9) + b"eth5".ljust(16, b"\0")),
        fset(256, rec(1) + rec(5)),
    ]
    dec.feed(ipfix(*sets), EXP, EXPORT)
    assert [r["sampling_rate"] for r in rows(dec)] == [100, 10]
    assert dec.interface_names() == {(EXP, 0, 5): "eth5"}
    # a sampler table (IE 48 -> IE 50) used by records carrying their sampler id
    v9sets = [fset(1, v9_options_template(700, [(2, 4)], [(48, 1), (50, 4)])),
              fset(0, template(256, fields + [(48, 1)])),
              fset(700, struct.pack(">IBI", 0, 3, 1000)),
              fset(256, rec(1) + b"\x03" + rec(1) + b"\x09")]
    dec.feed(v9(*v9sets), EXP, EXPORT)
    assert [r["sampling_rate"] for r in rows(dec)] == [1000, 1000]  # unknown sampler 9: the announced default


def test_fragments_and_icmp():
    dec = NetflowDecoder()
    fields = [(8, 4), (12, 4), (4, 1), (32, 2), (2, 4), (1, 4), (88, 2), (197, 1)]
    def rec(offset, flags, proto=1, icmp=0x0303):
        return ipaddress.IPv4Address("10.0.0.1").packed * 2 + struct.pack(">BHIIHB", proto, icmp, 7, 700, offset, flags)
    dec.feed(ipfix(fset(2, template(256, fields)), fset(256, rec(0, 0) + rec(0, 0x20) + rec(185, 0))), EXP, EXPORT)
    r = rows(dec)
    assert [x["fragments"] for x in r] == [0, 7, 7]
    assert r[0]["dst_port"] == 0x0303 and r[0]["src_port"] is None


# -- hostile input ----------------------------------------------------------------------------------
HOSTILE = {
    "short_datagram": b"\x00",
    "bad_version": struct.pack(">HH", 7, 0) + b"\0" * 40,
    "v5_short_header": struct.pack(">HH", 5, 1) + b"\0" * 4,
    "v5_bad_count": struct.pack(">HHIIIIBBH", 5, 31, 0, 0, 0, 0, 0, 0, 0) + b"\0" * 48 * 31,
    "v9_short_header": struct.pack(">HH", 9, 1) + b"\0" * 4,
    "ipfix_short_header": struct.pack(">HH", 10, 16),
    "ipfix_bad_length": struct.pack(">HHIII", 10, 3, 0, 0, 0),
}


@pytest.mark.parametrize("reason", sorted(HOSTILE))
def test_unusable_datagrams_are_counted_not_raised(reason):
    dec = NetflowDecoder()
    dec.feed(HOSTILE[reason], EXP, EXPORT)
    assert dec.stats.of(EXP).rejected == {reason: 1}
    assert dec.datagram_outcomes[EXP] == {"rejected": 1}


def test_v5_truncated_keeps_the_complete_records():
    dec = NetflowDecoder()
    data = v5([{}, {}, {}])
    dec.feed(data[:24 + 48 * 2 + 10], EXP, EXPORT)
    assert len(rows(dec)) == 2 and dec.stats.of(EXP).rejected == {"v5_truncated": 1}


def test_bad_sets_do_not_stop_good_ones(caplog):
    good_t = fset(2, template(256, V4_FIELDS))
    good_d = fset(256, v4_record())
    bad = [
        fset(2, template(10, V4_FIELDS)),  # template id < 256
        fset(2, template(257, [(8, 0), (1, 4)])),  # zero-length field
        fset(2, struct.pack(">HH", 258, 60000) + b"\0" * 8),  # absurd field count
        fset(2, struct.pack(">HH", 259, 5) + b"\0" * 8),  # truncated template
        fset(3, ipfix_options_template(260, [], [(34, 4)])),  # options template without scope
        fset(5, b"\0" * 8),  # reserved set id
        fset(256, v4_record() + b"\x01\x02\x03"),  # a record plus garbage
    ]
    caplog.set_level(logging.WARNING, logger="necoma.collect.netflow")
    dec = NetflowDecoder()
    dec.feed(ipfix(good_t, *bad, good_d), EXP, EXPORT)
    dec.feed(ipfix(good_t, *bad, good_d), EXP, EXPORT)
    assert len(rows(dec)) == 4  # one from each of the 2 good data sets and each trailing-garbage set
    rej = dec.stats.of(EXP).rejected
    assert rej == {r: 2 for r in ("template_id_reserved", "template_zero_length_field", "template_too_many_fields",
                                   "template_truncated", "options_template_bad_scope", "reserved_set_id",
                                   "data_record_truncated")}
    assert sum("template_id_reserved" in m for m in caplog.messages) == 1  # logged once per reason and exporter
    assert dec.datagram_outcomes[EXP] == {"decoded": 2}


def test_set_length_beyond_datagram_keeps_earlier_sets():
    dec = NetflowDecoder()
    data = ipfix(fset(2, template(256, V4_FIELDS)), fset(256, v4_record())) + struct.pack(">HH", 256, 900) + b"\0" * 8
    data = data[:2] + struct.pack(">H", len(data)) + data[4:]
    dec.feed(data, EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record()))[:-5], EXP, EXPORT)  # header length > datagram
    assert len(rows(dec)) == 1
    assert dec.stats.of(EXP).rejected == {"set_length_overflow": 2, "ipfix_truncated_message": 1}


def test_template_cap_bounds_memory():
    dec = NetflowDecoder(max_templates_per_exporter=10)
    for tid in range(256, 300):
        dec.feed(ipfix(fset(2, template(tid, V4_FIELDS)), domain=tid), EXP, EXPORT)
    assert dec.templates.count(EXP) == 10 and dec.stats.of(EXP).rejected["template_cap"] == 34
    dec.feed(ipfix(fset(2, template(256, V4_FIELDS)), domain=256), EXP, EXPORT)  # refresh of a known one is fine
    assert dec.stats.of(EXP).rejected["template_cap"] == 34


def test_ipfix_sequence_counts_records_and_resyncs_on_unknown_templates():
    dec = NetflowDecoder()
    t = fset(2, template(256, V4_FIELDS))
    dec.feed(ipfix(t, fset(256, v4_record() * 3), seq=0), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record() * 2), seq=3), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record()), seq=9), EXP, EXPORT)  # 4 records lost
    assert dec.stats.of(EXP).sequence_gaps == 4
    dec.feed(ipfix(fset(999, b"\0" * 20), seq=10), EXP, EXPORT)  # unknown size
    dec.feed(ipfix(fset(256, v4_record()), seq=4000), EXP, EXPORT)  # resync, no gap
    assert dec.stats.of(EXP).sequence_gaps == 4


def test_sequence_numbers_including_own_records_are_not_loss():
    """softflowd's IPFIX numbers each message with the count after it (24, 56, 88 for 24, 32, 32 records)."""
    dec = NetflowDecoder()
    t = fset(2, template(256, V4_FIELDS))
    dec.feed(ipfix(t, fset(256, v4_record() * 24), seq=24), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record() * 32), seq=56), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record() * 32), seq=88), EXP, EXPORT)
    dec.feed(ipfix(fset(256, v4_record() * 10), seq=98), EXP, EXPORT)
    assert dec.stats.of(EXP).sequence_gaps == 0
    dec.feed(ipfix(fset(256, v4_record() * 10), seq=113), EXP, EXPORT)  # 5 lost in that convention
    assert dec.stats.of(EXP).sequence_gaps == 5


def test_drain_builds_one_table_across_batches():
    dec = NetflowDecoder()
    dec.feed(ipfix(fset(2, template(256, V4_FIELDS))), EXP, EXPORT)
    for i in range(1000):
        dec.feed(ipfix(fset(256, v4_record(sport=i % 65536) * 70)), EXP, EXPORT)
    dec.feed(v5([{}] * 30), EXP, EXPORT)
    t = dec.drain(EXPORT)["flows"]
    assert isinstance(t, pa.Table) and t.num_rows == 70_030 and dec.stats.of(EXP).records == 70_030
    assert dec.drain(EXPORT) == {}
