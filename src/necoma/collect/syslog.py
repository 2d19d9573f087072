"""Syslog decoder: RFC 5424 and RFC 3164 (BSD) messages into the `syslog` table.

Hand-written on purpose. The PyPI parsers that exist do not fit a collector
that must take whatever real devices send and count what it cannot read:
`syslog-rfc5424-parser` (last release 2019) handles RFC 5424 only, through a
lark grammar, and raises on the BSD variants; `syslogmp` handles RFC 3164
only and rejects the common deviations (no hostname, ISO timestamps, Cisco
sequence numbers and `*` markers). Both formats together are ~250 lines here.

Policy, per the RFCs where they say something:
- RFC 3164 has no year and no zone: the time is taken as UTC, in the year
  that puts it nearest to the reception time (so a "Dec 31 23:59:59" message
  received on Jan 1 lands in the old year). No valid timestamp → reception
  time and the whole content is the message (RFC 3164 §4.3.2).
- No PRI at all → user.notice (13), as RFC 3164 §4.3.3 tells relays to do.
- A PRI that is present but malformed, or an RFC 5424 header (`<PRI>1 ...`)
  that does not parse, is rejected and counted by reason: guessing would
  store wrong fields.
"""
from __future__ import annotations

import calendar
import json
import logging
import re
import time
from dataclasses import dataclass

import pyarrow as pa

from necoma.collect.stats import CollectorStats
from necoma.schemas import SYSLOG

log = logging.getLogger(__name__)

_PRI = re.compile(rb"<(\d{1,3})>")
_V5424 = re.compile(rb"([1-9]\d?) ")
_TS5424 = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)
_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}
# BSD timestamp with the deviations real devices send: optional Cisco sequence
# number ("123: ") and not-synchronised markers ("*", "."), a one-digit or
# space-padded day, an optional year, fractions, a UTC/GMT word, a trailing colon.
_TS3164 = re.compile(
    rb"(?:\d{1,10}: )?[*.]?([A-Z][a-z]{2}) {1,2}(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
    rb"(?: (?:UTC|GMT))?:?(?: |$)"
)
_TAG = re.compile(r"([^\s\[\]:]{1,64})(?:\[([^\]\s]{0,128})\])?: ?")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:%-]{0,254}")
_BOM = b"\xef\xbb\xbf"
_ESCAPABLE = frozenset(b'"\\]')
MAX_LOGGED = 10_000  # (exporter, reason) pairs logged once; spoofed senders cannot grow it further
_FUTURE_SLACK = 7 * 86400  # seconds a year-less timestamp may lie after its reception


class SyslogReject(Exception):
    """The message cannot be decoded; `args[0]` is the reason (a short, fixed text)."""


@dataclass(frozen=True, slots=True)
class SyslogRecord:
    time_us: int  # message time (or reception time) as UTC epoch microseconds
    facility: int
    severity: int
    host: str | None
    app: str | None
    procid: str | None
    msgid: str | None
    structured_data: str | None  # JSON object text: {"sd-id": {"param": "value" | [values]}}
    message: str | None
    format: str  # rfc3164 | rfc5424


