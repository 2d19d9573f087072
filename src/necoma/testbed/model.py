"""The scenario model: what the generator parts fill and every writer renders.

One model, many renderings: a flow added here appears in the NetFlow v9 or
IPFIX export of the router that sees it *and* as sampled raw headers in the
sFlow export; a DNS transaction appears in the resolver's pcap or query log.
That is what keeps the layers of a scenario consistent with each other and
with `truth.json`.

Times are float seconds since the epoch (UTC). Addresses are text.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np

# Payload kinds: tell the sFlow header builder what the first bytes after the
# L4 header look like (NTP mode, DNS message, QUIC, ...).
APP_GENERIC = 0
APP_DNS_Q = 1
APP_DNS_R = 2
APP_NTP_CLIENT = 3  # mode 3
APP_NTP_SERVER = 4  # mode 4
APP_NTP_MONLIST_REQ = 5  # mode 7, request 42
APP_NTP_MONLIST_RESP = 6
APP_QUIC = 7
APP_TLS = 8
APP_SMTP = 9

# Fragment kinds of a flow's packets.
FRAG_NONE = 0
FRAG_FIRST = 1  # offset 0, MF set: carries the UDP header
FRAG_LATER = 2  # offset > 0: no L4 header; routers export these with ports 0

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TCP_SESSION = TCP_FIN | TCP_SYN | TCP_PSH | TCP_ACK

_FLOW_COLUMNS = {
    "start": np.float64, "end": np.float64, "sport": np.uint16, "dport": np.uint16, "proto": np.uint8,
    "packets": np.int64, "bytes": np.int64, "flags": np.uint8, "tos": np.uint8, "app": np.uint8, "frag": np.uint8,
}


class Flows:
    """Unidirectional flows (one record per direction, as NetFlow sees them), built column-wise."""

    def __init__(self) -> None:
        self._num: dict[str, list[np.ndarray]] = {k: [] for k in _FLOW_COLUMNS}
        self._src: list[np.ndarray] = []
        self._dst: list[np.ndarray] = []
        self._label: list[np.ndarray] = []
        self._rows: list[tuple] = []  # single flows, added one at a time (attacks): far cheaper than arrays

    _ORDER = ("start", "end", "src", "dst", "sport", "dport", "proto", "packets", "bytes", "flags", "tos", "app",
              "frag", "label")

    def add(self, *, start, end, src, dst, sport, dport, proto, packets, bytes, flags=0, tos=0,
            app=APP_GENERIC, frag=FRAG_NONE, label: str = "background") -> None:
        """Add one flow or many (any argument may be an array; scalars broadcast)."""
        if np.ndim(start) == 0 and np.ndim(src) == 0 and np.ndim(dst) == 0 and np.ndim(packets) == 0 \
                and np.ndim(end) == 0 and np.ndim(sport) == 0 and np.ndim(dport) == 0 and np.ndim(bytes) == 0:
            self._rows.append((start, end, src, dst, sport, dport, proto, packets, bytes, flags, tos, app, frag, label))
            return
        n = max(np.size(x) for x in (start, end, src, dst, sport, dport, packets, bytes))
        cols = dict(start=start, end=end, sport=sport, dport=dport, proto=proto, packets=packets, bytes=bytes,
                    flags=flags, tos=tos, app=app, frag=frag)
        for k, v in cols.items():
            self._num[k].append(np.broadcast_to(np.asarray(v, dtype=_FLOW_COLUMNS[k]), (n,)).copy())
        self._src.append(np.broadcast_to(np.asarray(src, dtype=object), (n,)).copy())
        self._dst.append(np.broadcast_to(np.asarray(dst, dtype=object), (n,)).copy())
        self._label.append(np.full(n, label, dtype=object))

    def columns(self) -> dict[str, np.ndarray]:
        """All flows, sorted by start time (stable, so equal seeds give equal order)."""
        if self._rows:
            cols = list(zip(*self._rows))
            self._rows = []
            row = dict(zip(self._ORDER, cols))
            self.add(**{k: np.asarray(v, dtype=object if k in ("src", "dst", "label") else _FLOW_COLUMNS[k])
                        for k, v in row.items() if k != "label"}, label="x")
            self._label[-1] = np.asarray(row["label"], dtype=object)
        if not self._src:
            out = {k: np.zeros(0, dtype=t) for k, t in _FLOW_COLUMNS.items()}
            out.update(src=np.zeros(0, dtype=object), dst=np.zeros(0, dtype=object), label=np.zeros(0, dtype=object))
            return out
        out = {k: np.concatenate(v) for k, v in self._num.items()}
        out["src"] = np.concatenate(self._src)
        out["dst"] = np.concatenate(self._dst)
        out["label"] = np.concatenate(self._label)
        order = np.argsort(out["start"], kind="stable")
        return {k: v[order] for k, v in out.items()}


@dataclass
class DnsAnswer:
    rtype: int  # 1 A, 28 AAAA, 5 CNAME, 15 MX, 16 TXT
    ttl: int
    data: str


@dataclass
class DnsTxn:
    """One client query and the resolver's response."""

    time: float
    client: str
    client_port: int
    server: str
    txid: int
    qname: str
    qtype: int
    rcode: int  # 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED
    answers: list[DnsAnswer] = field(default_factory=list)
    latency: float = 0.001
    label: str = "background"


@dataclass
class SyslogMsg:
    time: float
    line: str  # exactly as sent on the wire, without a trailing newline


@dataclass
class FeedUrl:
    time: float
    url: str
    kind: str  # phishing | spam
    target: str = ""


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from text parts: each generator part gets its own stream, so adding one never shifts another."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass
class Scenario:
    """Everything a scenario holds before it is written out."""

    name: str
    seed: int
    scale: float
    day: date
    history_hours: int = 6  # background-only hours before the day, so baselines and "seen before" rules have history
    flows: Flows = field(default_factory=Flows)
    dns_pcap: list[DnsTxn] = field(default_factory=list)  # resolver A, captured
    dns_log: list[DnsTxn] = field(default_factory=list)  # resolver B, BIND query log
    syslog: list[SyslogMsg] = field(default_factory=list)
    feeds: list[FeedUrl] = field(default_factory=list)
    open_resolvers: list[str] = field(default_factory=list)
    attacks: list[dict] = field(default_factory=list)
    benign: dict[str, list[str]] = field(default_factory=dict)
    used_hosts: set[str] = field(default_factory=set)

    @property
    def day_start(self) -> float:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=timezone.utc).timestamp()

    @property
    def t0(self) -> float:
        """Start of the data: the history hours before the day."""
        return self.day_start - self.history_hours * 3600.0

    @property
    def t1(self) -> float:
        return self.day_start + 86400.0

    def rng(self, *parts: object) -> np.random.Generator:
        return np.random.default_rng(stable_seed(self.seed, *parts))

    def at(self, hours: float) -> float:
        """Epoch seconds at `hours` after midnight of the scenario day."""
        return self.day_start + hours * 3600.0

    def take(self, pool: list[str], n: int, rng: np.random.Generator) -> list[str]:
        """n distinct hosts from `pool` that no other attack of this scenario uses yet."""
        free = [h for h in pool if h not in self.used_hosts]
        if len(free) < n:
            raise ValueError(f"address pool exhausted: need {n}, {len(free)} free")
        picked = [free[i] for i in sorted(rng.choice(len(free), size=n, replace=False))]
        self.used_hosts.update(picked)
        return picked
