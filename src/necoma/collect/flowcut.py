"""Compiled flow cutting: the rule of `FlowAggregator._flows_numpy`, one pass per key.

Rows (packets, and open flows carried from the previous cut) are grouped by their
exact key in a hash table instead of sorted by a hash: each key's rows are then
ordered by start time (stable, so ties keep arrival order; usually they already
are in order and nothing moves), and walked once. A new flow starts at a row whose
start is more than `idle` after the previous row's end, or `active` or more after
the flow's first row. The flow keeps its first row's fields, the latest end,
the sums of packets, bytes and fragments and the OR of the TCP flags.

Flows come out grouped by key in order of each key's first row, where the numpy
reference emits them in hash order; the set of flows is the same, and
`tests/test_pcap_import_fastpaths.py` checks it on real captures.
"""
from __future__ import annotations

import numpy as np

from necoma.collect._jit import njit
from necoma.collect.flowagg import BYTES, FLAGS, FRAGS, K0, PACKETS, PP, T_FIRST, T_LAST
EMPTY = np.int64(-1)


@njit
def _same_key(rows, a, b):
    for c in range(K0, PP + 1):
        if rows[a, c] != rows[b, c]:
            return False
    return True


@njit
def _group(rows):
    """Group id per row (by first appearance) and the number of groups."""
    n = len(rows)
    size = 1
    while size < 2 * n:
        size *= 2
    table = np.full(size, EMPTY)  # slot -> a row holding that key
    gid_of_slot = np.empty(size, np.int64)
    gid = np.empty(n, np.int64)
    groups = 0
    mask = np.uint64(size - 1)
    for r in range(n):
        h = np.uint64(0)
        for c in range(K0, PP + 1):
            h = (h ^ rows[r, c]) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
        s = np.int64(h & mask)
        while True:
            other = table[s]
            if other == EMPTY:
                table[s], gid_of_slot[s], gid[r] = r, groups, groups
                groups += 1
                break
            if _same_key(rows, other, r):
                gid[r] = gid_of_slot[s]
                break
            s = (s + 1) & (size - 1)
    return gid, groups


@njit
def cut_flows(rows, idle_us, active_us):
    """(m, 12) uint64 flow rows from (n, 12) uint64 packet/flow rows (see module doc)."""
    n = len(rows)
    out = np.empty((n, 12), np.uint64)
    if n == 0:
        return out
    gid, groups = _group(rows)
    # rows of each group, in arrival order (counting sort)
    start = np.zeros(groups + 1, np.int64)
    for r in range(n):
        start[gid[r] + 1] += 1
    for g in range(groups):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for r in range(n):
        order[fill[gid[r]]] = r
        fill[gid[r]] += 1
    m = 0
    for g in range(groups):
        lo, hi = start[g], start[g + 1]
        members = order[lo:hi]
        for j in range(1, hi - lo):  # out of time order? then a stable sort by start time
            if np.int64(rows[members[j], T_FIRST]) < np.int64(rows[members[j - 1], T_FIRST]):
                t = np.empty(hi - lo, np.int64)
                for q in range(hi - lo):
                    t[q] = np.int64(rows[members[q], T_FIRST])
                members = members[np.argsort(t, kind="mergesort")]
                break
        head, prev = -1, -1
        for r in members:
            t_first, t_last = np.int64(rows[r, T_FIRST]), np.int64(rows[r, T_LAST])
            if head < 0 or t_first - np.int64(rows[prev, T_LAST]) > idle_us \
                    or t_first - np.int64(rows[head, T_FIRST]) >= active_us:
                out[m, :] = rows[r, :]
                m += 1
                head = r
            else:
                f = m - 1
                if t_last > np.int64(out[f, T_LAST]):
                    out[f, T_LAST] = rows[r, T_LAST]
                out[f, PACKETS] += rows[r, PACKETS]
                out[f, BYTES] += rows[r, BYTES]
                out[f, FRAGS] += rows[r, FRAGS]
                out[f, FLAGS] |= rows[r, FLAGS]
            prev = r
    return out[:m]


@njit
def split_done(flow, now, idle_us, active_us, final):
    """(finished flows column by column (12, k), open flows as rows (m - k, 12)).

    A flow is finished when idle for longer than the timeout or past the active
    timeout at `now` (the latest time seen), or at the end (`final`). Columns make
    each field of the flow table one contiguous array."""
    m = len(flow)
    done = np.empty(m, np.bool_)
    k = 0
    for f in range(m):
        done[f] = final or np.int64(flow[f, T_LAST]) + idle_us < now or np.int64(flow[f, T_FIRST]) + active_us <= now
        k += done[f]
    cols, rows = np.empty((12, k), np.uint64), np.empty((m - k, 12), np.uint64)
    a = b = 0
    for f in range(m):
        if done[f]:
            for c in range(12):
                cols[c, a] = flow[f, c]
            a += 1
        else:
            rows[b, :] = flow[f, :]
            b += 1
    return cols, rows
