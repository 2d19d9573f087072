"""Export sequence numbers -> records (or v9 packets) lost between exporter and collector.

v5 and IPFIX count data records (the header carries the count before this
datagram), v9 counts export packets. Streams are per exporter and engine /
source id / observation domain. UDP reorders and exporters restart, so:

- a forward jump of at most `max_jump` is a gap, counted;
- a small step back is a late datagram: it refills a gap counted earlier;
- two consecutive datagrams that both step back and follow each other are a
  restart (the exporter began again from a lower number): resynchronise;
- anything else is a resynchronisation, never a gap of billions.

Exporters disagree on what they count, so four conventions are accepted and a
stream sticks to the one its numbers fit: the RFC's (the count before this
datagram) or the count *including* this datagram's records (softflowd 1.1 in
IPFIX mode: 24, 56, 88 for messages of 24, 32, 32 records), each counting
IPFIX options data records or not (softflowd does not). An exporter's
convention is thereby never reported as loss on every change of datagram size.
"""
from __future__ import annotations

from collections import OrderedDict

_M = 1 << 32


MAX_GAPS = 32  # open gaps remembered per stream for late datagrams to refill


class _Stream:
    __slots__ = ("prev", "prev_counts", "mode", "late_end", "gaps")

    def __init__(self, seq: int, counts: tuple[int, int]) -> None:
        self.prev = seq  # the last in-order sequence number
        self.prev_counts = counts  # its (all records, flow records only)
        self.mode = 0  # index into the conventions of `_deltas`
        self.late_end = -1  # where the last late datagram ended: a second one right after it = restart
        self.gaps: list[list[int]] = []  # [start, end) sequence ranges counted as lost


def _deltas(st: _Stream, seq: int, counts: tuple[int, int]) -> tuple[int, ...]:
    """Distance from the expected number under each convention (0 = in order)."""
    return (
        _signed(seq - st.prev - st.prev_counts[0]),  # RFC, all data records
        _signed(seq - counts[0] - st.prev),  # inclusive, all data records
        _signed(seq - st.prev - st.prev_counts[1]),  # RFC, options records not counted
        _signed(seq - counts[1] - st.prev),  # inclusive, options records not counted
    )


class SequenceTracker:
    def __init__(self, max_jump: int = 1_000_000, late_window: int = 10_000, max_streams: int = 65_536) -> None:
        self.max_jump = max_jump
        self.late_window = late_window
        self.max_streams = max_streams
        self._streams: OrderedDict[tuple, _Stream] = OrderedDict()
        self.version = 0  # bumped when a stream is added or removed (fast_path rebuilds its arrays)

    def observe(self, stream: tuple, seq: int, count: int, flow_count: int | None = None) -> int:
        """Change to the stream's gap count (negative when a late datagram fills a gap).

        `count`: records this datagram adds to the numbering; `flow_count`: the same
        without options records, where an exporter may not count them.
        """
        counts = (count, count if flow_count is None else flow_count)
        st = self._streams.get(stream)
        if st is None:
            if len(self._streams) >= self.max_streams:
                self._streams.popitem(last=False)
            self._streams[stream] = _Stream(seq, counts)
            self.version += 1
            return 0
        n = counts[st.mode >> 1]
        if st.mode & 1:
            in_order = (st.prev + n) % _M == seq
        else:
            in_order = (st.prev + st.prev_counts[st.mode >> 1]) % _M == seq
        if in_order:  # the common case, without weighing conventions
            st.prev, st.prev_counts, st.late_end = seq, counts, -1
            return 0
        deltas = _deltas(st, seq, counts)
        if deltas[st.mode] != 0 and 0 in deltas:
            st.mode = deltas.index(0)
        d = deltas[st.mode]
        n = counts[st.mode >> 1]
        start = (seq - n) % _M if st.mode & 1 else seq  # number of this datagram's first record
        if d == 0 or 0 < d <= self.max_jump:
            if d:
                st.gaps.append([start - d, start])
                del st.gaps[:-MAX_GAPS]
            st.prev, st.prev_counts, st.late_end = seq, counts, -1
            return d
        if -self.late_window <= d < 0 and st.late_end != start:
            st.late_end = (start + n) % _M
            return -_refill(st.gaps, start, start + n)
        st.prev, st.prev_counts, st.late_end, st.gaps = seq, counts, -1, []  # restart or wild jump: resync
        return 0

    def forget(self, stream: tuple) -> None:
        """The next datagram of this stream starts afresh (its record count was unknown)."""
        if self._streams.pop(stream, None) is not None:
            self.version += 1

    def streams(self) -> list[tuple[tuple, _Stream]]:
        """(stream key, state); fast_path updates `prev` of v9 streams in place."""
        return list(self._streams.items())

    def __len__(self) -> int:
        return len(self._streams)


def _signed(d: int) -> int:
    d %= _M
    return d - _M if d >= _M // 2 else d


def _refill(gaps: list[list[int]], start: int, end: int) -> int:
    """Remove [start, end) from the recorded gaps; returns how much of it was a gap."""
    filled = 0
    out = []
    for gs, ge in gaps:
        lo, hi = max(gs, start), min(ge, end)
        if lo >= hi:
            out.append([gs, ge])
            continue
        filled += hi - lo
        if gs < lo:
            out.append([gs, lo])
        if hi < ge:
            out.append([hi, ge])
    gaps[:] = out
    return filled
