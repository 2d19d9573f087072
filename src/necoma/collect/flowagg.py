"""Packets to unidirectional flows, the way NetFlow exporters cut them.

A flow is one (src, dst, src port, dst port, protocol) direction. It ends after
`idle_us` without packets, and a long one is cut every `active_us` after its
start (softflowd's and most routers' expiry rules). Packets arrive batch by
batch and are buffered up to `cut_rows`; then flows are cut, and those that may
still grow are carried over as one summary row each, so memory holds only open
flows and one buffer, never the whole capture. Cutting is one compiled pass per
key (`flowcut`); the numpy sort-and-`reduceat` version is kept as its reference.
Address text is made only for finished flows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from necoma.collect._jit import loaded
from necoma.collect.wire import key_text, repeated
from necoma.schemas import FLOWS, TS

# One row of uint64 per packet, then per flow, in a 2-D array: `take(axis=0)` moves
# whole rows in one pass, several times faster than gathering column by column (or
# a structured dtype). Flows keep the first packet's fields, sum packets, bytes and
# fragments, OR the TCP flags and keep the latest time.
T_FIRST, T_LAST, K0, K1, K2, K3, PP, PACKETS, BYTES, FRAGS, FLAGS, TOS = range(12)
_SUM = [PACKETS, BYTES, FRAGS]


def _by_hash_then_time(h: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Order by (h, t). A plain sort on h first (4x cheaper than a two-key lexsort);
    only runs of equal hashes, i.e. flows with several packets, are then re-sorted
    by time. When most rows share a hash with another, one lexsort is cheaper."""
    order = np.argsort(h)
    hs = h[order]
    tied = np.flatnonzero(hs[1:] == hs[:-1])
    if len(tied) == 0:
        return order
    if 4 * len(tied) > len(h):
        return np.lexsort((t, h))
    in_run = np.zeros(len(h), bool)
    in_run[tied] = in_run[tied + 1] = True
    pos = np.flatnonzero(in_run)  # positions of tied runs in `order`, which stay where they are
    sub = order[pos]
    order[pos] = sub[np.lexsort((sub, t[sub], h[sub]))]  # ties in time keep input order, as lexsort does
    return order


