"""Bulk decoding of data records into `flows` rows, and the per-template batches feeding it.

`feed` only parses headers, sets and templates and appends each data set's raw
bytes to a batch keyed by template; `Batches.flush` joins a batch's bytes and
decodes every record in one `np.frombuffer` call. Per-datagram values (export
time, sysUptime, sampling rate) travel beside the bytes and are repeated per
record with `np.repeat`. Text columns are built in Arrow buffers (text.py).
"""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from necoma.collect.netflow import fields as F
from necoma.collect.netflow.templates import Slot, Template, uint_values
from necoma.collect.netflow.text import ipv4_text_fast, ipv6_text, repeated
from necoma.schemas import FLOWS

log = logging.getLogger("necoma.collect.netflow")

BATCH_RECORDS = 65_536  # decode a batch once it holds this many records (bounds raw-byte memory)
SMALL_TABLE = 16  # sampling tables up to this size are looked up entry by entry (see _lookup)
MAX_QUEUED_RECORDS = 1_000_000  # records waiting for the background decoder, at most
UPTIME_UNKNOWN = -(1 << 62)  # Meta.uptime_ms when the base of relative times is unknown
HOUR_US = 3_600_000_000  # the lake's hour partitions of `flows` (necoma.lake.writer)
_MASK32 = np.int64(0xFFFFFFFF)
_HALF32 = np.int64(0x80000000)


@dataclass
class OptionState:
    """What options records said about one (exporter, domain)."""

    init_ms: int | None = None  # systemInitTimeMilliseconds (IPFIX base of IE 21/22)
    rate: int = 0  # exporter/domain-wide sampling rate; 0 = none announced
    rate_is_system: bool = False  # `rate` came from a system-scoped record (not a per-interface fallback)
    rate_by_if: dict[int, int] = field(default_factory=dict)
    rate_by_sampler: dict[int, int] = field(default_factory=dict)
    if_names: dict[int, str] = field(default_factory=dict)
    last_set: tuple[int, bytes] | None = None  # (template id, body) of the last clean v9 options set applied


class Meta(NamedTuple):
    """Per-datagram values that records are interpreted with."""

    export_ms: int
    uptime_ms: int  # sysUptime of the header (v5, v9) or export - systemInit (IPFIX, mod 2^32)
    rate: int  # sampling rate in force when the datagram arrived (0 = unknown -> 1)


class _Batch:
    __slots__ = ("tpl", "exporter", "domain", "source", "options", "parts", "counts", "metas", "records", "chunked")

    def __init__(self, tpl: Template, exporter: str, domain: int, source: str, options: OptionState | None) -> None:
        self.tpl, self.exporter, self.domain, self.source, self.options = tpl, exporter, domain, source, options
        self.parts: list[bytes] = []
        self.counts: list[int] = []
        self.metas: list[tuple[int, int, int]] = []  # Meta fields, as plain tuples (cheaper per datagram)
        self.records = 0
        self.chunked = False  # some counts/metas entries are arrays of many datagrams (add_many)


