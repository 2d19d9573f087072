"""sFlow v5 decoder: datagrams from switches and routers -> `packets`, `flows`, `interfaces`.

    dec = SflowDecoder()
    dec.feed(datagram, "192.0.2.1", time.time())   # never raises
    tables = dec.drain(time.time())                 # {"packets": ..., "flows": ..., "interfaces": ...}

What each row means:
- `exporter` is the **agent address** written inside the datagram, not the UDP
  source: an sFlow agent names itself, and a relay or NAT in between must not
  change whose traffic it is. Counters in `stats` are kept per UDP source (the
  `exporter` argument of `feed`), which a hostile datagram cannot multiply.
- `time` is the **reception time**: sFlow carries only the agent's uptime, no
  absolute clock, and samples leave the agent within about a second.
- every row keeps the sampler's `sampling_rate`; multiply to scale.
- `packets`: one row per flow sample with a raw packet header (decoded by
  necoma.collect.packet); `flows`: one row per flow sample (packets=1,
  bytes=frame length, addresses and ports from the header, or from a sampled
  IPv4/IPv6 record when the agent sends no header); `interfaces`: one row per
  generic interface counter block.

Hostile input is counted in `stats.of(exporter).rejected[reason]` and logged
once per (reason, exporter). A sampled header that ends inside a DNS message (the
agent copies only its first ~128 bytes) is normal: the packet row keeps the DNS
header and question when they fit, and the cut is counted in
`stats.of(exporter).truncated[reason]`, not as a rejection. A sample whose own bytes are broken is rejected
alone; its neighbours are kept whenever the sample lengths still frame them.
Pending rows are bounded: beyond the limits, samples are rejected as
`backlog_full` until the next drain.
"""
from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from collections.abc import Callable

import pyarrow as pa

from necoma.collect.sflow.counters import parse_counter_sample
from necoma.collect.sflow.flow import parse_flow_sample
from necoma.collect.sflow.pending import Pending
from necoma.collect.sflow.xdr import (
    COUNTER_SAMPLE, COUNTER_SAMPLE_EXPANDED, FLOW_SAMPLE, FLOW_SAMPLE_EXPANDED, Header, Malformed,
    read_header, split_tagged,
)
from necoma.collect.rejects import Rejects
from necoma.collect.stats import CollectorStats, ExporterStats

log = logging.getLogger(__name__)

# A forward jump of the datagram sequence larger than this is an agent restart or a
# forged number, not loss: counting it would let one datagram fake millions of gaps.
MAX_SEQUENCE_JUMP = 1 << 20
# Datagrams arriving this far behind the newest one are late (reordered), not a restart.
REORDER_WINDOW = 1024


