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

from necoma.schemas import FLOWS, TS

class FlowAggregator:
    def __init__(self, exporter: str, *, idle_s: float = 60.0, active_s: float = 300.0,
                 source: str = "pcap", sampling_rate: int = 1) -> None:
        self.exporter, self.source, self.sampling_rate = exporter, source, sampling_rate
        self.idle_us, self.active_us = int(idle_s * 1e6), int(active_s * 1e6)
        self._open: dict | None = None  # column arrays of still-open flows
        self._watermark = np.iinfo(np.int64).min  # latest packet time seen

    def add(self, packets: pa.Table, tos: np.ndarray, addr_keys: np.ndarray) -> pa.Table:
        """Add one batch of `packets` rows; return the flows that are now complete."""
        if packets.num_rows == 0:
            return FLOWS.empty_table()

        def num(name):
            return packets.column(name).fill_null(0).to_numpy().astype(np.int64)

        t = packets.column("time").cast(pa.int64()).to_numpy()
        frag = packets.column("more_fragments").to_numpy(zero_copy_only=False) | (num("fragment_offset") > 0)
        rows = {
            "t_first": t, "t_last": t, "k0": addr_keys[:, 0], "k1": addr_keys[:, 1], "k2": addr_keys[:, 2],
            "k3": addr_keys[:, 3], "sport": num("src_port"), "dport": num("dst_port"), "proto": num("protocol"),
            "packets": np.ones(len(t), np.int64), "bytes": num("ip_length"), "flags": num("tcp_flags"),
            "frags": frag.astype(np.int64), "tos": tos.astype(np.int64),
            "src_ip": packets.column("src_ip").combine_chunks(), "dst_ip": packets.column("dst_ip").combine_chunks(),
        }
        self._watermark = max(self._watermark, int(t.max()))
        return self._cut(rows, final=False)

    def finish(self) -> pa.Table:
        """All remaining flows (end of capture)."""
        if self._open is None:
            return FLOWS.empty_table()
        flows, self._open = self._open, None
        return self._table(flows)

    def _cut(self, rows: dict, *, final: bool) -> pa.Table:
        if self._open is not None:
            rows = {c: (pa.concat_arrays([self._open[c], rows[c]]) if isinstance(rows[c], pa.Array)
                        else np.concatenate([self._open[c], rows[c]])) for c in rows}
        keys = [rows[c] for c in ("k0", "k1", "k2", "k3")] + [rows[c].astype(np.uint64) for c in ("sport", "dport", "proto")]
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
        for c in ("k0", "k1", "k2", "k3", "sport", "dport", "proto", "tos"):
            flow[c] = rows[c][first]
        for c in ("src_ip", "dst_ip"):
            flow[c] = rows[c].take(pa.array(first))
        # complete: idle for longer than the timeout, or past the active timeout,
        # judged against the latest time seen (captures are nearly time-ordered)
        now = self._watermark
        done = final | (flow["t_last"] + self.idle_us < now) | (flow["t_first"] + self.active_us <= now)
        keep = np.flatnonzero(~done)
        self._open = {c: (v.take(pa.array(keep)) if isinstance(v, pa.Array) else v[keep]) for c, v in flow.items()} \
            if len(keep) else None
        return self._table({c: (v.filter(pa.array(done)) if isinstance(v, pa.Array) else v[done])
                            for c, v in flow.items()})

    def _table(self, f: dict) -> pa.Table:
        m = len(f["t_first"])
        const = lambda v, typ: pa.repeat(pa.scalar(v, typ), m)  # noqa: E731
        return pa.Table.from_arrays([
            pa.array(f["t_first"], TS), pa.array(f["t_last"], TS), const(self.exporter, pa.string()),
            const(0, pa.uint32()), f["src_ip"], f["dst_ip"],
            pa.array(f["sport"], pa.uint16()), pa.array(f["dport"], pa.uint16()), pa.array(f["proto"], pa.uint8()),
            pa.array(f["flags"], pa.uint8()), pa.array(f["tos"], pa.uint8()),
            pa.array(f["packets"], pa.uint64()), pa.array(f["bytes"], pa.uint64()),
            const(self.sampling_rate, pa.uint32()), pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()),
            pa.nulls(m, pa.uint32()), pa.nulls(m, pa.uint32()), pa.array(f["frags"], pa.uint64()),
            const(self.source, pa.string()),
        ], schema=FLOWS)
