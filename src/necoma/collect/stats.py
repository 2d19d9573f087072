"""Per-exporter collection counters, shown by `necoma collect --stats` and as Prometheus metrics."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ExporterStats:
    datagrams: int = 0
    bytes: int = 0
    records: int = 0  # flow records / samples / messages decoded and stored
    rejected: Counter = field(default_factory=Counter)  # reason -> datagrams or records rejected
    # reason -> sampled headers cut mid-protocol by the agent's header length (sFlow's
    # 128 bytes end inside many DNS answers): normal, not errors; decoded as far as they go
    truncated: Counter = field(default_factory=Counter)
    template_misses: int = 0  # data records dropped because their template never came
    sequence_gaps: int = 0  # records (or datagrams, for sFlow) the exporter sent that never arrived
    last_seen: float = 0.0

    def as_dict(self) -> dict:
        return {
            "datagrams": self.datagrams, "bytes": self.bytes, "records": self.records,
            "rejected": dict(self.rejected), "truncated": dict(self.truncated), "template_misses": self.template_misses,
            "sequence_gaps": self.sequence_gaps, "last_seen": self.last_seen,
        }


@dataclass
class CollectorStats:
    """Counters of one protocol listener, keyed by exporter address."""

    protocol: str
    exporters: dict[str, ExporterStats] = field(default_factory=dict)

    def of(self, exporter: str) -> ExporterStats:
        st = self.exporters.get(exporter)
        if st is None:
            st = self.exporters[exporter] = ExporterStats()
        return st

    def as_dict(self) -> dict:
        return {exp: st.as_dict() for exp, st in self.exporters.items()}