class Batches:
    """Raw data records waiting for bulk decoding, and the tables decoded so far.

    With `background`, full batches are decoded by one worker thread (numpy and
    numba release the GIL), so the thread that receives datagrams is never held
    by a decode (~10-30 ms for 65,536 records on a busy machine: the socket
    buffer lasts ~50 ms at 1.6 M records/s). Decodes finish in order; at most
    MAX_QUEUED_RECORDS wait, beyond which the caller waits for the oldest.
    """

    def __init__(self, background: bool = False) -> None:
        self._open: dict[tuple[int, str, int, str], _Batch] = {}
        self.tables: list[pa.Table] = []
        self.failed: list[tuple[str, int]] = []  # (exporter, records) of batches that could not be decoded
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="netflow-decode") if background else None
        self._queued: deque[tuple[Future, str, int]] = deque()
        self._queued_records = 0

    def add(self, tpl: Template, exporter: str, domain: int, source: str, options: OptionState | None,
            records: bytes, count: int, meta: tuple[int, int, int]) -> None:
        """`records`: `count` records in `tpl.dtype` layout (fixed, or repacked variable)."""
        if count > 0:
            self._append(tpl, exporter, domain, source, options, records, count, meta, count, chunked=False)

    def add_many(self, tpl: Template, exporter: str, domain: int, source: str, options: OptionState | None,
                 records, counts: np.ndarray, metas: np.ndarray) -> None:
        """Data sets of many datagrams at once: `counts[j]` records with `metas[j]` (export, uptime, rate)."""
        total = int(counts.sum())
        if total > 0:
            self._append(tpl, exporter, domain, source, options, records, counts, metas, total, chunked=True)

    def _append(self, tpl: Template, exporter: str, domain: int, source: str, options: OptionState | None,
                records, counts, metas, total: int, *, chunked: bool) -> None:
        """Into the open batch of (template, exporter, domain, source); decoded once it is full."""
        key = (id(tpl), exporter, domain, source)
        b = self._open.get(key)
        if b is None:
            b = self._open[key] = _Batch(tpl, exporter, domain, source, options)
        b.parts.append(records)
        b.counts.append(counts)
        b.metas.append(metas)
        b.chunked = b.chunked or chunked
        b.records += total
        if b.records >= BATCH_RECORDS:
            del self._open[key]
            self._decode(b)

    def flush(self, wait: bool = True) -> tuple[list[pa.Table], list[tuple[str, int]]]:
        """Tables decoded since the last flush, and what failed to decode (never raises).

        Without `wait`, background decodes still running are returned by a later flush."""
        for b in self._open.values():
            self._decode(b)
        self._open.clear()
        self._collect(0 if wait else None)
        out, failed, self.tables, self.failed = self.tables, self.failed, [], []
        return out, failed

    def _decode(self, b: "_Batch") -> None:
        if self._pool is not None:
            if b.options is not None:  # the options in force now, as an inline decode would use them
                o = b.options
                b.options = replace(o, rate_by_if=dict(o.rate_by_if), rate_by_sampler=dict(o.rate_by_sampler))
            self._queued.append((self._pool.submit(decode_batch, b), b.exporter, b.records))
            self._queued_records += b.records
            self._collect(MAX_QUEUED_RECORDS)
            return
        try:
            self.tables.append(decode_batch(b))
        except Exception:  # a bug costs this batch, counted by the caller, never the collector
            log.exception("netflow: could not decode a batch of %d records from %s", b.records, b.exporter)
            self.failed.append((b.exporter, b.records))

    def _collect(self, wait_over: int | None) -> None:
        """Finished background decodes -> tables, in order. Waits for the oldest while more than
        `wait_over` records are queued (0: for all; None: never)."""
        while self._queued:
            fut, exporter, n = self._queued[0]
            if not fut.done() and (wait_over is None or self._queued_records <= wait_over):
                return
            try:
                self.tables.append(fut.result())
            except Exception:
                log.exception("netflow: could not decode a batch of %d records from %s", n, exporter)
                self.failed.append((exporter, n))
            self._queued.popleft()
            self._queued_records -= n


def decode_batch(b: _Batch) -> pa.Table:
    tpl = b.tpl
    n = b.records
    arr = np.frombuffer(b"".join(b.parts), dtype=tpl.dtype, count=n)
    if b.chunked:
        counts = np.concatenate([np.asarray(c, np.int64).reshape(-1) for c in b.counts])
        metas = np.concatenate([np.asarray(m, np.int64).reshape(-1, 3) for m in b.metas])
    else:
        counts = np.asarray(b.counts, dtype=np.int64)
        metas = np.array(b.metas, dtype=np.int64).reshape(-1, 3)
    export_ms, uptime, rate = (np.repeat(metas[:, i], counts) for i in range(3))
    s = tpl.slots

    def uint(col: str) -> np.ndarray | None:
        return uint_values(arr, s[col]) if col in s else None

    start = _times(arr, s.get("start"), export_ms, uptime)
    end = _times(arr, s.get("end"), export_ms, uptime)
    if start is None:
        start = end if end is not None else export_ms * 1000
    if end is None:
        end = start
    order = hour_order(start)
    if order is not None:  # rows grouped by the lake's hour partition: the writer slices instead of copying
        # records moved as rows of bytes: fancy indexing of a structured dtype is ~10x slower
        rows = np.take(arr.view(np.uint8).reshape(n, arr.dtype.itemsize), order, axis=0)
        arr = rows.reshape(-1).view(arr.dtype)
        rate, start, end = rate[order], start[order], end[order]  # export_ms and uptime: not used below

    packets = uint("packets")
    dst_port = uint("dst_port")
    protocol = uint("protocol")
    icmp = uint("icmp")
    if icmp is not None:
        if dst_port is None:
            dst_port = icmp
        elif protocol is not None:
            use = ((protocol == 1) | (protocol == 58)) & (dst_port == 0)
            dst_port = np.where(use, icmp, dst_port)

    fragments = None
    off, flags = uint("frag_offset"), uint("frag_flags")
    if off is not None or flags is not None:
        is_frag = np.zeros(n, bool)
        if off is not None:
            is_frag |= (off & np.uint64(0x1FFF)) > 0
        if flags is not None:
            is_frag |= (flags & np.uint64(F.MORE_FRAGMENTS_BIT)) > 0
        fragments = np.where(is_frag, packets if packets is not None else np.uint64(1), np.uint64(0))

    rate = _sampling(arr, s, rate, b.options, uint("input_if"))

    columns = {
        "start_time": pa.array(start, pa.int64()).cast(FLOWS.field("start_time").type),
        "end_time": pa.array(end, pa.int64()).cast(FLOWS.field("end_time").type),
        "exporter": repeated(b.exporter, n),
        "observation_domain": pa.array(np.full(n, b.domain & 0xFFFFFFFF, np.uint32)),
        "src_ip": _addresses(arr, s.get("src_ip"), n),
        "dst_ip": _addresses(arr, s.get("dst_ip"), n),
        "dst_port": dst_port,
        "packets": packets,
        "protocol": protocol,
        "sampling_rate": rate,
        "fragments": fragments,
        "source": repeated(b.source, n),
    }
    arrays = []
    for f in FLOWS:
        slot = s.get(f.name)
        if f.name not in columns and slot is not None and slot.kind == "uint" and slot.length in (1, 2, 4, 8):
            # straight from the big-endian field to the column's type (the same low bits as via uint64)
            arrays.append(pa.array(arr[slot.name].astype(f.type.to_pandas_dtype()), f.type))
            continue
        v = columns[f.name] if f.name in columns else uint(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, np.ndarray):
            # Wider-than-column values (e.g. 4-byte tcpControlBits) keep their low bits, as the column can hold.
            arrays.append(pa.array(v.astype(f.type.to_pandas_dtype(), copy=False), f.type))
        else:
            arrays.append(v)
    return pa.Table.from_arrays(arrays, schema=FLOWS)


