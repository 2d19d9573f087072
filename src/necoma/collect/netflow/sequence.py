"""Export sequence numbers -> records (or v9 packets) lost between exporter and collector.

v5 and IPFIX count data records (the header carries the count before this
datagram), v9 counts export packets. Streams are per exporter and engine /
source id / observation domain. UDP reorders and exporters restart, so:

- a forward jump of at most `max_jump` is a gap, counted;
- a small step back is a late datagram: it refills a gap counted earlier;
- two consecutive datagrams that both step back and follow each other are a
  restart (the exporter began again from a lower number): resynchronise;
- anything else is a resynchronisation, never a gap of billions.
"""
from __future__ import annotations

from collections import OrderedDict

_M = 1 << 32


MAX_GAPS = 32  # open gaps remembered per stream for late datagrams to refill


class _Stream:
    __slots__ = ("next", "late_end", "gaps")

    def __init__(self, nxt: int) -> None:
        self.next = nxt
        self.late_end = -1  # where the last late datagram ended: a second one right after it = restart
        self.gaps: list[list[int]] = []  # [start, end) sequence ranges counted as lost


class SequenceTracker:
    def __init__(self, max_jump: int = 1_000_000, late_window: int = 10_000, max_streams: int = 65_536) -> None:
        self.max_jump = max_jump
        self.late_window = late_window
        self.max_streams = max_streams
        self._streams: OrderedDict[tuple, _Stream] = OrderedDict()

    def observe(self, stream: tuple, seq: int, count: int) -> int:
        """Change to the stream's gap count (negative when a late datagram fills a gap)."""
        st = self._streams.get(stream)
        end = (seq + count) % _M
        if st is None:
            if len(self._streams) >= self.max_streams:
                self._streams.popitem(last=False)
            self._streams[stream] = _Stream(end)
            return 0
        d = (seq - st.next) % _M
        if d >= _M // 2:
            d -= _M
        if d == 0:
            st.next, st.late_end = end, -1
            return 0
        if 0 < d <= self.max_jump:
            st.gaps.append([st.next, st.next + d])
            del st.gaps[:-MAX_GAPS]
            st.next, st.late_end = end, -1
            return d
        if -self.late_window <= d < 0 and st.late_end != seq:
            st.late_end = end
            return -_refill(st.gaps, seq, seq + count)
        st.next, st.late_end, st.gaps = end, -1, []  # restart or wild jump: resynchronise
        return 0

    def forget(self, stream: tuple) -> None:
        """The next datagram of this stream starts afresh (its record count was unknown)."""
        self._streams.pop(stream, None)

    def __len__(self) -> int:
        return len(self._streams)


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
