"""`NetflowDecoder.feed_many`: a batch of received datagrams through the compiled v9 walk.

The decoder's state (streams, templates, options) is exported as arrays for
v9_kernel.walk, which takes every datagram whose outcome that state already
decides; the rest go one by one through `NetflowDecoder.feed`, the reference
path, after which the arrays are brought up to date. Results equal feeding the
datagrams one by one (tests/test_netflow_fast_path.py); only the order of rows
across templates in a drained table may differ.
"""
from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from necoma.collect.netflow.decoder import NetflowDecoder

log = logging.getLogger("necoma.collect.netflow")

K = None  # the v9_kernel module once `kernels()` has loaded it
_tried = False


def kernels():
    """The compiled kernels, loaded on the first batch rather than at import: importing
    numba costs ~0.6 s, which decoders fed one datagram at a time (testbed import,
    `necoma run`'s demo data) never win back. None where numba is missing or cannot
    compile; feed_many then feeds one by one."""
    global K, _tried
    if not _tried:
        _tried = True
        try:
            from necoma.collect.netflow import v9_kernel
            K = v9_kernel
        except Exception:  # pragma: no cover - depends on the installation
            log.debug("numba unavailable: NetFlow v9 batches are decoded datagram by datagram", exc_info=True)
    return K

_M = 1 << 32
MAX_EXPORTER_IDS = 65_536  # exporters numbered for the kernel (only those with a v9 stream)


