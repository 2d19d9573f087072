"""`Alert`: one detector's finding, the record every later stage consumes.

An alert names a time window, the subjects involved with their role
(victim, amplifier, bot, ...), a score in [0, 1] and a confidence, the
metrics that justify it (already scaled by the sampling rate), and the
evidence: SQL over the lake, in necoma's portable dialect, that returns the
rows behind the finding (`necoma alerts show ID` runs it).

The id is a hash of the content (detector, window, subjects, score,
confidence, metrics), so running a detector twice over the same data gives
the same alerts with the same ids, on any engine. Floats are rounded to
6 significant digits before hashing so that engines summing in a different
order still agree.
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ROLES = (
    "victim",  # receives the attack traffic
    "amplifier",  # reflects/amplifies traffic towards a victim
    "bot",  # an infected host
    "scanner",  # probes many destinations
    "cnc",  # command-and-control address
    "domain",  # a DNS name involved
    "url",  # a URL involved
    "attacker",  # originates the attack
    "host",  # a host involved in a pattern without a more specific role
    "source",  # a source (prefix or host) of unusual traffic
    "destination",  # a destination (prefix or host) of unusual traffic
)
Role = Literal[
    "victim", "amplifier", "bot", "scanner", "cnc", "domain", "url", "attacker", "host", "source", "destination"
]
Confidence = Literal["low", "medium", "high"]


def round_sig(x: float, digits: int = 6) -> float:
    """Round to `digits` significant digits (engines may sum floats in a different order)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class Subject(BaseModel):
    """One entity named by an alert, with its role and optional enrichment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    value: str  # an address, prefix (CIDR), domain name or URL
    weight: float | None = None  # this subject's share of the finding (bytes, degree, ...), detector-defined
    country: str | None = None  # ISO country code from GeoIP, when enrichment is configured
    asn: int | None = None
    as_org: str | None = None

    @field_validator("weight")
    @classmethod
    def _round(cls, v: float | None) -> float | None:
        return None if v is None else round_sig(float(v))


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: str
    window_start: datetime
    window_end: datetime
    subjects: list[Subject]
    score: float = Field(ge=0.0, le=1.0)
    confidence: Confidence
    summary: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    evidence: str = ""
    created: datetime | None = None  # when it was raised; not part of the id
    id: str = ""

    @field_validator("window_start", "window_end", "created")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _utc(v)

    @field_validator("score")
    @classmethod
    def _score(cls, v: float) -> float:
        return round_sig(float(v))

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: dict[str, float]) -> dict[str, float]:
        return {k: round_sig(float(v[k])) for k in sorted(v)}

    def model_post_init(self, _ctx) -> None:
        self.subjects = sorted(self.subjects, key=lambda s: (s.role, s.value))
        if not self.id:
            self.id = self.content_id()

    def content_id(self) -> str:
        content = {
            "detector": self.detector,
            "window": [self.window_start.isoformat(), self.window_end.isoformat()],
            "subjects": [[s.role, s.value, s.weight] for s in self.subjects],
            "score": self.score,
            "confidence": self.confidence,
            "metrics": self.metrics,
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return f"{self.detector[:12]}-{digest[:16]}"

    def subjects_with(self, role: str) -> list[str]:
        return [s.value for s in self.subjects if s.role == role]

    def to_row(self) -> dict:
        row = self.model_dump()
        row["metrics"] = list(self.metrics.items())
        row["created"] = self.created or datetime.now(timezone.utc)
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Alert":
        row = dict(row)
        m = row.get("metrics") or {}
        row["metrics"] = dict(m) if not isinstance(m, dict) else m
        row["subjects"] = [{k: v for k, v in s.items()} for s in row.get("subjects") or []]
        return cls.model_validate(row)

