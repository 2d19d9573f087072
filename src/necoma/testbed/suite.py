"""`necoma eval --all`: every scenario × seed generated, imported, scored, and held to the quality bar.

    reports = run_suite(SCENARIOS, seeds=[1, 2], work=Path("/tmp/necoma-eval"))
    ok = all(c.ok for r in reports for c in cells(r))

The bar (issue 5, docs/evaluation.md): at entity level every detector has
precision and recall ≥ `BAR` on every scenario where it has something to
find, and names nothing where it has nothing to find (the background-only
scenario above all). Scenario directories are written under `work` and
reused when their truth.json says they are the same scenario, seed, scale,
history and generator version (truth.json is written last, so an
interrupted generation is redone).
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from necoma.config import Settings
from necoma.testbed.evaluate import EvalReport, evaluate
from necoma.testbed.scenario import GENERATOR_VERSION, generate
from necoma.testbed.truth import parse_time

BAR = 0.95


@dataclass(frozen=True)
class Cell:
    """One detector on one scenario run: the table text and whether it meets the bar."""

    text: str
    ok: bool


def cell(s) -> Cell:
    """'P/R' where there is truth, '·' where nothing to find and silent, 'fp N' where nothing to find but N named."""
    if s.status != "scored":
        return Cell(s.status if s.status != "error" else f"error: {s.error}", False)
    if s.truth == 0:
        return Cell("·", True) if s.fp == 0 else Cell(f"fp {s.fp}", False)
    p, r = s.precision or 0.0, s.recall or 0.0
    return Cell(f"{p:.2f}/{r:.2f}", p >= BAR and r >= BAR)


def cells(report: EvalReport) -> list[Cell]:
    return [cell(s) for s in report.scores]


def meets_bar(reports: Iterable[EvalReport]) -> bool:
    return all(c.ok for r in reports for c in cells(r))


def scenario_dir(work: Path, name: str, seed: int, scale: float, history_hours: int) -> Path:
    """The scenario's directory under `work`, generated unless an identical one is already there."""
    d = work / f"{name}-s{seed}-x{scale:g}-h{history_hours}"
    truth = d / "truth.json"
    if truth.is_file():
        t = json.loads(truth.read_text())
        hours = (parse_time(t["history_until"]) - parse_time(t["start"])).total_seconds() / 3600
        if (t.get("scenario"), t.get("seed"), t.get("scale"), t.get("generator_version"), hours) == (
                name, seed, scale, GENERATOR_VERSION, history_hours):
            return d
        truth.unlink()  # another scenario or generator: written anew
    generate(name, seed, d, scale=scale, history_hours=history_hours)
    return d


def run_suite(scenarios: Iterable[str], seeds: Iterable[int], *, work: Path | None = None, scale: float = 1.0,
              history_hours: int = 6, settings: Settings | None = None, only: set[str] | None = None,
              on_done: Callable[[EvalReport], None] | None = None) -> list[EvalReport]:
    """Generate (or reuse) and score every scenario for every seed, seed by seed."""
    with tempfile.TemporaryDirectory(prefix="necoma-eval-all-") as tmp:
        root = Path(work) if work is not None else Path(tmp)
        reports = []
        for seed in seeds:
            for name in scenarios:
                report = evaluate(scenario_dir(root, name, seed, scale, history_hours), settings=settings, only=only)
                reports.append(report)
                if on_done:
                    on_done(report)
        return reports


def figures(reports: Iterable[EvalReport], command: str) -> dict:
    """Per detector and scenario, summed over seeds: runs, truth entities, found, TP, FP (the detector pages show them).

    Only scenarios where the detector had something to find or named something are listed."""
    out: dict = {"command": command, "detectors": {}}
    for r in reports:
        for s in r.scores:
            if s.status != "scored" or (s.truth == 0 and s.fp == 0):
                continue
            agg = out["detectors"].setdefault(s.name, {}).setdefault(
                r.scenario, {"runs": 0, "tp": 0, "fp": 0, "truth": 0, "found": 0})
            agg["runs"] += 1
            for k in ("tp", "fp", "truth", "found"):
                agg[k] += getattr(s, k)
    return out