class FlowAggregator:
    def __init__(self, exporter: str, *, idle_s: float = 60.0, active_s: float = 300.0,
                 source: str = "pcap", sampling_rate: int = 1, cut_rows: int = 1 << 18,
                 reference: bool | None = None) -> None:
        self.exporter, self.source, self.sampling_rate = exporter, source, sampling_rate
        self.idle_us, self.active_us = int(idle_s * 1e6), int(active_s * 1e6)
        # Packets are buffered up to `cut_rows` before flows are cut: each cut re-sorts
        # the still-open flows with the new packets, so cutting per small batch would
        # sort the same open flows over and over.
        self.cut_rows = cut_rows
        self.reference = reference  # numpy reference instead of the kernel; None: the kernel once numba is loaded
        self._open: np.ndarray | None = None  # rows of still-open flows
        self._buffered: list[np.ndarray] = []
        self._buffered_rows = 0
        self._watermark = np.iinfo(np.int64).min  # latest packet time seen

    def add(self, packets: pa.Table, tos: np.ndarray, addr_keys: np.ndarray) -> pa.Table:
        """Add one batch of `packets` rows; return the flows that are now complete."""
        if packets.num_rows == 0:
            return FLOWS.empty_table()

        def num(name):
            col = packets.column(name)
            return (col.fill_null(0) if col.null_count else col).to_numpy().astype(np.uint64)

        t = packets.column("time").cast(pa.int64()).to_numpy()
        frag = packets.column("more_fragments").to_numpy(zero_copy_only=False) | (num("fragment_offset") > 0)
        # ports, protocol and IP version packed in one sort key: 16 + 16 + 8 + 1 bits
        pp = (num("src_port") << np.uint64(25)) | (num("dst_port") << np.uint64(9)) \
            | (num("protocol") << np.uint64(1)) | (num("ip_version") == 4)
        rec = np.empty((len(t), 12), np.uint64)
        rec[:, T_FIRST] = rec[:, T_LAST] = t
        rec[:, K0:K3 + 1] = addr_keys
        rec[:, PP], rec[:, PACKETS], rec[:, BYTES] = pp, 1, num("ip_length")
        rec[:, FRAGS], rec[:, FLAGS], rec[:, TOS] = frag, num("tcp_flags"), tos
        self._buffered.append(rec)
        self._buffered_rows += len(t)
        self._watermark = max(self._watermark, int(t.max()))
        if self._buffered_rows < self.cut_rows:
            return FLOWS.empty_table()
        return self._cut(final=False)

    def finish(self) -> pa.Table:
        """All remaining flows (end of capture)."""
        return self._cut(final=True)

    def _cut(self, *, final: bool) -> pa.Table:
        parts = ([self._open] if self._open is not None else []) + self._buffered
        self._buffered, self._buffered_rows, self._open = [], 0, None
        if not parts:
            return FLOWS.empty_table()
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        # complete: idle for longer than the timeout, or past the active timeout,
        # judged against the latest time seen (captures are nearly time-ordered)
        now = self._watermark
        if self.reference or (self.reference is None and not loaded()):
            flow = self._flows_numpy(rows)
            f_first, f_last = flow[:, T_FIRST].astype(np.int64), flow[:, T_LAST].astype(np.int64)
            done = final | (f_last + self.idle_us < now) | (f_first + self.active_us <= now)
            if not done.all():
                self._open = flow.compress(~done, axis=0)
                flow = flow.compress(done, axis=0)
            return self._table(np.ascontiguousarray(flow.T))
        from necoma.collect.flowcut import cut_flows, split_done  # compiled; numba loads on first use

        flow = cut_flows(np.ascontiguousarray(rows), self.idle_us, self.active_us)
        done, still_open = split_done(flow, now, self.idle_us, self.active_us, final)
        if len(still_open):
            self._open = still_open
        return self._table(done)

    def _flows_numpy(self, rows: np.ndarray) -> np.ndarray:
        """The numpy reference of `flowcut.cut_flows` (same flows, in hash order)."""
        # the upper address halves are zero for IPv4 (::ffff:a.b.c.d): left out of the key then
        cols = [K1, K3, PP] + [c for c in (K0, K2) if rows[:, c].any()]
        # sort by a 64-bit hash of the key, then time: one cheap two-key sort instead of
        # several keys; a hash collision only interleaves two keys, which the exact key
        # comparison below then splits (never merges)
        h = np.zeros(len(rows), np.uint64)
        for i, c in enumerate(cols):
            h = (h ^ rows[:, c]) * np.uint64(0x9E3779B97F4A7C15 + 2 * i)
            h ^= h >> np.uint64(29)
        order = _by_hash_then_time(h, rows[:, T_FIRST])
        srt, hs = rows.take(order, axis=0), h[order]
        t_first, t_last = srt[:, T_FIRST].astype(np.int64), srt[:, T_LAST].astype(np.int64)
        n = len(srt)
        start = np.ones(n, bool)
        same = np.flatnonzero(hs[1:] == hs[:-1]) + 1  # same hash as the row before: check the key itself
        if len(same):
            key = srt[:, [K0, K1, K2, K3, PP]]
            differs = (key[same] != key[same - 1]).any(axis=1)
            start[same] = differs | ((t_first[same] - t_last[same - 1]) > self.idle_us)
        idx = np.arange(n)
        while True:  # active timeout: cut at the first packet `active` after the flow's start
            head = np.maximum.accumulate(np.where(start, idx, 0))
            over = (t_first - t_first[head]) >= self.active_us
            first_over = over & ~np.r_[False, over[:-1]]
            if not first_over.any():
                break
            start |= first_over
        b = np.flatnonzero(start)
        if len(b) == n:  # every row is a flow of its own: nothing to reduce
            return srt
        flow = srt.take(b, axis=0)  # the first packet's fields
        flow[:, T_LAST] = np.maximum.reduceat(t_last, b)
        flow[:, _SUM] = np.add.reduceat(srt[:, _SUM], b, axis=0)
        flow[:, FLAGS] = np.bitwise_or.reduceat(srt[:, FLAGS], b)
        return flow

    def _table(self, f: np.ndarray) -> pa.Table:
        """The FLOWS table of flows given column by column: f[field] is one row per flow."""
        m = f.shape[1]
        pp = f[PP]
        v4 = (pp & np.uint64(1)).astype(bool)

        def col(c, typ):
            return pa.array(f[c].astype(typ))

        return pa.Table.from_arrays([
            pa.array(f[T_FIRST].astype(np.int64), TS), pa.array(f[T_LAST].astype(np.int64), TS),
            repeated(self.exporter, m), pa.array(np.zeros(m, np.uint32)),
            key_text(f[K0], f[K1], v4), key_text(f[K2], f[K3], v4),
            pa.array((pp >> np.uint64(25)).astype(np.uint16)), pa.array((pp >> np.uint64(9)).astype(np.uint16)),
            pa.array((pp >> np.uint64(1)).astype(np.uint8)),  # astype keeps the low bits
            col(FLAGS, np.uint8), col(TOS, np.uint8), col(PACKETS, np.uint64), col(BYTES, np.uint64),
            pa.array(np.full(m, self.sampling_rate, np.uint32)), pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()),
            pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()), col(FRAGS, np.uint64),
            repeated(self.source, m),
        ], schema=FLOWS)
