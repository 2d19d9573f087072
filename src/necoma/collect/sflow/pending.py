"""Rows decoded since the last drain, kept column-wise, and their conversion to Arrow tables.

Sampled packet headers of many datagrams are concatenated into one buffer so
that necoma.collect.packet.decode_frames runs once per drain (once per UDP
exporter, so that its rejections are counted against the exporter that sent
them), vectorized; the per-sample `flows` rows then take their addresses and
ports from its `packets` table by row index. No per-packet Python at drain.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from necoma.collect.sflow.counters import INTERFACE_COLUMNS
from necoma.collect.sflow.flow import FlowSample
from necoma.schemas import FLOWS, INTERFACES, TS

# flows columns taken from the decoded header, with their position in FlowSample.ip (the fallback)
_FROM_PACKETS = (("src_ip", 0), ("dst_ip", 1), ("protocol", 2), ("src_port", 3), ("dst_port", 4),
                 ("tcp_flags", 5))

# (UDP exporter, rejects, truncated-or-None), both necoma.collect.rejects.Rejects
RejectSink = Callable[[str, object, object], None]


class Pending:
    """Column buffers; `full()` tells the decoder to reject rather than grow without bound."""

    def __init__(self, max_samples: int, max_header_bytes: int) -> None:
        self.max_samples = max_samples
        self.max_header_bytes = max_header_bytes
        self._reset()

    def _reset(self) -> None:
        # sampled headers: one entry per flow sample that carried a decodable header
        self.buf = bytearray()
        self.h_off: list[int] = []
        self.h_cap: list[int] = []
        self.h_wire: list[int] = []
        self.h_link: list[int] = []
        self.h_src: list[str] = []  # UDP exporter, for counting the frame decoder's rejections
        # flow samples: one entry per flows row
        self.f_time: list[int] = []
        self.f_agent: list[str] = []
        self.f_sub: list[int] = []
        self.f_hdr: list[int] = []  # index into the header lists, -1 when none
        self.f_src: list[str] = []  # UDP exporter
        self.f_samples: list[FlowSample] = []
        # generic interface counters: (time_us, agent, GENERIC tuple)
        self.ifaces: list[tuple[int, str, tuple[int, ...]]] = []
        self.i_src: list[str] = []  # UDP exporter of each counter sample

    def __len__(self) -> int:
        return len(self.f_time) + len(self.i_src)

    def full(self, header_bytes: int = 0) -> bool:
        return len(self) >= self.max_samples or len(self.buf) + header_bytes > self.max_header_bytes

    def add_flow(self, time_us: int, agent: str, sub_agent: int, exporter: str, s: FlowSample) -> None:
        index = -1
        if s.linktype is not None:
            index = len(self.h_off)
            self.h_off.append(len(self.buf))
            self.buf += s.header
            self.h_cap.append(len(s.header))
            # length on the wire as a capture would report it: without the FCS the agent stripped
            self.h_wire.append(max(s.frame_length - s.stripped, len(s.header)))
            self.h_link.append(s.linktype)
            self.h_src.append(exporter)
            s.header = b""  # the bytes now live in self.buf
        self.f_time.append(time_us)
        self.f_agent.append(agent)
        self.f_sub.append(sub_agent)
        self.f_hdr.append(index)
        self.f_src.append(exporter)
        self.f_samples.append(s)

    def add_interfaces(self, time_us: int, agent: str, exporter: str, blocks: list[tuple[int, ...]]) -> None:
        self.ifaces.extend((time_us, agent, b) for b in blocks)
        self.i_src.append(exporter)

    def samples_by_exporter(self) -> dict[str, int]:
        """Pending samples per UDP exporter: what a failed drain would lose."""
        counts: dict[str, int] = {}
        for src in self.f_src + self.i_src:
            counts[src] = counts.get(src, 0) + 1
        return counts

    # --- drain -----------------------------------------------------------------------------

    def drain(self, decode_frames: Callable, on_rejects: RejectSink) -> dict[str, pa.Table]:
        tables: dict[str, pa.Table] = {}
        try:
            if self.f_time:
                packets, tos, row_of_hdr = self._packets(decode_frames, on_rejects)
                if packets is not None and packets.num_rows:
                    tables["packets"] = packets
                tables["flows"] = self._flows(packets, tos, row_of_hdr)
            if self.ifaces:
                tables["interfaces"] = self._interfaces()
        finally:
            self._reset()  # even on a bug, never keep (and re-fail on) the same rows forever
        return tables

    def _packets(self, decode_frames: Callable, on_rejects: RejectSink):
        n = len(self.h_off)
        row_of_hdr = np.full(n, -1, np.int64)
        if not n:
            return None, None, row_of_hdr
        buf = np.frombuffer(bytes(self.buf), dtype=np.uint8)
        off, cap, wire, link = (np.asarray(x, np.int64) for x in (self.h_off, self.h_cap, self.h_wire, self.h_link))
        hdr_flow = np.flatnonzero(np.asarray(self.f_hdr, np.int64) >= 0)  # flow sample of each header
        times = np.asarray(self.f_time, np.int64)[hdr_flow]
        rates = np.fromiter((self.f_samples[i].rate for i in hdr_flow), np.int64, count=n)
        agents = np.asarray(self.f_agent, dtype=object)[hdr_flow]
        sources = np.asarray(self.h_src, dtype=object)
        groups = dict.fromkeys(self.h_src)  # UDP exporters in first-seen order
        parts, tos_parts, glob_parts = [], [], []
        for src in groups:
            g = np.flatnonzero(sources == src) if len(groups) > 1 else np.arange(n)
            # The frame decoder keeps only frames with a valid IP header. Its time column
            # is fed the local frame number, which tells which frames those are; the real
            # times are put back below.
            d = decode_frames(buf, off[g], cap[g], wire[g], np.arange(len(g), dtype=np.int64), link[g],
                              exporter="", sampling_rate=rates[g], source="sflow")
            local = getattr(d, "frame_index", None)
            if local is None:
                local = d.packets.column("time").cast(pa.int64()).to_numpy()
            glob_parts.append(g[np.asarray(local, np.int64)])
            parts.append(d.packets)
            tos = getattr(d, "tos", None)
            tos_parts.append(np.asarray(tos, np.int64) if tos is not None else np.full(d.packets.num_rows, -1))
            truncated = getattr(d, "truncated", None)
            if d.rejects.total or (truncated is not None and truncated.total):
                on_rejects(src, d.rejects, truncated)
        glob = np.concatenate(glob_parts)
        order = np.argsort(glob, kind="stable")  # back to arrival order
        glob = glob[order]
        packets = pa.concat_tables(parts).take(pa.array(order))
        row_of_hdr[glob] = np.arange(len(glob))
        # time = reception time; exporter = agent address (sFlow names its agent in the datagram)
        packets = packets.set_column(0, "time", pa.array(times[glob], TS))
        packets = packets.set_column(1, "exporter", pa.array(agents[glob].tolist(), pa.string()))
        return packets, np.concatenate(tos_parts)[order], row_of_hdr

    def _flows(self, packets: pa.Table | None, tos: np.ndarray | None, row_of_hdr: np.ndarray) -> pa.Table:
        n = len(self.f_time)
        samples = self.f_samples
        hdr = np.asarray(self.f_hdr, np.int64)
        prow = np.where(hdr >= 0, row_of_hdr[np.maximum(hdr, 0)] if len(row_of_hdr) else -1, -1)
        take = pa.array(prow, mask=prow < 0)  # null index -> null value: no decoded header
        ips = [s.ip for s in samples]
        cols: dict[str, pa.Array] = {}
        for name, k in _FROM_PACKETS:
            typ = FLOWS.field(name).type
            fallback = pa.array([ip[k] if ip is not None else None for ip in ips], typ)
            if packets is not None:
                cols[name] = pc.coalesce(pc.take(packets.column(name), take).cast(typ), fallback)
            else:
                cols[name] = fallback
        ip_tos = pa.array([ip[6] if ip is not None else None for ip in ips], pa.uint8())
        if packets is not None:
            frag = pc.or_(pc.greater(packets.column("fragment_offset"), 0), packets.column("more_fragments"))
            cols["fragments"] = pc.take(frag.cast(pa.uint64()), take)
            tos_arr = pa.array(tos, pa.int64(), mask=tos < 0).cast(pa.uint8())
            cols["tos"] = pc.coalesce(pc.take(tos_arr, take), ip_tos)
        else:
            cols["fragments"] = pa.nulls(n, pa.uint64())
            cols["tos"] = ip_tos
        times = pa.array(np.asarray(self.f_time, np.int64), TS)
        # bytes: the frame length the agent reports (what sfcapd counts), else the sampled IP length
        nbytes = [s.frame_length if s.frame_length is not None else (s.ip[7] if s.ip else None) for s in samples]
        cols.update({
            "start_time": times, "end_time": times,
            "exporter": pa.array(self.f_agent, pa.string()),
            "observation_domain": pa.array(self.f_sub, pa.uint32()),
            "packets": pa.array(np.ones(n, dtype=np.uint64)),
            "bytes": pa.array(nbytes, pa.uint64()),
            "sampling_rate": pa.array([s.rate for s in samples], pa.uint32()),
            "input_if": pa.array([s.input_if for s in samples], pa.uint32()),
            "output_if": pa.array([s.output_if for s in samples], pa.uint32()),
            "src_as": pa.array([s.src_as for s in samples], pa.uint32()),
            "dst_as": pa.array([s.dst_as for s in samples], pa.uint32()),
            "source": pa.repeat(pa.scalar("sflow"), n),
        })
        return pa.table([cols[f.name].cast(f.type) for f in FLOWS], schema=FLOWS)

    def _interfaces(self) -> pa.Table:
        rows = self.ifaces
        cols = {"time": pa.array([r[0] for r in rows], TS), "exporter": pa.array([r[1] for r in rows], pa.string())}
        for name, k in INTERFACE_COLUMNS:
            cols[name] = pa.array([r[2][k] for r in rows], INTERFACES.field(name).type)
        return pa.table([cols[f.name] for f in INTERFACES], schema=INTERFACES)
