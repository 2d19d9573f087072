"""`truth.json` of a lab run, in the generated scenarios' layout (`necoma.testbed.truth`).

Same format, same attack kinds and entity fields as `necoma testbed generate`,
so `necoma.testbed.evaluate.evaluate_lake(lake, RUNDIR)` scores detectors on a
lab run exactly as on a generated scenario. What differs: the times are
measured (when the tools actually sent), not planned, and `source` is "lab".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from necoma.testbed.truth import ENTITY_FIELDS, attack_record, iso, write_truth


@dataclass
class LabTruth:
    scenario: str
    seed: int
    lab_id: str
    #: Every lab host by role, so a reader can tell an attacker from a bystander.
    hosts: dict[str, str]
    attacks: list[dict] = field(default_factory=list)
    exporters: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, start: float, end: float, details: dict | None = None, **entities: list[str]) -> None:
        self.attacks.append(attack_record(kind, start, end, details, **entities))

    def to_json(self) -> dict:
        starts = [datetime.fromisoformat(a["start"].replace("Z", "+00:00")) for a in self.attacks]
        ends = [datetime.fromisoformat(a["end"].replace("Z", "+00:00")) for a in self.attacks]
        t0 = min(starts).timestamp()
        return {
            "format": 1, "source": "lab", "scenario": self.scenario, "seed": self.seed, "scale": 1.0,
            "lab_id": self.lab_id, "day": datetime.fromtimestamp(t0, timezone.utc).date().isoformat(),
            "start": iso(t0), "end": iso(max(ends).timestamp()), "hosts": self.hosts,
            "exporters": self.exporters, "files": self.files, "entity_fields": list(ENTITY_FIELDS),
            "benign": {}, "attacks": sorted(self.attacks, key=lambda a: (a["start"], a["kind"])),
        }


def write(truth: LabTruth, path: Path) -> Path:
    write_truth(path, truth.to_json())  # also numbers the attacks: dns_amplification-1, ...
    return path
