"""Packets to unidirectional flows, the way NetFlow exporters cut them.

A flow is one (src, dst, src port, dst port, protocol) direction. It ends after
`idle_us` without packets, and a long one is cut every `active_us` after its
start (softflowd's and most routers' expiry rules). Packets arrive batch by
batch; flows that may still grow are carried over to the next batch as one
summary row each, so memory holds only open flows, never the whole capture.
All of it is numpy sorting and `reduceat`, no per-packet Python.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from necoma.collect.wire import key_text, repeated
from necoma.schemas import FLOWS, TS


class FlowAggregator:
    def __init__(self, exporter: str, *, idle_s: float = 60.0, active_s: float = 300.0,
                 source: str = "pcap", sampling_rate: int = 1, cut_rows: int = 1 << 18) -> None:
        self.exporter, self.source, self.sampling_rate = exporter, source, sampling_rate
        self.idle_us, self.active_us = int(idle_s * 1e6), int(active_s * 1e6)
        # Packets are buffered up to `cut_rows` before flows are cut: each cut re-sorts
        # the still-open flows with the new packets, so cutting per small batch would
        # sort the same open flows over and over.
        self.cut_rows = cut_rows
        self._open: dict | None = None  # column arrays of still-open flows
        self._buffered: list[dict] = []
        self._buffered_rows = 0
        self._watermark = np.iinfo(np.int64).min  # latest packet time seen

    def add(self, packets: pa.Table, tos: np.ndarray, addr_keys: np.ndarray) -> pa.Table:
        """Add one batch of `packets` rows; return the flows that are now complete."""
        if packets.num_rows == 0:
            return FLOWS.empty_table()

        def num(name):
            col = packets.column(name)
            return (col.fill_null(0) if col.null_count else col).to_numpy().astype(np.int64)

        t = packets.column("time").cast(pa.int64()).to_numpy()
        frag = packets.column("more_fragments").to_numpy(zero_copy_only=False) | (num("fragment_offset") > 0)
        self._buffered.append({
            "t_first": t, "t_last": t, "k0": addr_keys[:, 0], "k1": addr_keys[:, 1], "k2": addr_keys[:, 2],
            "k3": addr_keys[:, 3], "sport": num("src_port"), "dport": num("dst_port"), "proto": num("protocol"),
            "v4": num("ip_version") == 4, "packets": np.ones(len(t), np.int64), "bytes": num("ip_length"),
            "flags": num("tcp_flags"), "frags": frag.astype(np.int64), "tos": tos.astype(np.int64),
        })
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
        rows = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        keys = [rows[c] for c in ("k0", "k1", "k2", "k3")] + [rows[c].astype(np.uint64) for c in ("sport", "dport", "proto", "v4")]
        # sort by a 64-bit hash of the key, then time: one cheap two-key sort instead of
        # eight keys; a hash collision only interleaves two keys, which the exact key
        # comparison below then splits (never merges)
        h = np.zeros(len(keys[0]), np.uint64)
        for i, k in enumerate(keys):
            h = (h ^ k) * np.uint64(0x9E3779B97F4A7C15 + 2 * i)
            h ^= h >> np.uint64(29)
        order = np.lexsort((rows["t_first"], h))
        t_first, t_last = rows["t_first"][order], rows["t_last"][order]
        n = len(order)
        start = np.zeros(n, bool)
        start[0] = True
        for k in keys:
            ks = k[order]
            start[1:] |= ks[1:] != ks[:-1]
        start[1:] |= (t_first[1:] - t_last[:-1]) > self.idle_us
        idx = np.arange(n)
        while True:  # active timeout: cut at the first packet `active` after the flow's start
            head = np.maximum.accumulate(np.where(start, idx, 0))
            over = (t_first - t_first[head]) >= self.active_us
            first_over = over & ~np.r_[False, over[:-1]]
            if not first_over.any():
                break
            start |= first_over
        b = np.flatnonzero(start)
        first = order[b]  # the row that starts each flow, in input order
        flow = {"t_first": t_first[b], "t_last": np.maximum.reduceat(t_last, b)}
        for c in ("packets", "bytes", "frags"):
            flow[c] = np.add.reduceat(rows[c][order], b)
        flow["flags"] = np.bitwise_or.reduceat(rows["flags"][order], b)
        for c in ("k0", "k1", "k2", "k3", "sport", "dport", "proto", "v4", "tos"):
            flow[c] = rows[c][first]
        # complete: idle for longer than the timeout, or past the active timeout,
        # judged against the latest time seen (captures are nearly time-ordered)
        now = self._watermark
        done = final | (flow["t_last"] + self.idle_us < now) | (flow["t_first"] + self.active_us <= now)
        if not done.all():
            self._open = {c: v[~done] for c, v in flow.items()}
        return self._table({c: v[done] for c, v in flow.items()} if not done.all() else flow)

    def _table(self, f: dict) -> pa.Table:
        m = len(f["t_first"])
        return pa.Table.from_arrays([
            pa.array(f["t_first"], TS), pa.array(f["t_last"], TS), repeated(self.exporter, m),
            pa.array(np.zeros(m, np.uint32)), key_text(f["k0"], f["k1"], f["v4"]), key_text(f["k2"], f["k3"], f["v4"]),
            pa.array(f["sport"], pa.uint16()), pa.array(f["dport"], pa.uint16()), pa.array(f["proto"], pa.uint8()),
            pa.array(f["flags"], pa.uint8()), pa.array(f["tos"], pa.uint8()),
            pa.array(f["packets"], pa.uint64()), pa.array(f["bytes"], pa.uint64()),
            pa.array(np.full(m, self.sampling_rate, np.uint32)), pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()),
            pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()), pa.array(f["frags"], pa.uint64()),
            repeated(self.source, m),
        ], schema=FLOWS)
