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


class SequenceTracker:
    def __init__(self, max_jump: int = 1_000_000, late_window: int = 10_000, max_streams: int = 65_536) -> None:
        self.max_jump = max_jump
        self.late_window = late_window
        self.max_streams = max_streams
        # stream -> [next expected, end of the last late datagram or -1, gaps still refillable]
        self._streams: OrderedDict[tuple, list[int]] = OrderedDict()

    def observe(self, stream: tuple, seq: int, count: int) -> int:
        """Change to the stream's gap count (negative when a late datagram fills a gap)."""
        st = self._streams.get(stream)
        if st is None:
            if len(self._streams) >= self.max_streams:
                self._streams.popitem(last=False)
            self._streams[stream] = [(seq + count) % _M, -1, 0]
            return 0
        d = (seq - st[0]) % _M
        if d >= _M // 2:
            d -= _M
        if d == 0:
            st[0], st[1] = (seq + count) % _M, -1
            return 0
        if 0 < d <= self.max_jump:
            st[0], st[1] = (seq + count) % _M, -1
            st[2] = min(st[2] + d, self.max_jump)
            return d
        if -self.late_window <= d < 0 and st[1] != seq:
            st[1] = (seq + count) % _M
            refill = min(count, st[2])
            st[2] -= refill
            return -refill
        st[0], st[1], st[2] = (seq + count) % _M, -1, 0  # restart or wild jump
        return 0

    def forget(self, stream: tuple) -> None:
        """The next datagram of this stream starts afresh (its record count was unknown)."""
        self._streams.pop(stream, None)

    def __len__(self) -> int:
        return len(self._streams)
