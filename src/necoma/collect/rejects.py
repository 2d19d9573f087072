"""Counted rejections: every bad record is counted by reason, never dropped silently."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Rejects:
    """Rejected records by reason, with where each reason was first seen."""

    by_reason: Counter = field(default_factory=Counter)
    first_seen: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, where: str = "", n: int = 1) -> None:
        if n <= 0:
            return
        self.by_reason[reason] += n
        if reason not in self.first_seen:
            self.first_seen[reason] = where

    def merge(self, other: "Rejects") -> None:
        for reason, n in other.by_reason.items():
            self.add(reason, other.first_seen.get(reason, ""), n)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def summary(self, max_reasons: int = 5) -> list[str]:
        """Most frequent reasons first, each with its count and first location."""
        lines = []
        for reason, n in self.by_reason.most_common(max_reasons):
            where = self.first_seen.get(reason)
            lines.append(f"{n} × {reason}" + (f" (first at {where})" if where else ""))
        rest = len(self.by_reason) - max_reasons
        if rest > 0:
            lines.append(f"... and {rest} more reasons")
        return lines

    def as_dict(self) -> dict:
        return {"total": self.total, "by_reason": dict(self.by_reason), "first_seen": dict(self.first_seen)}