def hour_order(start_us: np.ndarray) -> np.ndarray | None:
    """Row order grouping rows by start hour (stable), or None when they all start in one hour.

    Flows end, and are exported, out of start-time order, so near an hour's end a
    batch holds two partitions interleaved. Reordering the fixed-width records here
    is one small gather; the writer would otherwise filter every column, strings
    included, once per hour (~0.1 CPU s per million rows).
    """
    if len(start_us) < 2:
        return None
    hours = np.floor_divide(start_us, HOUR_US)
    lo, hi = int(hours.min()), int(hours.max())
    if lo == hi:
        return None
    if hi - lo < 8:
        return np.concatenate([np.flatnonzero(hours == h) for h in range(lo, hi + 1)])
    return np.argsort(hours, kind="stable")


def _times(arr: np.ndarray, slot: Slot | None, export_ms: np.ndarray, uptime: np.ndarray) -> np.ndarray | None:
    """Epoch microseconds, or None when the template has no such time."""
    if slot is None:
        return None
    v = uint_values(arr, slot)
    if slot.kind == "rel":
        # Signed 32-bit distance from sysUptime: a flow that started before the
        # uptime counter last wrapped (values near 2^32 while uptime is small)
        # lies in the past, not 49.7 days in the future.
        delta = ((v.astype(np.int64) - uptime + _HALF32) & _MASK32) - _HALF32
        ms = np.where(uptime != UPTIME_UNKNOWN, export_ms + delta, export_ms)
        return ms * 1000
    if slot.kind == "ms":
        return v.astype(np.int64) * 1000
    if slot.kind == "s":
        return v.astype(np.int64) * 1_000_000
    if slot.kind == "delta":
        return export_ms * 1000 - v.astype(np.int64)
    # NTP 64-bit: seconds since 1900 and a 32-bit binary fraction.
    secs = (v >> np.uint64(32)).astype(np.int64) - F.NTP_EPOCH_OFFSET
    frac = ((v & np.uint64(0xFFFFFFFF)) * np.uint64(1_000_000)) >> np.uint64(32)
    return secs * 1_000_000 + frac.astype(np.int64)


def _sampling(arr: np.ndarray, s: dict[str, Slot], rate: np.ndarray, opts: OptionState | None,
              input_if: np.ndarray | None) -> np.ndarray:
    """Sampling rate per record: the record's own IE 34, its sampler's, its interface's, the domain's."""
    rate = rate.copy()
    if opts is not None:
        if opts.rate_by_if and input_if is not None:
            lookup = _lookup(input_if, opts.rate_by_if)
            rate = np.where(lookup > 0, lookup, rate)
        if opts.rate_by_sampler and "sampler_id" in s:
            ids = uint_values(arr, s["sampler_id"])
            lookup = _lookup(ids, opts.rate_by_sampler)
            rate = np.where(lookup > 0, lookup, rate)
    if "sampling_interval" in s:
        own = uint_values(arr, s["sampling_interval"]).astype(np.int64)
        rate = np.where(own > 0, own, rate)
    return np.clip(np.where(rate > 0, rate, 1), 1, 0xFFFFFFFF).astype(np.uint32)


def _lookup(keys: np.ndarray, table: dict[int, int]) -> np.ndarray:
    """table[key] per element (0 when absent), formatting only distinct keys in Python."""
    if len(table) <= SMALL_TABLE:  # one vectorised comparison per entry: cheaper than sorting the keys
        out = np.zeros(len(keys), np.int64)
        for k, v in table.items():
            if v and 0 <= k < 1 << 64:
                out[keys == np.uint64(k)] = v
        return out
    uniq, inverse = np.unique(keys, return_inverse=True)
    values = np.fromiter((table.get(int(k), 0) for k in uniq), np.int64, len(uniq))
    return values[inverse.reshape(-1)]


def _addresses(arr: np.ndarray, slot: Slot | None, n: int) -> pa.Array:
    if slot is None:
        return pa.nulls(n, pa.string())
    return ipv4_text_fast(arr[slot.name]) if slot.kind == "ipv4" else ipv6_text(arr[slot.name])