def _table(keys: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Open-addressing table key -> index in `keys` (at most half full)."""
    size = 16
    while size < 2 * len(keys) + 1:
        size *= 2
    tk = np.full(size, K.EMPTY, np.int64)
    tv = np.full(size, -1, np.int64)
    for i, key in enumerate(keys):
        K.insert(tk, tv, key, i)
    return tk, tv


class FastV9:
    """Arrays mirroring the decoder's v9 state, rebuilt when that state changes shape."""

    def __init__(self, dec: "NetflowDecoder") -> None:
        self.dec = dec
        self.version = None
        self.broken = False  # set when the kernels are missing or once failed
        self.ids: dict[str, int] = {}
        self._cap = 0
        self.taken = 0  # datagrams the kernel took (the rest went through feed)

    # ------------------------------------------------------------ state export

    def _state_version(self) -> tuple:
        d = self.dec
        return (d.templates.version, d.sequences.version, d.options_version)

    def _rebuild(self) -> None:
        d = self.dec
        self.version = self._state_version()
        self.ids = {}
        streams, skeys = [], []
        for key, obj in d.sequences.streams():
            exporter, ver, domain = key
            opts = d._options.get((exporter, (9, domain))) if ver == 9 else None
            if opts is None or len(self.ids) >= MAX_EXPORTER_IDS and exporter not in self.ids:
                continue
            e = self.ids.setdefault(exporter, len(self.ids))
            streams.append((exporter, domain, obj, opts))
            skeys.append(e * _M + domain)
        self.s_keys, self.s_vals = _table(skeys)
        n = len(streams)
        self.streams = streams
        self.slot = {(s[0], s[1]): i for i, s in enumerate(streams)}
        self.s_next = np.array([(s[2].prev + 1) % _M for s in streams], np.int64).reshape(n)
        self.s_touched = np.zeros(n, np.uint8)
        self.s_opt_tid = np.full(n, -1, np.int64)
        self.s_opt_off = np.zeros(n, np.int64)
        self.s_opt_len = np.zeros(n, np.int64)
        raw, pos = [], 0
        for i, (_, _, _, opts) in enumerate(streams):
            if opts.last_set is not None:
                tid, body = opts.last_set
                self.s_opt_tid[i], self.s_opt_off[i], self.s_opt_len[i] = tid, pos, len(body)
                raw.append(body)
                pos += len(body)
        self.s_opt_raw = np.frombuffer(b"".join(raw) or b"\0", np.uint8)
        # templates of these streams
        tkeys, tpls, kind, reclen, scope, count, raw_off, raws = [], [], [], [], [], [], [], []
        pos = 0
        for i, (exporter, domain, _, _) in enumerate(streams):
            for (dkey, tid), tpl in d.templates.of_exporter(exporter):
                if dkey != (9, domain) or tpl.variable:
                    continue
                spec = b"".join(struct.pack(">HH", f.ie, f.length) for f in tpl.fields)
                tkeys.append(i * 65536 + tid)
                tpls.append(tpl)
                kind.append(K.KIND_OPTIONS if tpl.is_options else K.KIND_DATA)
                reclen.append(tpl.record_length or 1)
                scope.append(tpl.scope_count)
                count.append(len(tpl.fields))
                raw_off.append(pos)
                raws.append(spec)
                pos += len(spec)
        self.t_keys, self.t_vals = _table(tkeys)
        self.tpls = tpls
        self.t_stream = [k // 65536 for k in tkeys]
        self.t_kind = np.array(kind, np.int64)
        self.t_reclen = np.array(reclen, np.int64)
        self.t_scope = np.array(scope, np.int64)
        self.t_count = np.array(count, np.int64)
        self.t_raw_off = np.array(raw_off, np.int64)
        self.t_raw = np.frombuffer(b"".join(raws) or b"\0", np.uint8)

    def _write_back(self) -> None:
        """Sequence numbers the kernel advanced -> the decoder's SequenceTracker."""
        for s in np.flatnonzero(self.s_touched):
            obj = self.streams[s][2]
            obj.prev, obj.prev_counts, obj.late_end = int(self.s_next[s] - 1) % _M, (1, 1), -1
        self.s_touched[:] = 0

    def _resync_stream(self, data: bytes, exporter: str) -> None:
        """After the full path took a v9 datagram, its stream's next number (gaps resynchronise)."""
        if len(data) >= 20 and data[0] == 0 and data[1] == 9:
            s = self.slot.get((exporter, int.from_bytes(data[16:20], "big")))
            if s is not None:
                self.s_next[s] = (self.streams[s][2].prev + 1) % _M

    # ------------------------------------------------------------ batches

    def _buffers(self, n_dg: int, nbytes: int) -> None:
        need = max(n_dg, nbytes // 4 + 1)
        if need > self._cap:
            self._cap = max(need, 2 * self._cap)
            cap = self._cap
            self.e_tpl = np.empty(cap, np.int64)
            self.e_off = np.empty(cap, np.int64)
            self.e_n = np.empty(cap, np.int64)
            self.e_dg = np.empty(cap, np.int64)
            self.dg_export = np.empty(cap, np.int64)
            self.dg_uptime = np.empty(cap, np.int64)
            self.dg_records = np.empty(cap, np.int64)

    def feed_many(self, buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, peers: list[str],
                  received: float) -> None:
        d = self.dec
        n = len(offs)
        if n and not self.broken and kernels() is None:
            self.broken = True
        if self.broken or n == 0:
            for i in range(n):
                d.feed(bytes(buf[offs[i]:offs[i] + lens[i]]), peers[i], received)
            return
        self._buffers(n, int(lens.sum()))
        if self.version != self._state_version():
            self._rebuild()
        exps = np.fromiter((self.ids.get(p, -1) for p in peers), np.int64, n)
        taken = np.zeros(n, bool)
        i = 0
        try:
            while i < n:
                stop, k = K.walk(buf, offs, lens, exps, i,
                                 self.s_keys, self.s_vals, self.s_next, self.s_touched,
                                 self.s_opt_tid, self.s_opt_off, self.s_opt_len, self.s_opt_raw,
                                 self.t_keys, self.t_vals, self.t_kind, self.t_reclen, self.t_scope, self.t_count,
                                 self.t_raw_off, self.t_raw,
                                 self.e_tpl, self.e_off, self.e_n, self.e_dg,
                                 self.dg_export, self.dg_uptime, self.dg_records)
                taken[i:stop] = True
                if k:
                    self._emit(buf, k)
                if stop >= n:
                    break
                self._write_back()
                data = bytes(buf[offs[stop]:offs[stop] + lens[stop]])
                d.feed(data, peers[stop], received)
                if self.version != self._state_version():
                    self._rebuild()
                    exps = np.fromiter((self.ids.get(p, -1) for p in peers), np.int64, n)
                else:
                    self._resync_stream(data, peers[stop])
                i = stop + 1
        except Exception:  # a bug here must cost speed, never datagrams: the rest go the full path
            log.exception("netflow: batch decoding failed; decoding datagram by datagram from now on")
            self.broken = True
            for j in range(i, n):
                if not taken[j]:
                    d.feed(bytes(buf[offs[j]:offs[j] + lens[j]]), peers[j], received)
        finally:
            if not self.broken:
                self._write_back()
        self._count(taken, peers, lens, received)

    def _emit(self, buf: np.ndarray, k: int) -> None:
        """The listed data sets -> the decoder's per-template batches (one bulk copy per template)."""
        e_tpl = self.e_tpl[:k]
        first = e_tpl[0]
        groups = [(first, slice(None))] if (e_tpl == first).all() else [(t, np.flatnonzero(e_tpl == t))
                                                                          for t in np.unique(e_tpl)]
        for t, sel in groups:
            t = int(t)
            tpl = self.tpls[t]
            exporter, domain, _, opts = self.streams[self.t_stream[t]]
            # copies: the e_* and dg_* arrays are reused by the next walk
            offs, counts, dg = self.e_off[:k][sel], self.e_n[:k][sel].copy(), self.e_dg[:k][sel]
            size = int(self.t_reclen[t])
            out = np.empty(int(counts.sum()) * size, np.uint8)
            K.gather(buf, offs, counts, size, out)
            metas = np.empty((len(counts), 3), np.int64)
            metas[:, 0] = self.dg_export[dg]
            metas[:, 1] = self.dg_uptime[dg]
            metas[:, 2] = opts.rate
            self.dec._batches.add_many(tpl, exporter, domain, "netflow9", opts, out, counts, metas)

    def _count(self, taken: np.ndarray, peers: list[str], lens: np.ndarray, received: float) -> None:
        """Counters of the datagrams the kernel took (the full path counts its own)."""
        idx = np.flatnonzero(taken)
        if not len(idx):
            return
        d = self.dec
        self.taken += len(idx)
        if peers.count(peers[0]) == len(peers):  # one exporter: the usual batch
            groups = {peers[0]: idx}
        else:
            by: dict[str, list[int]] = {}
            for j in idx.tolist():
                by.setdefault(peers[j], []).append(j)
            groups = {p: np.array(v, np.int64) for p, v in by.items()}
        for exporter, sel in groups.items():
            st = d.stats.of(exporter)
            st.datagrams += len(sel)
            st.bytes += int(lens[sel].sum())
            st.records += int(self.dg_records[sel].sum())
            st.last_seen = max(st.last_seen, received)
            d.outcome(exporter, "decoded", len(sel))
        if received - d._last_expire >= 1.0:
            d._expire(received)
