"""NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) message structure: headers, sets, template sets.

Pure parsing, no state: the decoder owns the caches. Every function reports
problems as rejection reasons instead of raising.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from necoma.collect.netflow import fields as F
from necoma.collect.netflow.templates import MAX_FIELDS, Template, check_template, parse_fields

V9_HEADER = struct.Struct(">HHIIII")  # version, count, sysUptime ms, unix secs, sequence, source id
IPFIX_HEADER = struct.Struct(">HHIII")  # version, length, export time, sequence, domain


class Header(NamedTuple):
    ipfix: bool
    export_ms: int
    uptime_ms: int  # v9 sysUptime; unused for IPFIX (known only through systemInitTimeMilliseconds)
    sequence: int
    domain: int
    end: int  # where the message's sets end

    @property
    def key(self) -> tuple[int, int]:
        """Templates and options belong to (version, domain): v9 source ids and IPFIX domains differ."""
        return (10 if self.ipfix else 9, self.domain)


def parse_header(data: bytes) -> tuple[Header | None, str | None]:
    """Header and a problem; a None header means the datagram cannot be used at all."""
    version = (data[0] << 8) | data[1]
    if version == 9:
        if len(data) < V9_HEADER.size:
            return None, "v9_short_header"
        _, _, uptime, secs, seq, source = V9_HEADER.unpack_from(data)
        return Header(False, secs * 1000, uptime, seq, source, len(data)), None
    if len(data) < IPFIX_HEADER.size:
        return None, "ipfix_short_header"
    _, length, export, seq, domain = IPFIX_HEADER.unpack_from(data)
    if length < IPFIX_HEADER.size:
        return None, "ipfix_bad_length"
    problem = None
    if length > len(data):
        problem, length = "ipfix_truncated_message", len(data)
    elif length < len(data):
        problem = "ipfix_trailing_bytes"
    return Header(True, export * 1000, -1, seq, domain, length), problem


class TemplateRecord(NamedTuple):
    tid: int
    template: Template | None  # None: withdrawal (IPFIX field count 0)


MAX_COMPILED = 4096  # distinct template definitions remembered by `compiled`


def parse_template_set(data: bytes, start: int, end: int, ipfix: bool, options: bool,
                       problems: list[str], compiled: dict | None = None) -> list[TemplateRecord]:
    """Template records of one (options) template set; bad records are skipped and reported.

    Exporters re-send the same templates every few datagrams; `compiled` maps a
    definition's raw bytes to its compiled Template (or rejection reason), so a
    re-send costs a dict lookup instead of a new numpy dtype.
    """
    out: list[TemplateRecord] = []
    if compiled is None:
        compiled = {}
    pos = start
    head = 6 if options else 4
    while end - pos >= head:
        if not data[pos:end].strip(b"\0"):
            break  # padding
        tid = (data[pos] << 8) | data[pos + 1]
        a = (data[pos + 2] << 8) | data[pos + 3]
        b = (data[pos + 4] << 8) | data[pos + 5] if options else 0
        pos += head
        if ipfix:
            count, scope = a, b
            if count == 0:  # withdrawal: a template id, or the set id meaning "all of them"
                out.append(TemplateRecord(tid, None))
                continue
        else:  # v9 options templates give byte lengths of the scope and option specifiers
            if options and (a % 4 or b % 4):
                problems.append("options_template_bad_length")
                return out
            count, scope = ((a + b) // 4, a // 4) if options else (a, 0)
        if count > MAX_FIELDS:
            problems.append("template_too_many_fields")
            return out
        spec_end = _specs_end(data, pos, end, count, ipfix)
        if spec_end is None:
            problems.append("template_truncated")
            return out
        key = (ipfix, options, scope, tid, data[pos:spec_end])
        pos = spec_end
        if tid < 256:
            problems.append("template_id_reserved")
            continue
        got = compiled.get(key)
        if got is None:
            got = _compile(data, key, count)
            if len(compiled) >= MAX_COMPILED:
                compiled.clear()
            compiled[key] = got
        if isinstance(got, str):
            problems.append(got)
        else:
            out.append(TemplateRecord(tid, got))
    return out


def _specs_end(data: bytes, pos: int, end: int, count: int, ipfix: bool) -> int | None:
    """Where `count` field specifiers starting at `pos` end (IPFIX: 8 bytes with a PEN)."""
    if not ipfix:
        pos += 4 * count
        return pos if pos <= end else None
    for _ in range(count):
        if pos + 4 > end:
            return None
        pos += 8 if data[pos] & 0x80 else 4
    return pos if pos <= end else None


def _compile(data: bytes, key: tuple, count: int) -> Template | str:
    ipfix, options, scope, tid, raw = key
    parsed = parse_fields(raw, 0, len(raw), count, ipfix)
    if parsed is None:
        return "template_truncated"
    fields = parsed[0]
    reason = check_template(fields, ipfix)
    if reason is None and options and ipfix and not 0 < scope <= count:
        reason = "options_template_bad_scope"
    return reason or Template(tid, fields, scope_count=scope, is_options=options)


class OptionsRecord(NamedTuple):
    values: dict[int, int]  # IE -> unsigned value (fields of 1..8 bytes)
    interface: int | None  # the interface the record describes (scope or ingressInterface)
    sampler: int | None  # the sampler / selector it describes
    if_name: str | None


def parse_options_records(tpl: Template, body: bytes, ipfix: bool) -> tuple[list[OptionsRecord], bool]:
    records, clean = tpl.split(body)
    out = []
    for raw in records:
        values: dict[int, int] = {}
        interface = sampler = name = None
        for i, (f, v) in enumerate(zip(tpl.fields, raw)):
            scope = i < tpl.scope_count
            if f.pen:
                continue
            if not ipfix and scope:  # v9 scope types are their own namespace
                if f.ie == F.V9_SCOPE_INTERFACE and 1 <= len(v) <= 8:
                    interface = int.from_bytes(v, "big")
                continue
            if f.ie == F.INTERFACE_NAME_IE:
                name = v.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif 1 <= len(v) <= 8:
                values[f.ie] = int.from_bytes(v, "big")
        if F.INGRESS_IF_IE in values:
            interface = values[F.INGRESS_IF_IE]
        for ie in F.SAMPLER_ID_IES:
            if ie in values:
                sampler = values[ie]
                break
        out.append(OptionsRecord(values, interface, sampler, name))
    return out, clean


def sampling_rate(values: dict[int, int]) -> int:
    """1-in-N from an options record (at most 2^32-1, the column's range), 0 when it announces none."""
    return min(_sampling_rate(values), 0xFFFFFFFF)


def _sampling_rate(values: dict[int, int]) -> int:
    if values.get(F.SAMPLING_INTERVAL_IE):
        return values[F.SAMPLING_INTERVAL_IE]
    if values.get(F.SAMPLER_RANDOM_INTERVAL_IE):
        return values[F.SAMPLER_RANDOM_INTERVAL_IE]
    interval = values.get(F.SAMPLING_PACKET_INTERVAL_IE)
    if interval:  # select `interval` packets, then skip `space`
        return max(1, (interval + values.get(F.SAMPLING_PACKET_SPACE_IE, 0)) // interval)
    return 0