class SflowDecoder:
    """Decoder of sFlow v5 datagrams, following necoma.collect.decoder.Decoder."""

    protocol = "sflow"

    def __init__(self, *, max_pending_samples: int = 500_000, max_pending_header_bytes: int = 64 << 20,
                 max_sequences: int = 65_536, max_logged: int = 10_000,
                 decode_frames: Callable | None = None) -> None:
        self.stats = CollectorStats(self.protocol)
        self._pending = Pending(max_pending_samples, max_pending_header_bytes)
        self._last_seq: OrderedDict[tuple[str, int], int] = OrderedDict()  # (agent, sub-agent) -> sequence
        self._max_sequences = max_sequences
        self._logged: set[tuple[str, str]] = set()
        self._max_logged = max_logged
        self._decode_frames = decode_frames  # injectable for tests; necoma.collect.packet by default

    # --- feed ------------------------------------------------------------------------------

    def feed(self, data: bytes, exporter: str, received: float) -> None:
        st = self.stats.of(exporter)
        st.datagrams += 1
        st.bytes += len(data)
        st.last_seen = max(st.last_seen, received)
        try:
            self._feed(bytes(data), exporter, int(received * 1_000_000), st)
        except Exception:  # the contract: feed never raises; a bug is counted, not fatal
            first = ("internal_error", exporter) not in self._logged
            self._reject(st, exporter, "internal_error")
            if first:
                log.exception("sflow: internal error decoding a datagram from %s", exporter)

    def _feed(self, data: bytes, exporter: str, time_us: int, st: ExporterStats) -> None:
        try:
            hdr = read_header(data)
        except Malformed as exc:
            self._reject(st, exporter, exc.reason)
            return
        self._sequence(hdr, st)
        samples, error = split_tagged(data, hdr.offset, len(data), hdr.n_samples, "sample")
        for fmt, start, end in samples:
            self._sample(data, fmt, start, end, hdr, exporter, time_us, st)
        if error:
            # the sample framing itself is broken: samples before it are kept, the rest cannot be found
            self._reject(st, exporter, error)

    def _sample(self, data: bytes, fmt: int, start: int, end: int, hdr: Header, exporter: str,
                time_us: int, st: ExporterStats) -> None:
        try:
            if fmt in (FLOW_SAMPLE, FLOW_SAMPLE_EXPANDED):
                sample = parse_flow_sample(data, start, end, fmt)
                if sample.unsupported_header:
                    # the sample is kept (a flows row), only its header cannot be decoded
                    self._reject(st, exporter, "unsupported_header_protocol")
                if self._pending.full(len(sample.header)):
                    self._reject(st, exporter, "backlog_full")
                    return
                self._pending.add_flow(time_us, hdr.agent, hdr.sub_agent, exporter, sample)
            elif fmt in (COUNTER_SAMPLE, COUNTER_SAMPLE_EXPANDED):
                blocks = parse_counter_sample(data, start, end, fmt)
                if self._pending.full():
                    self._reject(st, exporter, "backlog_full")
                    return
                self._pending.add_interfaces(time_us, hdr.agent, exporter, blocks)
            else:
                # enterprise or later sample types (e.g. discards, format 5): framed, so skippable
                self._reject(st, exporter, "unsupported_sample_format")
                return
        except Malformed as exc:
            self._reject(st, exporter, exc.reason)
            return
        except (struct.error, ValueError, IndexError):  # defence in depth: bounds are checked above
            self._reject(st, exporter, "malformed_sample")
            return
        st.records += 1

    def _sequence(self, hdr: Header, st: ExporterStats) -> None:
        """Datagram sequence numbers per (agent, sub-agent): missing numbers are exporter-side loss."""
        key = (hdr.agent, hdr.sub_agent)
        last = self._last_seq.get(key)
        if last is None:
            if len(self._last_seq) >= self._max_sequences:
                self._last_seq.popitem(last=False)  # forget the least recently seen agent
            self._last_seq[key] = hdr.sequence
            return
        self._last_seq.move_to_end(key)
        ahead = (hdr.sequence - last) & 0xFFFFFFFF
        behind = (last - hdr.sequence) & 0xFFFFFFFF
        if 0 < ahead <= MAX_SEQUENCE_JUMP:
            st.sequence_gaps += ahead - 1
            self._last_seq[key] = hdr.sequence
        elif 0 < behind <= REORDER_WINDOW:
            # a late datagram: it was counted missing when its successor came, and is not
            if st.sequence_gaps:
                st.sequence_gaps -= 1
        elif ahead:
            self._last_seq[key] = hdr.sequence  # restart or discontinuity: resynchronize
        # ahead == 0: a duplicate; nothing to count

    def _reject(self, st: ExporterStats, exporter: str, reason: str) -> None:
        st.rejected[reason] += 1
        key = (reason, exporter)
        if key not in self._logged and len(self._logged) < self._max_logged:
            self._logged.add(key)
            log.warning("sflow: rejected %s from %s (logged once; counted in stats)", reason, exporter)

    # --- drain -----------------------------------------------------------------------------

    def drain(self, now: float) -> dict[str, pa.Table]:
        lost = self._pending.samples_by_exporter()
        try:
            decode = self._decode_frames
            if decode is None:
                from necoma.collect.packet import decode_frames as decode  # shared vectorized decoder
            return self._pending.drain(decode, self._header_rejects)
        except Exception:  # a bug must not stop the listener: count what it cost, and go on
            log.exception("sflow: drain failed; %d pending samples lost", sum(lost.values()))
            for exporter, n in lost.items():
                self.stats.of(exporter).rejected["internal_error"] += n
            return {}

    def _header_rejects(self, exporter: str, rejects: Rejects, truncated: Rejects | None = None) -> None:
        """Sampled headers the frame decoder could not (fully) decode; their flows rows are kept.

        A header cut by the agent's sampled-header length in the middle of a DNS message
        is sFlow working as designed: counted in `truncated`, not as a rejection."""
        st = self.stats.of(exporter)
        if truncated is not None:
            for reason, n in truncated.by_reason.items():
                st.truncated[f"header: {reason}"] += n
        for reason, n in rejects.by_reason.items():
            st.rejected[f"header: {reason}"] += n
            key = (f"header: {reason}", exporter)
            if key not in self._logged and len(self._logged) < self._max_logged:
                self._logged.add(key)
                log.warning("sflow: sampled header from %s: %s (logged once; counted in stats)", exporter, reason)


__all__ = ["SflowDecoder"]
