"""Syslog decoding (RFC 3164, RFC 5424) and RFC 6587 TCP framing, without the network."""
from __future__ import annotations

import calendar
import json
import random

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from necoma.collect.framing import SyslogFramer
from necoma.collect.syslog import SyslogDecoder, SyslogReject, parse_syslog
from necoma.schemas import SYSLOG

# 2026-12-03 20:00:00 UTC
NOW = calendar.timegm((2026, 12, 3, 20, 0, 0))


def utc(*t: int, us: int = 0) -> int:
    return calendar.timegm((t + (0, 0, 0, 0, 0))[:6]) * 1_000_000 + us


# ------------------------------------------------------------------ RFC 5424


def test_rfc5424_examples_from_the_rfc():
    r = parse_syslog(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                     b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8", NOW)
    assert (r.facility, r.severity, r.format) == (4, 2, "rfc5424")
    assert r.time_us == utc(2003, 10, 11, 22, 14, 15, us=3000)
    assert (r.host, r.app, r.procid, r.msgid) == ("mymachine.example.com", "su", None, "ID47")
    assert r.structured_data is None
    assert r.message == "'su root' failed for lonvick on /dev/pts/8"  # BOM removed

    r = parse_syslog(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                     b"%% It's time to make the do-nuts.", NOW)
    assert r.time_us == utc(2003, 8, 24, 12, 14, 15, us=3)  # offset applied
    assert (r.host, r.app, r.procid, r.msgid) == ("192.0.2.1", "myproc", "8710", None)


def test_rfc5424_structured_data_to_json():
    r = parse_syslog(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                     b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                     b'[examplePriority@32473 class="high"] \xef\xbb\xbfAn application event', NOW)
    assert json.loads(r.structured_data) == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert r.message == "An application event"


def test_rfc5424_sd_escapes_repeats_and_no_message():
    r = parse_syslog(b'<14>1 - host app - - [x@1 a="q\\"uo\\]te\\\\" a="2" b="\\n"][x@1 c="3"]', NOW)
    assert json.loads(r.structured_data) == {"x@1": {"a": ['q"uo]te\\', "2"], "b": "\\n", "c": "3"}}
    assert r.message is None
    assert r.time_us == NOW * 1_000_000  # NILVALUE time → reception time


def test_rfc5424_nilvalues_and_fraction_lengths():
    r = parse_syslog(b"<0>1 2024-02-29T23:59:59.123456789+00:00 - - - - - msg", NOW)
    assert (r.host, r.app, r.procid, r.msgid, r.message) == (None, None, None, None, "msg")
    assert r.time_us == utc(2024, 2, 29, 23, 59, 59, us=123456)
    assert parse_syslog(b"<0>1 2024-01-01T00:00:00.5Z - - - - -", NOW).time_us == utc(2024, 1, 1, us=500000)


def test_rfc5424_non_utf8_message_without_bom_kept_as_latin1():
    r = parse_syslog(b"<14>1 - h a - - - caf\xe9", NOW)
    assert r.message == "café"


@pytest.mark.parametrize("msg, reason", [
    (b"<14>1 2024-13-01T00:00:00Z h a - - -", "bad rfc5424 timestamp"),
    (b"<14>1 2023-02-29T00:00:00Z h a - - -", "bad rfc5424 timestamp"),
    (b"<14>1 2024-01-01 00:00:00Z h a - - -", "bad rfc5424 timestamp"),
    (b"<14>1 2024-01-01T00:00:00 h a - - -", "bad rfc5424 timestamp"),  # no offset
    (b"<14>1 short", "bad rfc5424 header"),
    (b"<14>1 - h a - - [unterminated", "bad structured data"),
    (b'<14>1 - h a - - [id a="unterminated]', "bad structured data"),
    (b"<14>1 - h a - - [id a=unquoted]", "bad structured data"),
    (b"<14>1 - h a - - []", "bad structured data"),
    (b"<14>1 - h a - - -garbage", "bad structured data"),
    (b"<14>2 - h a - - -", "unsupported syslog version"),
    (b"<192>1 - h a - - -", "bad PRI"),
    (b"<x>hello", "bad PRI"),
    (b"<12", "bad PRI"),
    (b"", "empty message"),
    (b" \r\n\x00", "empty message"),
])
def test_rejections_have_reasons(msg, reason):
    with pytest.raises(SyslogReject) as exc:
        parse_syslog(msg, NOW)
    assert str(exc.value) == reason


# ------------------------------------------------------------------ RFC 3164


def test_rfc3164_classic():
    r = parse_syslog(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed\n", NOW)
    assert (r.facility, r.severity, r.format) == (4, 2, "rfc3164")
    assert r.time_us == utc(2026, 10, 11, 22, 14, 15)
    assert (r.host, r.app, r.procid, r.message) == ("mymachine", "su", "123", "'su root' failed")


def test_rfc3164_missing_year_chooses_the_recent_past():
    jan1 = calendar.timegm((2027, 1, 1, 0, 0, 5))
    assert parse_syslog(b"<13>Dec 31 23:59:59 h a: x", jan1).time_us == utc(2026, 12, 31, 23, 59, 59)
    # A sender clock a little ahead across New Year stays in the new year.
    dec31 = calendar.timegm((2026, 12, 31, 23, 59, 0))
    assert parse_syslog(b"<13>Jan  1 00:00:30 h a: x", dec31).time_us == utc(2027, 1, 1, 0, 0, 30)
    # Months ahead means last year, not next year.
    assert parse_syslog(b"<13>Feb  5 17:32:18 h a: x", NOW).time_us == utc(2026, 2, 5, 17, 32, 18)
    # Feb 29 goes to the last leap year.
    assert parse_syslog(b"<13>Feb 29 12:00:00 h a: x", NOW).time_us == utc(2024, 2, 29, 12)


def test_rfc3164_variants():
    # No hostname: the first word is already the tag.
    r = parse_syslog(b"<30>Mar  7 01:02:03 sshd[77]: Accepted publickey", NOW)
    assert (r.host, r.app, r.procid, r.message) == (None, "sshd", "77", "Accepted publickey")
    # Cisco IOS: sequence number, '*' (clock not synchronised), milliseconds, zone, trailing colon.
    r = parse_syslog(b"<189>123: *Mar  1 18:46:11.123 UTC: %SYS-5-CONFIG_I: Configured from console", NOW)
    assert (r.facility, r.severity) == (23, 5)
    assert r.time_us == utc(2026, 3, 1, 18, 46, 11, us=123000)
    assert (r.app, r.message) == ("%SYS-5-CONFIG_I", "Configured from console")
    # An explicit year is used as is.
    assert parse_syslog(b"<13>Mar  1 2019 10:00:00 h a: x", NOW).time_us == utc(2019, 3, 1, 10)
    # rsyslog's RFC 3339 timestamps in the BSD layout.
    r = parse_syslog(b"<13>2024-01-05T10:00:00.25+01:00 web nginx: GET /", NOW)
    assert r.time_us == utc(2024, 1, 5, 9, 0, 0, us=250000)
    assert (r.host, r.app, r.message) == ("web", "nginx", "GET /")
    # IPv6 sender as hostname.
    assert parse_syslog(b"<13>Jan  2 03:04:05 2001:db8::1 app: m", NOW).host == "2001:db8::1"


def test_rfc3164_without_timestamp_or_pri():
    r = parse_syslog(b"<13>no timestamp here: at all", NOW)
    assert r.time_us == NOW * 1_000_000 and r.host is None
    assert (r.app, r.message) == (None, "no timestamp here: at all")
    r = parse_syslog(b"<13>sshd[9]: no timestamp, but a tag", NOW)
    assert (r.host, r.app, r.procid, r.message) == (None, "sshd", "9", "no timestamp, but a tag")
    r = parse_syslog(b"plain text line", NOW)  # RFC 3164 §4.3.3: no PRI → user.notice
    assert (r.facility, r.severity, r.message) == (1, 5, "plain text line")
    r = parse_syslog(b"<13>Jan 99 10:00:00 h a: bad day", NOW)  # invalid date: whole content is the message
    assert r.time_us == NOW * 1_000_000 and "Jan 99" in r.message


def test_rfc3164_latin1_bytes_are_kept():
    assert parse_syslog(b"<13>Jan  2 03:04:05 h app: gr\xfc\xdf", NOW).message == "grüß"


# ------------------------------------------------------------------ decoder contract


def test_decoder_counts_and_drains_schema_table():
    d = SyslogDecoder()
    d.feed(b"<13>Jan  2 03:04:05 h app: one", "192.0.2.1", NOW)
    d.feed(b"<999>bad", "192.0.2.1", NOW)
    d.feed(b"<165>1 - h a - - - two", "2001:db8::2", NOW + 0.5)
    st = d.stats.of("192.0.2.1")
    assert (st.datagrams, st.records, dict(st.rejected)) == (2, 1, {"bad PRI": 1})
    tables = d.drain(NOW + 1)
    t = tables["syslog"]
    assert t.schema == SYSLOG and t.num_rows == 2
    assert t.column("exporter").to_pylist() == ["192.0.2.1", "2001:db8::2"]
    assert t.column("format").to_pylist() == ["rfc3164", "rfc5424"]
    assert d.drain(NOW + 2) == {}


@hsettings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_never_raises_and_accounts_for_everything(data):
    d = SyslogDecoder()
    d.feed(data, "192.0.2.9", NOW)
    st_ = d.stats.of("192.0.2.9")
    assert st_.datagrams == 1 and st_.records + sum(st_.rejected.values()) == 1
    d.drain(NOW)


@hsettings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from([b"<", b">", b"1", b"13", b" ", b"-", b"[", b"]", b'"', b"=", b"\\",
                                 b"2024-01-01T00:00:00Z", b"Jan  1 00:00:00", b"a", b"\xef\xbb\xbf", b":"]),
                max_size=40))
