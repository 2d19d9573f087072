"""STIX facts every stage that emits or checks STIX shares: TLP 2.0 marking definitions, organization identities.

The five TLP 2.0 marking definitions have fixed ids published by OASIS
(extension-definition--60a3c5c5-...); the four TLP 1.0 ids that the `stix2`
library ships are mapped onto them (WHITE = CLEAR). An organization's STIX
identity id is a UUIDv5 of its name in a fixed namespace, so every necoma
instance names the same organization with the same id.
"""
from __future__ import annotations

import uuid
from typing import Any, Literal

Level = Literal["clear", "green", "amber", "amber+strict", "red"]
LEVELS: tuple[Level, ...] = ("clear", "green", "amber", "amber+strict", "red")  # least → most restrictive

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS: dict[Level, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_IDS: dict[str, Level] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
LEVEL_OF_ID: dict[str, Level] = {**{v: k for k, v in TLP2_IDS.items()}, **TLP1_IDS}

NAMESPACE = uuid.UUID("6f1b4f8e-5f0c-4d8e-9a3e-2a9c1d7b0e11")


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


def stable_uuid4(*parts: str) -> uuid.UUID:
    """A UUID in version-4 form (STIX requires v4 for SDO/SRO ids) derived from `parts`, not random.

    The same parts give the same id on every run and instance, so re-exporting
    is versioning, not duplication.
    """
    digest = uuid.uuid5(NAMESPACE, "|".join(parts)).bytes
    return uuid.UUID(bytes=digest, version=4)


def identity_id(org_name: str) -> str:
    return f"identity--{stable_uuid4('org', org_name)}"
