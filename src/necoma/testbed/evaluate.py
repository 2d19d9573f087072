"""`necoma eval DIR`: run the analyses over a labelled scenario and score every detector against truth.json.

Detectors are found through `necoma.analyze.registry` (`instantiate()`, with
the `[detectors.NAME]` overrides of the settings, else `all_detectors()`);
without a registry the list is empty. Every expected detector that is
absent shows as "not implemented" (never as a score of zero).

Two kinds of detector are run:

- necoma.analyze.detector.Detector subclasses (`detect(ctx)`): through
  necoma.analyze.runner.run_detector on the DuckDB engine, over the
  scenario's time range;
- anything duck-typed (toys in tests, external plug-ins):

    name: str                       # e.g. "ntp_amplifier"; matched against scoring.SPECS
    entity_roles: tuple[str, ...]   # optional: subject roles that are scored
                                    # (default: the roles of its scoring spec)
    run(con) -> list[Alert-like]    # con: DuckDB connection with the lake views
                                    # (necoma.lake.connect); if run() also accepts
                                    # `start` and `end` keywords it gets the scenario's range
    truth: scoring.Spec             # optional, only for detectors not in scoring.SPECS

Alert-like: a necoma.analyze.alert.Alert, or any object/dict with
`subjects` (objects with .value and .role, (value, role) tuples, or dicts)
and a time (`window_end`, else `time`, else `window_start`), used for the
time to detect. How entities are scored: see necoma.testbed.scoring and
docs/evaluation.md.
"""
from __future__ import annotations

import inspect
import tempfile
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from necoma.config import Settings
from necoma.lake import connect
from necoma.testbed.importer import import_scenario
from necoma.testbed.scoring import EXPECTED_DETECTORS, SPECS, Score, Spec, score
from necoma.testbed.truth import load_truth, parse_time


def discover_detectors(settings: Settings | None = None) -> list:
    """Every detector the analysis package registers, as instances; [] while it provides no registry."""
    try:
        registry = import_module("necoma.analyze.registry")
    except ModuleNotFoundError as exc:
        if exc.name and "necoma.analyze.registry".startswith(exc.name):
            return []
        raise
    if hasattr(registry, "instantiate"):
        overrides = getattr(settings, "detectors", None) or {}
        return list(registry.instantiate(None, overrides))
    found = registry.all_detectors() if hasattr(registry, "all_detectors") else []
    items = found.values() if isinstance(found, dict) else found
    return [d() if isinstance(d, type) else d for d in items]


@dataclass
class EvalReport:
    scenario: str
    seed: int
    directory: str
    lake: str
    scores: list[Score] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"scenario": self.scenario, "seed": self.seed, "directory": self.directory, "lake": self.lake,
                "seconds": round(self.seconds, 3), "detectors": [s.as_dict() for s in self.scores]}


def _run_detector(det, lake: Path, con, truth: dict) -> list:
    start, end = parse_time(truth["start"]), parse_time(truth["end"])
    if hasattr(det, "detect"):  # a necoma.analyze Detector: the same path as `necoma analyze`
        from necoma.analyze.runner import run_detector
        from necoma.lake.engines import open_engine

        engine = open_engine("duckdb", lake)
        try:
            return list(run_detector(det, engine, start, end).alerts)
        finally:
            engine.close()
    params = inspect.signature(det.run).parameters
    kwargs = {"start": start, "end": end} if "start" in params and "end" in params else {}
    return list(det.run(con, **kwargs) or [])


def evaluate_lake(lake: Path, directory: Path, *, detectors: list | None = None, only: set[str] | None = None,
                  settings: Settings | None = None) -> EvalReport:
    """Score detectors over a lake that already holds the scenario."""
    began = time.perf_counter()
    truth = load_truth(directory)
    dets = detectors if detectors is not None else discover_detectors(settings)
    report = EvalReport(truth["scenario"], truth["seed"], str(directory), str(lake))
    con = connect(Path(lake))
    by_name = {getattr(d, "name", type(d).__name__): d for d in dets}
    names = list(EXPECTED_DETECTORS) + sorted(n for n in by_name if n not in EXPECTED_DETECTORS)
    for name in names:
        if only and name not in only:
            continue
        det = by_name.get(name)
        if det is None:
            report.scores.append(Score(name=name, status="not implemented"))
            continue
        spec: Spec | None = SPECS.get(name) or getattr(det, "truth", None)
        if spec is None:
            report.scores.append(Score(name=name, status="error", error="no scoring spec: add it to "
                                       "necoma.testbed.scoring.SPECS or give the detector a `truth` Spec"))
            continue
        t = time.perf_counter()
        try:
            alerts = _run_detector(det, Path(lake), con, truth)
        except Exception as exc:  # one broken detector must not hide the others' scores
            report.scores.append(Score(name=name, status="error", error=f"{type(exc).__name__}: {exc}"))
            continue
        s = score(name, alerts, truth, spec, getattr(det, "entity_roles", None) or None)
        s.seconds = time.perf_counter() - t
        report.scores.append(s)
    report.seconds = time.perf_counter() - began
    return report


def evaluate(directory: Path, *, lake: Path | None = None, settings: Settings | None = None,
             detectors: list | None = None, only: set[str] | None = None) -> EvalReport:
    """Import the scenario into a temporary lake (or use `lake`, already loaded) and score the detectors."""
    directory = Path(directory)
    load_truth(directory)  # fail early on a directory that is no scenario
    if lake is not None:
        return evaluate_lake(lake, directory, detectors=detectors, only=only, settings=settings)
    with tempfile.TemporaryDirectory(prefix="necoma-eval-") as tmp:
        base = settings or Settings()
        s = base.model_copy(update={"data_dir": Path(tmp), "lake": base.lake.model_copy(update={"path": None})})
        import_scenario(directory, s)
        report = evaluate_lake(s.lake_path, directory, detectors=detectors, only=only, settings=base)
        report.lake = "(temporary)"
        return report