def test_structured_fuzz_never_raises(parts):
    d = SyslogDecoder()
    for prefix in (b"<14>1 ", b"<14>"):
        d.feed(prefix + b"".join(parts), "x", NOW)
    st_ = d.stats.of("x")
    assert st_.records + sum(st_.rejected.values()) == 2
    d.drain(NOW)


# ------------------------------------------------------------------ TCP framing (RFC 6587)


def _chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 17)
        out.append(data[i:i + n])
        i += n
    return out


@pytest.mark.parametrize("seed", range(5))
def test_framer_octet_counting_split_anywhere(seed):
    msgs = [b"<13>1 - h a - - - first", b"<13>line with\nnewline inside", b"<13>x" * 30]
    stream = b"".join(str(len(m)).encode() + b" " + m for m in msgs)
    f = SyslogFramer()
    got = []
    for c in _chunks(stream, random.Random(seed)):
        m, r = f.feed(c)
        got += m
        assert r == []
    assert f.mode == "octet" and got == msgs
    assert f.close() == ([], [])


def test_framer_newline_framing_and_last_line_without_newline():
    f = SyslogFramer()
    m1, _ = f.feed(b"<13>one\r\n\n<13>tw")
    m2, _ = f.feed(b"o\n<13>three")
    assert f.mode == "newline" and m1 + m2 == [b"<13>one", b"<13>two"]
    assert f.close() == ([b"<13>three"], [])


