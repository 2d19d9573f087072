"""Templates (RFC 3954 §5.2, RFC 7011 §3.4) and the numpy dtypes built from them.

A template is compiled once, when it arrives, into a numpy structured dtype
that covers only the fields necoma stores. Fixed-length templates are then
decoded a whole data set (or many data sets) at a time with `np.frombuffer`;
templates with variable-length fields are first repacked record by record into
the same kind of fixed layout (the only per-record Python loop), then decoded
the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from necoma.collect.netflow import fields as F

VARIABLE = 65535  # IPFIX field length meaning "length prefix in each record"
MAX_FIELDS = 512  # more fields than any real exporter sends: treated as hostile


class FieldSpec(NamedTuple):
    ie: int
    length: int
    pen: int = 0  # IANA enterprise number; 0 = IANA-standard IE


class Slot(NamedTuple):
    """Where a stored value sits in the (packed) record: dtype field name and byte length."""

    name: str
    length: int
    kind: str  # uint | ipv4 | ipv6 | ms | s | ntp | rel | delta


def _usable(kind: str, length: int) -> bool:
    if kind == "ipv4":
        return length == 4
    if kind == "ipv6":
        return length == 16
    if kind == "ntp":
        return length == 8
    return 1 <= length <= 8


@dataclass(eq=False)
class Template:
    """One compiled (options) template. Immutable once built; identity marks a definition."""

    tid: int
    fields: tuple[FieldSpec, ...]
    scope_count: int = 0  # options templates: leading scope fields
    is_options: bool = False

    def __post_init__(self) -> None:
        self.variable = any(f.length == VARIABLE for f in self.fields)
        self.min_length = sum(1 if f.length == VARIABLE else f.length for f in self.fields)
        self.record_length = None if self.variable else self.min_length
        self.slots: dict[str, Slot] = {}
        self._picked: list[int] = []  # indexes of fields copied into the packed layout
        if not self.is_options:
            self._plan()
        self.dtype = self._build_dtype()

    def same_layout(self, other: "Template") -> bool:
        return self.fields == other.fields and self.scope_count == other.scope_count and self.is_options == other.is_options

    # -- compile -----------------------------------------------------------
    def _plan(self) -> None:
        first: dict[int, int] = {}
        for i, f in enumerate(self.fields):
            if f.pen == 0 and f.length != VARIABLE:
                first.setdefault(f.ie, i)

        def pick(column: str, kind: str, ies: tuple[int, ...]) -> None:
            for ie in ies:
                i = first.get(ie)
                if i is not None and _usable(kind, self.fields[i].length):
                    self.slots[column] = Slot(f"f{i}", self.fields[i].length, kind)
                    if i not in self._picked:
                        self._picked.append(i)
                    return

        for column, ies in F.UINT_COLUMNS.items():
            pick(column, "uint", ies)
        for column, (v4, v6) in F.ADDRESS_COLUMNS.items():
            pick(column, "ipv4", (v4,))
            if column not in self.slots:
                pick(column, "ipv6", (v6,))
        pick("icmp", "uint", F.ICMP_IES)
        pick("frag_offset", "uint", (F.FRAGMENT_OFFSET_IE,))
        pick("frag_flags", "uint", (F.FRAGMENT_FLAGS_IE,))
        pick("sampler_id", "uint", F.SAMPLER_ID_IES)
        pick("sampling_interval", "uint", (F.SAMPLING_INTERVAL_IE,))
        for column, choices in (("start", F.START_TIME_IES), ("end", F.END_TIME_IES)):
            for ie, kind in choices:
                pick(column, kind, (ie,))
                if column in self.slots:
                    break

    def _build_dtype(self) -> np.dtype:
        """Fixed templates: dtype over the record. Variable: over the packed picked fields."""
        names, formats, offsets = [], [], []
        if self.variable:
            pos = 0
            for i in self._picked:
                names.append(f"f{i}")
                formats.append(_format(self.fields[i].length))
                offsets.append(pos)
                pos += self.fields[i].length
            itemsize = pos
        else:
            pos = 0
            for i, f in enumerate(self.fields):
                if i in self._picked:
                    names.append(f"f{i}")
                    formats.append(_format(f.length))
                    offsets.append(pos)
                pos += f.length
            itemsize = pos
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})

    # -- per-record walking (variable-length and options records) -----------
    def split(self, body: bytes) -> tuple[list[list[bytes]], bool]:
        """Records as lists of field values. `clean` is False when bytes other than zero padding remain."""
        records: list[list[bytes]] = []
        pos, end = 0, len(body)
        while end - pos >= self.min_length:
            values: list[bytes] = []
            p = pos
            for f in self.fields:
                length = f.length
                if length == VARIABLE:
                    if p >= end:
                        return records, False
                    length = body[p]
                    p += 1
                    if length == 255:  # 3-byte form: 255 then a 16-bit length
                        if p + 2 > end:
                            return records, False
                        length = (body[p] << 8) | body[p + 1]
                        p += 2
                if p + length > end:
                    return records, False
                values.append(body[p:p + length])
                p += length
            records.append(values)
            pos = p
        return records, not any(body[pos:end])

    def repack(self, body: bytes) -> tuple[bytes, int, bool]:
        """Variable-length records -> the packed fixed layout of `dtype`: (packed, count, clean)."""
        records, clean = self.split(body)
        picked = self._picked
        return b"".join(b"".join([r[i] for i in picked]) for r in records), len(records), clean


def _format(length: int):
    if length in (1, 2, 4, 8):
        return f">u{length}"
    if length == 16:
        return "V16"
    return ("u1", (length,))


def uint_values(arr: np.ndarray, slot: Slot) -> np.ndarray:
    """Unsigned values of any length 1..8 as uint64 (odd lengths assembled from bytes)."""
    a = arr[slot.name]
    if slot.length in (1, 2, 4, 8):
        return a.astype(np.uint64)
    v = np.zeros(len(a), np.uint64)
    for i in range(slot.length):
        v = (v << np.uint64(8)) | a[:, i].astype(np.uint64)
    return v


def parse_fields(data: bytes, pos: int, end: int, count: int, ipfix: bool) -> tuple[tuple[FieldSpec, ...], int] | None:
    """Field specifiers starting at `pos`; None when they run past `end`."""
    out = []
    for _ in range(count):
        if pos + 4 > end:
            return None
        ie = (data[pos] << 8) | data[pos + 1]
        length = (data[pos + 2] << 8) | data[pos + 3]
        pos += 4
        pen = 0
        if ipfix and ie & 0x8000:  # enterprise-specific: a 4-byte PEN follows
            if pos + 4 > end:
                return None
            pen = int.from_bytes(data[pos:pos + 4], "big")
            ie &= 0x7FFF
            pos += 4
        out.append(FieldSpec(ie, length, pen))
    return tuple(out), pos


def check_template(fields: tuple[FieldSpec, ...], ipfix: bool) -> str | None:
    """Reason a template cannot be used, or None."""
    if not fields:
        return "template_no_fields"
    for f in fields:
        if f.length == 0:
            return "template_zero_length_field"
        if f.length == VARIABLE and not ipfix:
            return "template_bad_field_length"
    return None


class TemplateCache:
    """Templates per (exporter, domain, template id), at most `max_per_exporter` per exporter."""

    def __init__(self, max_per_exporter: int = 4096) -> None:
        self.max_per_exporter = max_per_exporter
        self._by_exporter: dict[str, dict[tuple, Template]] = {}  # (domain key, tid)
        self.version = 0  # bumped on every change (fast_path rebuilds its arrays)

    def get(self, exporter: str, domain: tuple, tid: int) -> Template | None:
        per = self._by_exporter.get(exporter)
        return None if per is None else per.get((domain, tid))

    def put(self, exporter: str, domain: tuple, tpl: Template) -> tuple[Template, bool]:
        """Store; keep the old object when re-sent unchanged. Returns (template, accepted)."""
        per = self._by_exporter.setdefault(exporter, {})
        old = per.get((domain, tpl.tid))
        if old is not None and (old is tpl or old.same_layout(tpl)):
            return old, True
        if old is None and len(per) >= self.max_per_exporter:
            return tpl, False
        per[(domain, tpl.tid)] = tpl
        self.version += 1
        return tpl, True

    def withdraw(self, exporter: str, domain: tuple, tid: int) -> None:
        self._by_exporter.get(exporter, {}).pop((domain, tid), None)
        self.version += 1

    def withdraw_all(self, exporter: str, domain: tuple, options: bool) -> None:
        per = self._by_exporter.get(exporter, {})
        for key in [k for k, t in per.items() if k[0] == domain and t.is_options == options]:
            del per[key]
        self.version += 1

    def of_exporter(self, exporter: str) -> list[tuple[tuple, Template]]:
        """((domain key, template id), template) of one exporter."""
        return list(self._by_exporter.get(exporter, {}).items())

    def count(self, exporter: str | None = None) -> int:
        if exporter is not None:
            return len(self._by_exporter.get(exporter, {}))
        return sum(len(p) for p in self._by_exporter.values())
