"""TLP 2.0 (FIRST) as STIX marking definitions, and who may see what.

The five TLP 2.0 marking definitions have fixed STIX ids published by OASIS
(extension-definition--60a3c5c5-...); the four TLP 1.0 ids that the `stix2`
library ships are mapped onto them (WHITE = CLEAR). An object with several
TLP markings takes the most restrictive one. An object with no TLP marking
is treated as TLP:AMBER: never public, visible to the sharing group — the
safe reading of "the sender did not say".
"""
from __future__ import annotations

from typing import Any, Iterable, Literal

Level = Literal["clear", "green", "amber", "amber+strict", "red"]
LEVELS: tuple[Level, ...] = ("clear", "green", "amber", "amber+strict", "red")  # least → most restrictive
DEFAULT_LEVEL: Level = "amber"

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS: dict[Level, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP1_IDS: dict[str, Level] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
LEVEL_OF_ID: dict[str, Level] = {**{v: k for k, v in TLP2_IDS.items()}, **_TLP1_IDS}


def marking_definition(level: Level) -> dict[str, Any]:
    """The official TLP 2.0 marking-definition object for `level`."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def most_restrictive(levels: Iterable[Level]) -> Level | None:
    found = [LEVELS.index(lv) for lv in levels]
    return LEVELS[max(found)] if found else None


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
