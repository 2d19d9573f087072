"""`Incident`: alerts that belong together, with a category, a rating and the rating's terms."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from necoma.analyze.alert import Alert, Subject

Level3 = Literal["low", "medium", "high"]


class RatingTerm(BaseModel):
    """One additive term of the rating, with the reason in words."""

    model_config = ConfigDict(frozen=True)
    name: str
    points: float
    why: str


class Incident(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    category: str  # necoma.knowledge.taxonomy.CATEGORIES
    n6_category: str
    window_start: datetime
    window_end: datetime
    detectors: list[str]
    layers: list[str]
    subjects: list[Subject]  # unique (role, value) over the alerts, sorted
    alerts: list[Alert]
    rating: int  # 0-100
    rating_terms: list[RatingTerm]
    severity: Level3
    confidence: Level3

    @staticmethod
    def make_id(alert_ids: list[str]) -> str:
        """Stable: the same alerts always make the same incident id."""
        return "inc-" + hashlib.sha256("\n".join(sorted(alert_ids)).encode()).hexdigest()[:16]

    def subjects_with(self, *roles: str) -> list[str]:
        return [s.value for s in self.subjects if s.role in roles]

    def explain(self) -> str:
        """The rating with its terms, one per line."""
        lines = [f"rating {self.rating}/100 ({self.severity} severity, {self.confidence} confidence)"]
        lines += [f"  {t.points:+6.1f}  {t.name}: {t.why}" for t in self.rating_terms]
        return "\n".join(lines)
