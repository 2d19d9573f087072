"""`truth.json` of a lab run: what was injected, by whom, at whom, when.

Same spirit as the generated scenarios' truth (see `necoma.testbed.model`):
one entry per attack with its kind, start and end (float epoch seconds, UTC)
and the entities a detector is expected to name — attackers, victims,
amplifiers, scanners, domains. In the lab these are measured, not planned:
start and end are when the tools actually ran.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Attack:
    kind: str
    start: float
    end: float
    attackers: list[str] = field(default_factory=list)
    victims: list[str] = field(default_factory=list)
    amplifiers: list[str] = field(default_factory=list)
    scanners: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    #: Kind-specific facts (qtype, ports, packets sent...), for people and for eval's notes.
    details: dict = field(default_factory=dict)


@dataclass
class Truth:
    scenario: str
    start: float
    end: float
    attacks: list[Attack]
    #: Every lab host by role, so eval can tell an attacker from a bystander.
    hosts: dict[str, str]
    source: str = "lab"
    lab_id: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def write(truth: Truth, path: Path) -> Path:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(truth.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path
