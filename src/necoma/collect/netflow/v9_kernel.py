"""Compiled walk of a batch of NetFlow v9 datagrams (numba), for the steady state of a stream.

One call walks many received datagrams in order: header, sequence number,
flowsets, re-sent templates, and the data sets of known fixed-length templates,
whose positions it lists for a bulk copy. It only takes datagrams whose outcome
is already certain from the decoder's state, exported as arrays (fast_tables.py):
a known stream whose next sequence number is this one, data sets of known data
templates, templates and options records identical to the ones in force. At the
first datagram that is anything else (new template, gap, options change,
malformed bytes, v5, IPFIX) it stops and returns its index: the decoder feeds
that one datagram through the full Python path, which owns every rule and every
rejection reason, and calls the kernel again after it.

Hand-written rather than a library: no Python NetFlow library decodes in bulk
(see decoder.py). Every read is bounds-checked against the datagram's length;
a datagram that fails a check is never partly taken.
"""
from __future__ import annotations

import numpy as np
from necoma.collect._jit import njit

EMPTY = -1  # free slot of the hash tables
KIND_DATA = 0  # template kinds in the template table
KIND_OPTIONS = 1
_HASH = 0x9E3779B97F4A7C15  # Fibonacci hashing (golden ratio), spreads sequential keys


@njit(inline="always", error_model="python")
def _u16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(inline="always", error_model="python")
def _u32(b, p):
    return (np.int64(b[p]) << 24) | (np.int64(b[p + 1]) << 16) | (np.int64(b[p + 2]) << 8) | np.int64(b[p + 3])


@njit(error_model="python")
def lookup(keys, vals, key):
    """Value for `key` in an open-addressing table (power-of-two size, linear probing), or -1."""
    mask = len(keys) - 1
    h = (np.uint64(key) * np.uint64(_HASH)) >> np.uint64(40)
    i = np.int64(h) & mask
    for _ in range(len(keys)):
        k = keys[i]
        if k == key:
            return vals[i]
        if k == EMPTY:
            return -1
        i = (i + 1) & mask
    return -1


@njit(error_model="python")
def insert(keys, vals, key, val):
    mask = len(keys) - 1
    h = (np.uint64(key) * np.uint64(_HASH)) >> np.uint64(40)
    i = np.int64(h) & mask
    while keys[i] != EMPTY and keys[i] != key:
        i = (i + 1) & mask
    keys[i] = key
    vals[i] = val


@njit(error_model="python")
def _zeros(b, p, end):
    for q in range(p, end):
        if b[q] != 0:
            return False
    return True


@njit(error_model="python")
def _same(b, p, raw, r, n):
    for j in range(n):
        if b[p + j] != raw[r + j]:
            return False
    return True


@njit(error_model="python")
def _templates_resent(b, p, end, options, stream, t_keys, t_vals, t_kind, t_scope, t_count, t_raw_off, t_raw):
    """Whether every template record of this set repeats, byte for byte, the one in force."""
    head = 6 if options else 4
    while end - p >= head:
        if _zeros(b, p, end):
            return True  # padding
        tid = _u16(b, p)
        a = _u16(b, p + 2)
        if options:
            c = _u16(b, p + 4)
            if a % 4 or c % 4:
                return False
            count, scope = (a + c) // 4, a // 4
        else:
            count, scope = a, 0
        p += head
        if p + 4 * count > end:
            return False
        t = lookup(t_keys, t_vals, stream * 65536 + tid)
        if t < 0 or t_kind[t] != (KIND_OPTIONS if options else KIND_DATA) or t_count[t] != count \
                or t_scope[t] != scope or not _same(b, p, t_raw, t_raw_off[t], 4 * count):
            return False
        p += 4 * count
    return True


@njit(error_model="python")
def walk(buf, offs, lens, exps, i0,
         s_keys, s_vals, s_next, s_touched, s_opt_tid, s_opt_off, s_opt_len, s_opt_raw,
         t_keys, t_vals, t_kind, t_reclen, t_scope, t_count, t_raw_off, t_raw,
         e_tpl, e_off, e_n, e_dg, dg_export, dg_uptime, dg_records):
    """Walk datagrams i0.. in order; returns (index of the first one not taken, data sets listed).

    Data set k: template e_tpl[k], e_n[k] records starting at buf[e_off[k]], from datagram e_dg[k].
    Per taken datagram i: export ms, sysUptime ms and data records in dg_*[i].
    """
    k = 0
    cap = len(e_tpl)
    for i in range(i0, len(offs)):
        start = offs[i]
        end = start + lens[i]
        if lens[i] < 20 or start < 0 or end > len(buf) or _u16(buf, start) != 9:
            return i, k
        uptime = _u32(buf, start + 4)
        secs = _u32(buf, start + 8)
        seq = _u32(buf, start + 12)
        source = _u32(buf, start + 16)
        s = lookup(s_keys, s_vals, np.int64(exps[i]) * 4294967296 + source)
        if s < 0 or exps[i] < 0 or s_next[s] != seq:
            return i, k
        kk = k
        records = 0
        p = start + 20
        ok = True
        while end - p >= 4:
            set_id = _u16(buf, p)
            length = _u16(buf, p + 2)
            if length < 4:
                ok = set_id == 0 and length == 0 and _zeros(buf, p, end)
                p = end
                break
            nxt = p + length
            if nxt > end:
                ok = False
                break
            if set_id >= 256:
                t = lookup(t_keys, t_vals, s * 65536 + set_id)
                if t < 0:
                    ok = False
                    break
                body = p + 4
                if t_kind[t] == KIND_DATA:
                    size = t_reclen[t]
                    n = (nxt - body) // size
                    if not _zeros(buf, body + n * size, nxt):
                        ok = False  # truncated record: the full path counts it
                        break
                    if n > 0:
                        if kk >= cap:
                            ok = False
                            break
                        e_tpl[kk] = t
                        e_off[kk] = body
                        e_n[kk] = n
                        e_dg[kk] = i
                        kk += 1
                        records += n
                # options data: taken only when it repeats the last options set applied to this stream
                elif s_opt_tid[s] != set_id or s_opt_len[s] != nxt - body \
                        or not _same(buf, body, s_opt_raw, s_opt_off[s], nxt - body):
                    ok = False
                    break
            elif set_id == 0 or set_id == 1:
                if not _templates_resent(buf, p + 4, nxt, set_id == 1, s, t_keys, t_vals, t_kind, t_scope,
                                         t_count, t_raw_off, t_raw):
                    ok = False
                    break
            else:
                ok = False  # reserved set id
                break
            p = nxt
        if ok and p < end and not _zeros(buf, p, end):
            ok = False
        if not ok:
            return i, k
        k = kk
        s_next[s] = (seq + 1) & 0xFFFFFFFF
        s_touched[s] = 1
        dg_export[i] = secs * 1000
        dg_uptime[i] = uptime
        dg_records[i] = records
    return len(offs), k


@njit(error_model="python")
def gather(buf, offs, counts, size, out):
    """Copy counts[j] records of `size` bytes from buf[offs[j]] for every j, back to back, into out."""
    q = 0
    for j in range(len(offs)):
        n = counts[j] * size
        p = offs[j]
        out[q:q + n] = buf[p:p + n]
        q += n
    return q
