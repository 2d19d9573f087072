"""Data sets that arrived before their template, held for a bounded time, count and size.

Exporters send templates only every N packets or seconds, so a collector that
starts (or restarts) mid-stream sees data first. Holding the sets briefly and
decoding them when the template comes loses nothing; what never gets its
template is counted as a template miss, per data set (its record count cannot
be known without the template).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from typing import Any

MAX_PENDING_BYTES = 16 * 1024 * 1024  # per exporter, whatever the set count


@dataclass
class PendingSet:
    received: float
    domain: tuple  # (version, observation domain)
    tid: int
    body: bytes
    context: Any  # what the decoder needs to decode it later (header meta, source)


class _PerExporter:
    __slots__ = ("entries", "index", "nbytes")

    def __init__(self) -> None:
        self.entries: dict[int, PendingSet] = {}  # insertion order = arrival order
        self.index: dict[tuple, list[int]] = {}
        self.nbytes = 0


class PendingSets:
    def __init__(self, wait_seconds: float, max_sets: int, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self.wait_seconds = wait_seconds
        self.max_sets = max_sets
        self.max_bytes = max_bytes
        self._ids = count()
        self._by_exporter: dict[str, _PerExporter] = {}

    def add(self, exporter: str, item: PendingSet) -> int:
        """Hold `item`; returns how many older sets were pushed out (template misses)."""
        if self.max_sets <= 0 or self.wait_seconds <= 0:
            return 1
        per = self._by_exporter.setdefault(exporter, _PerExporter())
        i = next(self._ids)
        per.entries[i] = item
        per.index.setdefault((item.domain, item.tid), []).append(i)
        per.nbytes += len(item.body)
        evicted = 0
        while per.entries and (len(per.entries) > self.max_sets or per.nbytes > self.max_bytes):
            self._drop(per, next(iter(per.entries)))
            evicted += 1
        return evicted

    def take(self, exporter: str, domain: tuple, tid: int) -> list[PendingSet]:
        """The held sets of this template, oldest first, removed from the buffer."""
        per = self._by_exporter.get(exporter)
        if per is None:
            return []
        ids = per.index.pop((domain, tid), [])
        out = []
        for i in ids:
            item = per.entries.pop(i)
            per.nbytes -= len(item.body)
            out.append(item)
        return out

    def expire(self, now: float) -> dict[str, int]:
        """Drop sets older than the wait; returns misses per exporter."""
        misses: dict[str, int] = {}
        limit = now - self.wait_seconds
        for exporter, per in list(self._by_exporter.items()):
            while per.entries:
                i = next(iter(per.entries))
                if per.entries[i].received > limit:
                    break
                self._drop(per, i)
                misses[exporter] = misses.get(exporter, 0) + 1
            if not per.entries:
                del self._by_exporter[exporter]
        return misses

    def count(self, exporter: str | None = None) -> int:
        if exporter is not None:
            per = self._by_exporter.get(exporter)
            return len(per.entries) if per else 0
        return sum(len(p.entries) for p in self._by_exporter.values())

    @staticmethod
    def _drop(per: _PerExporter, i: int) -> None:
        item = per.entries.pop(i)
        per.nbytes -= len(item.body)
        ids = per.index.get((item.domain, item.tid))
        if ids is not None:
            ids.remove(i)
            if not ids:
                del per.index[(item.domain, item.tid)]
