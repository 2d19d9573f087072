"""The incident rating, 0-100, as a sum of named terms so an analyst can see why.

Terms (maximum points):
  detector confidence  40  strongest alert: score x confidence weight (low 0.4, medium 0.7, high 1.0)
  layers               30  15 per layer beyond the first (DNS and flows agreeing is strong evidence)
  detectors            10  5 per detector beyond the first
  volume               20  log10(1 + subjects) / 3: 1 subject 2 points, 1000 subjects 20
  deny list           +15  a subject is on the deny list (already known bad)
  allow list          -40  a subject is on the allow list (own or trusted infrastructure: likely a false positive)
The sum is rounded and clamped to 0-100. Severity: high from 70, medium from 40.
"""
from __future__ import annotations

import math
from typing import Sequence

from necoma.analyze.alert import Alert, Subject
from necoma.knowledge.incident import Level3, RatingTerm
from necoma.knowledge.lists import Lists

CONFIDENCE_WEIGHT = {"low": 0.4, "medium": 0.7, "high": 1.0}
_STEPS: tuple[Level3, ...] = ("low", "medium", "high")


def rate(alerts: Sequence[Alert], layers: Sequence[str], subjects: Sequence[Subject],
         lists: Lists | None = None) -> tuple[int, list[RatingTerm]]:
    lists = lists or Lists()
    best = max(alerts, key=lambda a: a.score * CONFIDENCE_WEIGHT[a.confidence])
    strength = best.score * CONFIDENCE_WEIGHT[best.confidence]
    terms = [RatingTerm(name="detector confidence", points=round(40 * strength, 1),
                        why=f"strongest alert {best.id} ({best.detector}): score {best.score:g}, confidence {best.confidence}")]
    if len(layers) > 1:
        terms.append(RatingTerm(name="layers", points=min(30.0, 15.0 * (len(layers) - 1)),
                                why=f"seen in {len(layers)} layers: {', '.join(layers)}"))
    detectors = sorted({a.detector for a in alerts})
    if len(detectors) > 1:
        terms.append(RatingTerm(name="detectors", points=min(10.0, 5.0 * (len(detectors) - 1)),
                                why=f"{len(detectors)} detectors agree: {', '.join(detectors)}"))
    values = sorted({s.value for s in subjects})
    terms.append(RatingTerm(name="volume", points=round(min(20.0, 20.0 * math.log10(1 + len(values)) / 3), 1),
                            why=f"{len(values)} distinct subjects in {len(alerts)} alert(s)"))
    denied = [v for v in values if v in lists.deny]
    if denied:
        terms.append(RatingTerm(name="deny list", points=15.0, why="on the deny list: " + _few(denied)))
    allowed = [v for v in values if v in lists.allow]
    if allowed:
        terms.append(RatingTerm(name="allow list", points=-40.0,
                                why="on the allow list (likely a false positive): " + _few(allowed)))
    total = max(0, min(100, round(sum(t.points for t in terms))))
    return total, terms


def severity(rating: int) -> Level3:
    return "high" if rating >= 70 else "medium" if rating >= 40 else "low"


def confidence(alerts: Sequence[Alert], layers: Sequence[str], allow_listed: bool) -> Level3:
    """The best alert confidence, one step up when several layers agree, low when allow-listed."""
    if allow_listed:
        return "low"
    step = max(_STEPS.index(a.confidence) for a in alerts)
    if len(layers) > 1:
        step = min(step + 1, 2)
    return _STEPS[step]


def _few(values: list[str], n: int = 3) -> str:
    return ", ".join(values[:n]) + (f" and {len(values) - n} more" if len(values) > n else "")
