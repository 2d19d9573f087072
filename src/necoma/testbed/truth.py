"""`truth.json`: the ground truth of a scenario, what `necoma eval` scores against.

Layout (all times ISO 8601 UTC):

    {"format": 1, "scenario": "mixed", "seed": 1, "scale": 1.0, "day": "2025-03-10",
     "start": ..., "end": ...,                 # the scenario's time range
     "exporters": {...}, "files": {...},       # what produced which file
     "benign": {"heavy_hitters": [...], "ntp_servers": [...], ...},   # hard negatives
     "attacks": [ {"id": "ntp_amplification-1", "kind": "ntp_amplification",
                   "start": ..., "end": ...,
                   "attackers": [], "victims": [], "amplifiers": [], "bots": [], "cnc": [],
                   "domains": [], "urls": [], "scanners": [], "senders": [], "hosts": [],
                   "details": {...}} ]}

Every attack has every entity field (empty when it does not apply), so a
scorer never needs to know which kind fills which field.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

ENTITY_FIELDS = ("attackers", "victims", "amplifiers", "bots", "cnc", "domains", "urls", "scanners", "senders",
                 "hosts")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def attack_record(kind: str, start: float, end: float, details: dict | None = None, **entities: list[str]) -> dict:
    unknown = set(entities) - set(ENTITY_FIELDS)
    if unknown:
        raise ValueError(f"unknown truth fields {sorted(unknown)}")
    rec: dict = {"id": "", "kind": kind, "start": iso(start), "end": iso(end)}
    for f in ENTITY_FIELDS:
        rec[f] = sorted(set(entities.get(f, [])))
    rec["details"] = details or {}
    return rec


def write_truth(path: Path, truth: dict) -> None:
    counts: dict[str, int] = {}
    for a in truth["attacks"]:
        counts[a["kind"]] = counts.get(a["kind"], 0) + 1
        a["id"] = f"{a['kind']}-{counts[a['kind']]}"
    path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")


def load_truth(directory: Path) -> dict:
    path = Path(directory) / "truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a scenario directory (no truth.json)")
    return json.loads(path.read_text())
