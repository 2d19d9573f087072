"""NetflowDecoder: NetFlow v5, v9 and IPFIX datagrams -> `flows` rows (the Decoder contract).

Hand-written rather than the `netflow` PyPI package: that one decodes record
by record in Python at ~0.2 M records/s (v9; 58 k/s IPFIX, measured here);
templates compiled to numpy dtypes decode whole batches at once (see
bench/bench_netflow_decode.py).

Accounting: every fed datagram ends as exactly one of `datagram_outcomes[exporter]`
"decoded" (its header was usable; problems inside it are counted in
`stats.of(exporter).rejected` while the rest decodes) or "rejected" (nothing in
it could be used).
"""
from __future__ import annotations

import logging
import struct
from collections import Counter, OrderedDict

import pyarrow as pa

from necoma.collect.netflow import fields as F
from necoma.collect.netflow.fast_path import FastV9
from necoma.collect.netflow.pending import PendingSet, PendingSets
from necoma.collect.netflow.records import UPTIME_UNKNOWN, Batches, OptionState
from necoma.collect.netflow.sequence import SequenceTracker
from necoma.collect.netflow.templates import TemplateCache
from necoma.collect.netflow.v5 import V5_TEMPLATE, parse_v5
from necoma.collect.netflow.v9_ipfix import (
    Header, TemplateRecord, parse_header, parse_options_records, parse_template_set, sampling_rate,
)
from necoma.collect.stats import CollectorStats, ExporterStats

log = logging.getLogger("necoma.collect.netflow")

_SET_HEADER = struct.Struct(">HH")  # set id, set length (RFC 3954 §5.1 FlowSet, RFC 7011 §3.3.2)
MAX_LOGGED = 10_000  # (reason, exporter) pairs remembered for log-once
MAX_OPTION_DOMAINS = 65_536  # (exporter, domain) option states kept
MAX_OPTION_ENTRIES = 4_096  # per-interface / per-sampler entries per domain


