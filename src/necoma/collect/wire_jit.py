"""Compiled helpers of `wire`: dotted-quad text straight into an Arrow buffer.

One pass writing at most 15 bytes per address beats both numpy's table-word
gather and formatting distinct addresses then `take` (measured on 1 M DNS
packets: 0.28 s -> 0.02 s for the four address columns).
"""
from __future__ import annotations

import numpy as np

from necoma.collect._jit import njit


@njit
def ipv4_text_buffers(addr):
    """(int32 offsets, utf-8 bytes) of the dotted quads of uint32 `addr`."""
    n = len(addr)
    offsets = np.empty(n + 1, np.int32)
    out = np.empty(15 * n, np.uint8)
    o = 0
    offsets[0] = 0
    for i in range(n):
        a = np.int64(addr[i])
        for shift in (24, 16, 8, 0):
            v = (a >> shift) & 0xFF
            if v >= 100:
                out[o] = 48 + v // 100
                o += 1
            if v >= 10:
                out[o] = 48 + v // 10 % 10
                o += 1
            out[o] = 48 + v % 10
            o += 1
            if shift:
                out[o] = 46
                o += 1
        offsets[i + 1] = o
    return offsets, out[:o]


@njit
def pcap_records(data, pos, limit, big_endian):
    """Walk classic pcap record headers from `pos` while whole records fit.

    -> (frame offsets, captured lengths, wire lengths, seconds, sub-second ticks,
    position after the last whole record, captured length claimed there or -1).
    A record claiming more than `limit` bytes ends the walk (the caller reports it)."""
    n = len(data)
    cap = max(0, (n - pos) // 16)  # every record has a 16-byte header: no growing (see dns_fast)
    off, incl_a, orig_a = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
    sec_a, frac_a = np.empty(cap, np.int64), np.empty(cap, np.int64)
    k, claimed = 0, np.int64(-1)
    while pos + 16 <= n:
        incl = _u32(data, pos + 8, big_endian)
        if incl > limit or pos + 16 + incl > n:
            claimed = incl
            break
        off[k], incl_a[k], orig_a[k] = pos + 16, incl, _u32(data, pos + 12, big_endian)
        sec_a[k], frac_a[k] = _u32(data, pos, big_endian), _u32(data, pos + 4, big_endian)
        k += 1
        pos += 16 + incl
    return off[:k], incl_a[:k], orig_a[:k], sec_a[:k], frac_a[:k], pos, claimed


@njit
def _u32(data, p, big_endian):
    if big_endian:
        return (np.int64(data[p]) << 24) | (np.int64(data[p + 1]) << 16) | (np.int64(data[p + 2]) << 8) | data[p + 3]
    return (np.int64(data[p + 3]) << 24) | (np.int64(data[p + 2]) << 16) | (np.int64(data[p + 1]) << 8) | data[p]
