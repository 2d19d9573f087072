"""TLP 2.0 levels of stored objects: which marking governs an object.

An object with several TLP markings takes the most restrictive one. An object
with no TLP marking is treated as TLP:AMBER: never public, visible to the
sharing group — the safe reading of "the sender did not say". The marking
definitions themselves live in `necoma.knowledge.markings`.
"""
from __future__ import annotations

from typing import Any, Iterable

from necoma.knowledge.markings import LEVEL_OF_ID, LEVELS, TLP2_IDS, Level, marking_definition

__all__ = ["DEFAULT_LEVEL", "LEVELS", "WELL_KNOWN_MARKINGS", "TLP2_IDS", "Level", "level_of", "marking_definition", "most_restrictive"]

DEFAULT_LEVEL: Level = "amber"
WELL_KNOWN_MARKINGS = frozenset(LEVEL_OF_ID)  # TLP definitions: same id and content everywhere


_RANK = {lv: i for i, lv in enumerate(LEVELS)}


def most_restrictive(levels: Iterable[Level]) -> Level | None:
    return max(levels, key=_RANK.__getitem__, default=None)


def level_of(obj: dict[str, Any]) -> Level:
    """The TLP level that governs `obj`.

    TLP marking definitions themselves are public. Otherwise the object-level
    markings decide; granular markings on parts of the object also count, since
    the store hands out whole objects.
    """
    if obj.get("type") == "marking-definition" and obj.get("id") in LEVEL_OF_ID:
        return "clear"
    refs = list(obj.get("object_marking_refs") or [])
    refs += [g.get("marking_ref") for g in obj.get("granular_markings") or [] if isinstance(g, dict)]
    level = most_restrictive(LEVEL_OF_ID[r] for r in refs if r in LEVEL_OF_ID)
    return level or DEFAULT_LEVEL