class NetflowDecoder:
    protocol = "netflow"

    def __init__(self, template_wait_seconds: float = 30.0, max_pending_datagrams: int = 10_000,
                 max_templates_per_exporter: int = 4_096, background_decode: bool = False) -> None:
        self.stats = CollectorStats("netflow")
        self.templates = TemplateCache(max_templates_per_exporter)
        self.pending = PendingSets(template_wait_seconds, max_pending_datagrams)
        self.sequences = SequenceTracker()
        self.datagram_outcomes: dict[str, Counter] = {}
        self._options: OrderedDict[tuple[str, int], OptionState] = OrderedDict()
        self._batches = Batches(background_decode)
        self.background = background_decode  # drain(now, wait=False) returns only finished decodes
        self._logged: set[tuple[str, str]] = set()
        self._last_expire = 0.0
        self._compiled: dict = {}  # raw template definition -> compiled Template (see parse_template_set)
        self.options_version = 0  # bumped when an options state is created or its last set changes (fast_path)
        self._fast = FastV9(self)

    @classmethod
    def from_settings(cls, collect) -> "NetflowDecoder":  # necoma.config.CollectSettings
        return cls(collect.template_wait_seconds, collect.max_pending_datagrams)

    # -- the Decoder contract --------------------------------------------------
    def feed(self, data: bytes, exporter: str, received: float) -> None:
        st = self.stats.of(exporter)
        st.datagrams += 1
        st.bytes += len(data)
        st.last_seen = max(st.last_seen, received)
        try:
            ok = self._feed(data if type(data) is bytes else bytes(data), exporter, received, st)
        except Exception:  # a decoder bug must cost one datagram, never the collector
            if ("internal_error", exporter) not in self._logged:
                log.exception("netflow: internal error decoding a datagram from %s", exporter)
            self._reject(exporter, st, "internal_error")
            ok = False
        self.outcome(exporter, "decoded" if ok else "rejected")
        if received - self._last_expire >= 1.0:
            self._expire(received)

    def feed_many(self, buf, offs, lens, peers: list[str], received: float) -> None:
        """Datagram i is buf[offs[i]:offs[i] + lens[i]] (numpy uint8 / int64 arrays), from peers[i].

        Same result as `feed` on each in turn; steady-state NetFlow v9 goes through
        one compiled walk (fast_path.py). `buf` may be reused once this returns.
        """
        self._fast.feed_many(buf, offs, lens, peers, received)

    def outcome(self, exporter: str, what: str, n: int = 1) -> None:
        outcomes = self.datagram_outcomes.get(exporter)
        if outcomes is None:
            outcomes = self.datagram_outcomes[exporter] = Counter()
        outcomes[what] += n

    def drain(self, now: float, wait: bool = True) -> dict[str, pa.Table]:
        self._expire(now)
        tables, failed = self._batches.flush(wait)
        for exporter, n in failed:
            self._reject(exporter, self.stats.of(exporter), "internal_error", n)
        return {"flows": pa.concat_tables(tables)} if tables else {}

    # -- extras for the listener and tests -------------------------------------
    def interface_names(self) -> dict[tuple[str, int, int], str]:
        """(exporter, domain, ifIndex) -> name, from options records (IE 82)."""
        return {(e, d[1], i): n for (e, d), o in self._options.items() for i, n in o.if_names.items()}

    # -- dispatch ----------------------------------------------------------------
    def _feed(self, data: bytes, exporter: str, received: float, st: ExporterStats) -> bool:
        if len(data) < 2:
            self._reject(exporter, st, "short_datagram")
            return False
        version = (data[0] << 8) | data[1]
        if version == 5:
            return self._v5(data, exporter, st)
        if version in (9, 10):
            return self._v9_ipfix(data, exporter, received, st)
        self._reject(exporter, st, "bad_version")
        return False

    def _v5(self, data: bytes, exporter: str, st: ExporterStats) -> bool:
        h, body, n, problem = parse_v5(data)
        if problem is not None:
            self._reject(exporter, st, problem, 1 if h is None or n == 0 else h.count - n)
        if h is None or n == 0:
            return False
        self._gap(st, self.sequences.observe((exporter, 5, h.domain), h.sequence, h.count))
        self._batches.add(V5_TEMPLATE, exporter, h.domain, "netflow5", None, body, n,
                          (h.export_ms, h.uptime_ms, h.sampling_rate))
        st.records += n
        return True

    def _v9_ipfix(self, data: bytes, exporter: str, received: float, st: ExporterStats) -> bool:
        h, problem = parse_header(data)
        if problem is not None:
            self._reject(exporter, st, problem)
        if h is None:
            return False
        ipfix = h.ipfix
        source = "ipfix" if ipfix else "netflow9"
        problems: list[str] = []
        records, flows, unknown = 0, 0, False
        tset, oset = (2, 3) if ipfix else (0, 1)
        # The set walk is inline (no generator, no per-set objects): it runs for every datagram.
        pos, end = (16 if ipfix else 20), h.end
        while end - pos >= 4:
            set_id, length = _SET_HEADER.unpack_from(data, pos)
            if length < 4:
                if set_id or length or data[pos:end].strip(b"\0"):  # else: zero padding after the last set
                    problems.append("bad_set_length")
                break
            nxt = pos + length
            if nxt > end:
                problems.append("set_length_overflow")
                break
            if set_id >= 256:
                got = self._data_set(exporter, h, source, set_id, data[pos + 4:nxt], received, st, problems)
                if got is None:
                    unknown = True
                else:
                    records += got[0]
                    flows += 0 if got[1] else got[0]
            elif set_id == tset or set_id == oset:
                opt = set_id == oset
                for rec in parse_template_set(data, pos + 4, nxt, ipfix, opt, problems, self._compiled):
                    self._template(exporter, h, rec, opt, st, problems)
            else:
                problems.append("reserved_set_id")
            pos = nxt
        else:
            if pos < end and data[pos:end].strip(b"\0"):
                problems.append("trailing_bytes")
        for p in problems:
            self._reject(exporter, st, p)
        stream = (exporter, 10 if ipfix else 9, h.domain)
        if not ipfix:  # v9 counts export packets
            self._gap(st, self.sequences.observe(stream, h.sequence, 1))
        elif unknown:  # IPFIX counts data records: unknown without every template
            self.sequences.forget(stream)
        else:
            self._gap(st, self.sequences.observe(stream, h.sequence, records, flows))
        return True

    # -- sets ----------------------------------------------------------------------
    def _template(self, exporter: str, h: Header, rec: TemplateRecord, options: bool, st: ExporterStats,
                  problems: list[str]) -> None:
        if rec.template is None:  # IPFIX withdrawal (RFC 7011 §8.1)
            if rec.tid == (3 if options else 2):
                self.templates.withdraw_all(exporter, h.key, options)
            else:
                self.templates.withdraw(exporter, h.key, rec.tid)
            return
        tpl, accepted = self.templates.put(exporter, h.key, rec.template)
        if not accepted:
            problems.append("template_cap")
            return
        for item in self.pending.take(exporter, h.key, rec.tid):
            held_h, source = item.context
            self._data_set(exporter, held_h, source, rec.tid, item.body, item.received, st, problems)

    def _data_set(self, exporter: str, h: Header, source: str, tid: int, body: bytes, received: float,
                  st: ExporterStats, problems: list[str]) -> tuple[int, bool] | None:
        """(records in the set, whether they are options records); None while the template is unknown."""
        tpl = self.templates.get(exporter, h.key, tid)
        if tpl is None:
            st.template_misses += self.pending.add(exporter, PendingSet(received, h.key, tid, body, (h, source)))
            return None
        opts = self._options_state(exporter, h.key)
        if tpl.is_options:
            recs, clean = parse_options_records(tpl, body, h.ipfix)
            self._apply_options(opts, recs)
            if not clean:
                problems.append("options_record_truncated")
            # Re-applying the same records changes nothing: the fast path may skip an identical re-send.
            last = (tid, bytes(body)) if clean and not h.ipfix else None
            if last != opts.last_set:
                opts.last_set = last
                self.options_version += 1
            return len(recs), True
        if tpl.variable:
            packed, n, clean = tpl.repack(body)
        else:
            size = tpl.record_length
            n = len(body) // size
            if n * size == len(body):
                packed, clean = body, True
            else:  # what is left must be zero padding
                packed, clean = body[:n * size], not body[n * size:].strip(b"\0")
        if not clean:
            problems.append("data_record_truncated")
        if h.ipfix:
            # only the low 32 bits matter (IE 21/22 are 32-bit ms), and a hostile init time must not overflow
            uptime = UPTIME_UNKNOWN if opts.init_ms is None else (h.export_ms - opts.init_ms) % (1 << 32)
        else:
            uptime = h.uptime_ms
        self._batches.add(tpl, exporter, h.domain, source, opts, packed, n, (h.export_ms, uptime, opts.rate))
        st.records += n
        return n, False

    def _apply_options(self, opts: OptionState, recs: list) -> None:
        for r in recs:
            if F.SYSTEM_INIT_MS_IE in r.values:
                opts.init_ms = r.values[F.SYSTEM_INIT_MS_IE]
            rate = sampling_rate(r.values)
            if rate:
                if r.sampler is not None:
                    _put(opts.rate_by_sampler, r.sampler, rate)
                elif r.interface is not None:
                    _put(opts.rate_by_if, r.interface, rate)
                if r.sampler is None and r.interface is None:
                    opts.rate, opts.rate_is_system = rate, True
                elif not opts.rate_is_system:  # one sampler/interface announced: best default for the rest
                    opts.rate = rate
            if r.if_name is not None and r.interface is not None:
                _put(opts.if_names, r.interface, r.if_name[:256])

    # -- state and bookkeeping -------------------------------------------------------
    def _options_state(self, exporter: str, domain: tuple[int, int]) -> OptionState:
        key = (exporter, domain)
        o = self._options.get(key)
        if o is None:
            if len(self._options) >= MAX_OPTION_DOMAINS:
                self._options.popitem(last=False)
            o = self._options[key] = OptionState()
            self.options_version += 1
        return o

    def _expire(self, now: float) -> None:
        self._last_expire = now
        for exporter, n in self.pending.expire(now).items():
            self.stats.of(exporter).template_misses += n

    @staticmethod
    def _gap(st: ExporterStats, delta: int) -> None:
        st.sequence_gaps = max(0, st.sequence_gaps + delta)

    def _reject(self, exporter: str, st: ExporterStats, reason: str, n: int = 1) -> None:
        st.rejected[reason] += n
        key = (reason, exporter)
        if key not in self._logged and len(self._logged) < MAX_LOGGED:
            self._logged.add(key)
            log.warning("netflow: %s from %s (counted; further ones from this exporter are not logged)",
                        reason, exporter)


def _put(table: dict, key: int, value) -> None:
    if key in table or len(table) < MAX_OPTION_ENTRIES:
        table[key] = value