def _text(b: bytes) -> str:
    """Decode message text: UTF-8 when valid, else Latin-1, which never fails and loses no byte."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def _nil(b: bytes) -> str | None:
    return None if b == b"-" else b.decode("ascii", "replace")


def parse_syslog(data: bytes, received: float) -> SyslogRecord:
    """Decode one syslog message (one datagram, or one framed TCP message). Raises SyslogReject."""
    data = data.rstrip(b"\r\n\x00")
    if not data.strip():
        raise SyslogReject("empty message")
    m = _PRI.match(data)
    if m is None:
        if data[:1] == b"<":
            raise SyslogReject("bad PRI")
        return _parse_3164(data, 13, received)
    pri = int(m.group(1))
    if pri > 191:
        raise SyslogReject("bad PRI")
    rest = data[m.end():]
    v = _V5424.match(rest)
    if v is not None:
        if v.group(1) != b"1":
            raise SyslogReject("unsupported syslog version")
        return _parse_5424(rest[v.end():], pri, received)
    return _parse_3164(rest, pri, received)


# ---------------------------------------------------------------- RFC 5424


def _parse_5424(buf: bytes, pri: int, received: float) -> SyslogRecord:
    parts = buf.split(b" ", 5)
    if len(parts) < 5 or any(not p for p in parts[:5]):
        raise SyslogReject("bad rfc5424 header")
    ts, host, app, procid, msgid = parts[:5]
    rest = parts[5] if len(parts) == 6 else b""
    time_us = round(received * 1e6) if ts == b"-" else _time_5424(ts)
    sd, i = _parse_sd(rest) if rest else (None, 0)
    if i < len(rest):
        if rest[i] != 0x20:
            raise SyslogReject("bad structured data")
        i += 1
        if i == len(rest):
            i += 1  # "SD SP" and nothing after: an empty MSG, stored as null
    msg: str | None = None
    if i < len(rest):
        body = rest[i:]
        # A BOM declares UTF-8 (RFC 5424 §6.4); without it the encoding is unknown.
        msg = body[3:].decode("utf-8", "replace") if body.startswith(_BOM) else _text(body)
    return SyslogRecord(
        time_us, pri >> 3, pri & 7, _nil(host), _nil(app), _nil(procid), _nil(msgid),
        json.dumps(sd, ensure_ascii=False) if sd else None, msg, "rfc5424",
    )


def _time_5424(ts: bytes) -> int:
    m = _TS5424.fullmatch(ts)
    if m is None:
        raise SyslogReject("bad rfc5424 timestamp")
    y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24 and mi < 60 and s <= 60):
        raise SyslogReject("bad rfc5424 timestamp")
    frac = m.group(7) or b""
    # Up to 9 digits tolerated (RFC allows 6); a leap second (:60) is kept as :59.999999.
    us = int((frac + b"000000")[:6]) if frac else 0
    if s == 60:
        s, us = 59, 999_999
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise SyslogReject("bad rfc5424 timestamp")
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == b"+" else -1)
    return (calendar.timegm((y, mo, d, h, mi, s)) - offset) * 1_000_000 + us


def _parse_sd(buf: bytes) -> tuple[dict[str, dict[str, object]] | None, int]:
    """Parse STRUCTURED-DATA at the start of `buf`: (elements or None for NILVALUE, end index)."""
    if buf[:1] == b"-":
        return None, 1
    if buf[:1] != b"[":
        raise SyslogReject("bad structured data")
    n = len(buf)
    i = 0
    elements: dict[str, dict[str, object]] = {}
    while i < n and buf[i] == 0x5B:  # '['
        j = i + 1
        while j < n and buf[j] not in b" ]=\"":
            j += 1
        if j == i + 1 or j >= n or buf[j] in b'="':
            raise SyslogReject("bad structured data")
        # A repeated SD-ID (forbidden by the RFC, sent by some) merges into one object.
        params = elements.setdefault(buf[i + 1:j].decode("ascii", "replace"), {})
        i = j
        while i < n and buf[i] == 0x20:
            eq = buf.find(b'="', i + 1)
            name = buf[i + 1:eq]
            if eq < 0 or not name or any(c in b' ]"' for c in name):
                raise SyslogReject("bad structured data")
            value, i = _sd_value(buf, eq + 2)
            key = name.decode("ascii", "replace")
            old = params.get(key)
            params[key] = value if old is None else (old + [value] if isinstance(old, list) else [old, value])
        if i >= n or buf[i] != 0x5D:  # ']'
            raise SyslogReject("bad structured data")
        i += 1
    return elements, i


def _sd_value(buf: bytes, i: int) -> tuple[str, int]:
    """An SD param value starting after its opening quote: (text, index after the closing quote)."""
    out = bytearray()
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 0x22:  # '"'
            return _text(bytes(out)), i + 1
        if c == 0x5C and i + 1 < n and buf[i + 1] in _ESCAPABLE:  # '\' escapes " \ ] only
            out.append(buf[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise SyslogReject("bad structured data")


# ---------------------------------------------------------------- RFC 3164


def _parse_3164(buf: bytes, pri: int, received: float) -> SyslogRecord:
    host: str | None = None
    m = _TS3164.match(buf)
    time_us: int | None = None
    if m is not None and m.group(1) in _MONTHS and (time_us := _time_3164(m, received)) is not None:
        content = buf[m.end():]
    else:
        iso = _TS5424.match(buf)  # rsyslog's RFC 3339 "BSD" forwarding format
        if iso is not None and buf[iso.end():iso.end() + 1] in (b" ", b""):
            time_us = _time_5424(iso.group(0))
            content = buf[iso.end() + 1:]
        else:
            time_us, content = None, buf
    text = _text(content)
    if time_us is None:
        # RFC 3164 §4.3.2: no usable timestamp — the whole content is the message.
        time_us = round(received * 1e6)
    else:
        first, _, after = text.partition(" ")
        # The hostname is optional in practice: a first word that is already a
        # tag ("sshd[12]:", "kernel:") means the sender left it out.
        if first and not first.endswith(":") and "[" not in first and _HOST.fullmatch(first):
            host, text = first, after
    app = procid = None
    t = _TAG.match(text)
    if t is not None:
        app, procid, text = t.group(1), t.group(2) or None, text[t.end():]
    return SyslogRecord(time_us, pri >> 3, pri & 7, host, app, procid, None, None, text, "rfc3164")


def _time_3164(m: re.Match, received: float) -> int | None:
    mon = _MONTHS[m.group(1)]
    day, h, mi, s = int(m.group(2)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    if not (1 <= day <= 31 and h < 24 and mi < 60 and s <= 60):
        return None
    s = min(s, 59)
    us = int((m.group(7) + b"000000")[:6]) if m.group(7) else 0
    if m.group(3):
        years = [int(m.group(3))]
    else:
        ry = _year_of(received)
        years = list(range(ry - 8, ry + 2))  # far enough back to reach a leap year for Feb 29
    # The latest year that does not put the message more than a week after its
    # reception: a log line comes from the past, give or take a skewed clock.
    best: int | None = None
    for y in years:
        if day > calendar.monthrange(y, mon)[1]:
            continue  # Feb 29 outside leap years
        t = calendar.timegm((y, mon, day, h, mi, s))
        if len(years) == 1 or t <= received + _FUTURE_SLACK:
            best = t
    return None if best is None else best * 1_000_000 + us


def _year_of(epoch: float) -> int:
    return time.gmtime(epoch).tm_year


# ---------------------------------------------------------------- decoder


_COLUMNS = ("time", "received", "exporter", "facility", "severity", "host", "app",
            "procid", "msgid", "structured_data", "message", "format")


class SyslogDecoder:
    """Decoder contract (necoma.collect.decoder) for syslog: one message per `feed`."""

    protocol = "syslog"

    def __init__(self) -> None:
        self.stats = CollectorStats("syslog")
        self._rows: list[tuple] = []
        self._logged: set[tuple[str, str]] = set()

    def feed(self, data: bytes, exporter: str, received: float) -> None:
        st = self.stats.of(exporter)
        st.datagrams += 1
        st.bytes += len(data)
        st.last_seen = received
        try:
            r = parse_syslog(data, received)
        except SyslogReject as exc:
            self.reject(exporter, str(exc))
            return
        except Exception:  # never raise: a parser bug is one counted, logged message
            log.exception("syslog from %s: decoder error", exporter)
            self.reject(exporter, "decoder error")
            return
        st.records += 1
        self._rows.append((r.time_us, round(received * 1e6), exporter, r.facility, r.severity, r.host,
                           r.app, r.procid, r.msgid, r.structured_data, r.message, r.format))

    def reject(self, exporter: str, reason: str) -> None:
        """Count one rejected message (also used by the TCP framer for framing errors)."""
        self.stats.of(exporter).rejected[reason] += 1
        if (exporter, reason) not in self._logged and len(self._logged) < MAX_LOGGED:
            self._logged.add((exporter, reason))
            log.warning("syslog from %s: %s (logged once; further ones are only counted)", exporter, reason)

    def drain(self, now: float) -> dict[str, pa.Table]:
        if not self._rows:
            return {}
        rows, self._rows = self._rows, []
        cols = list(zip(*rows))
        arrays = [pa.array(col, type=SYSLOG.field(name).type) for name, col in zip(_COLUMNS, cols)]
        return {"syslog": pa.Table.from_arrays(arrays, schema=SYSLOG)}