def test_framer_oversized_messages_skipped_in_sync():
    f = SyslogFramer(max_message=10)
    m, r = f.feed(b"20 " + b"A" * 20 + b"5 <13>x")
    assert (m, r) == ([b"<13>x"], ["message too long"])
    g = SyslogFramer(max_message=10)
    m, r = g.feed(b"<13>" + b"B" * 30)
    assert (m, r) == ([], ["message too long"])
    m, r = g.feed(b"C" * 30 + b"\n<13>ok\n")
    assert (m, r) == ([b"<13>ok"], [])  # counted once, then back in sync


def test_framer_bad_octet_count_breaks_connection():
    f = SyslogFramer()
    m, r = f.feed(b"5 <13>a12x4 junk")
    assert m == [b"<13>a"] and r == ["bad octet count"] and f.broken
    g = SyslogFramer()
    assert g.feed(b"99999999999999")[1] == ["bad octet count"]
    h = SyslogFramer()
    h.feed(b"10 <13>ab")
    assert h.close() == ([], ["truncated message"])


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([b"12 ", b"5 <13>a", b"\n", b"<13>x\n", b"0 ", b"99999 "]),
                max_size=30), st.integers(8, 64))
def test_framer_fuzz_never_raises_and_stays_bounded(chunks, max_message):
    f = SyslogFramer(max_message=max_message)
    for c in chunks:
        msgs, rejects = f.feed(c)
        assert all(len(m) <= max_message + 1 for m in msgs)
        assert len(f._buf) <= max_message + 64 + 11  # bounded: one message, one read, one count
        assert set(rejects) <= {"message too long", "bad octet count"}
    f.close()
