"""`necoma testbed replay DIR`: send a scenario to collectors as real UDP, keeping its rhythm.

Datagrams of every file (NetFlow v9/IPFIX, sFlow, syslog lines) are merged
in time order and sent from one UDP socket per file (so each exporter keeps
its own source port), at `speed` times the recorded pace: speed 60 plays an
hour in a minute. `speed=None` ("max") sends as fast as `max_rate` allows;
the cap exists because a collector's socket buffer overflows silently when
a sender on the same host does not pace itself at all.
"""
from __future__ import annotations

import heapq
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from necoma.testbed.truth import load_truth
from necoma.testbed.writers.container import read_datagrams
from necoma.testbed.writers.text import read_syslog

DEFAULT_MAX_RATE = 20_000.0  # datagrams per second when replaying at "max" speed


def parse_target(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT (or [v6]:PORT) with a port in 1-65535")
    return host.strip("[]"), int(port)


@dataclass
class ReplayStats:
    sent: dict[str, int] = field(default_factory=dict)  # file -> datagrams sent
    bytes: int = 0
    first: float = 0.0  # scenario time of the first datagram sent
    last: float = 0.0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def _streams(directory: Path, targets: dict[str, tuple[str, int]], year: int) -> list[tuple[str, str, Iterator]]:
    """(label, protocol, iterator of (time, bytes)) for each file that has a target."""
    out = []
    for protocol, sub in (("netflow", "netflow"), ("sflow", "sflow")):
        if protocol in targets:
            for path in sorted((directory / sub).glob("*.bin")):
                _, items = read_datagrams(path)
                out.append((f"{sub}/{path.name}", protocol, items))
    if "syslog" in targets and (directory / "syslog.log").is_file():
        out.append(("syslog.log", "syslog", iter(read_syslog(directory / "syslog.log", year))))
    return out


def replay(directory: Path, targets: dict[str, tuple[str, int]], *, speed: float | None = 1.0,
           max_rate: float = DEFAULT_MAX_RATE, since: float | None = None, until: float | None = None,
           progress: Callable[[ReplayStats], None] | None = None) -> ReplayStats:
    """Send the scenario; `targets` maps "netflow" / "sflow" / "syslog" to (host, port).

    `since`/`until` (epoch seconds) replay only part of the day.
    """
    directory = Path(directory)
    unknown = set(targets) - {"netflow", "sflow", "syslog"}
    if unknown:
        raise ValueError(f"unknown replay targets {sorted(unknown)}")
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    truth = load_truth(directory)
    streams = _streams(directory, targets, int(truth["day"][:4]))
    socks: dict[str, socket.socket] = {}
    addrs: dict[str, tuple] = {}
    for label, protocol, _ in streams:
        host, port = targets[protocol]
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        socks[label] = socket.socket(info[0], socket.SOCK_DGRAM)
        addrs[label] = info[4]
    def tagged(label: str, items: Iterator) -> Iterator[tuple[float, str, bytes]]:
        for t, data in items:
            yield t, label, data

    merged = heapq.merge(*(tagged(label, items) for label, _, items in streams), key=lambda x: (x[0], x[1]))
    stats = ReplayStats(sent={label: 0 for label, _, _ in streams})
    began = time.monotonic()
    origin: float | None = None
    next_report = began + 1.0
    min_gap = 1.0 / max_rate if max_rate > 0 else 0.0
    last_send = 0.0
    try:
        for t, label, data in merged:
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                break
            if origin is None:
                origin, stats.first = t, t
            due = began + (t - origin) / speed if speed is not None else last_send + min_gap
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            socks[label].sendto(data, addrs[label])
            last_send = time.monotonic()
            stats.sent[label] += 1
            stats.bytes += len(data)
            stats.last = t
            if progress and last_send >= next_report:
                stats.seconds = last_send - began
                progress(stats)
                next_report = last_send + 1.0
    finally:
        for s in socks.values():
            s.close()
    stats.seconds = time.monotonic() - began
    return stats
