"""`necoma eval`: absent detectors are "not implemented", toy detectors are scored exactly."""
from __future__ import annotations

import json
import sys
import types
from datetime import timedelta

from typer.testing import CliRunner

from necoma.analyze.alert import Alert, Subject
from necoma.cli.main import app
from necoma.testbed.evaluate import evaluate_lake
from necoma.testbed.scoring import EXPECTED_DETECTORS, SPECS, Spec, score
from necoma.testbed.truth import parse_time
from tests._testbed import imported, scenario


def _truth() -> dict:
    return json.loads((scenario() / "truth.json").read_text())


class ToyScanDetector:
    """Names the scanners of truth.json (perfect), plus optional wrong hosts."""

    name = "ssl_scan"
    entity_roles = ("scanner",)

    def __init__(self, extra: tuple[str, ...] = (), delay_min: int = 30) -> None:
        self.extra, self.delay = extra, delay_min

    def run(self, con):
        # The toy reads the lake like a real detector would: SYN-only sources to 443 reaching many addresses.
        rows = con.execute("SELECT src_ip FROM flows WHERE dst_port = 443 AND tcp_flags = 2 GROUP BY 1 "
                           "HAVING count(DISTINCT dst_ip) > 100").fetchall()
        scan = next(a for a in _truth()["attacks"] if a["kind"] == "ssl_scan")
        start = parse_time(scan["start"])
        subjects = [Subject(role="scanner", value=r[0]) for r in rows]
        subjects += [Subject(role="scanner", value=x) for x in self.extra]
        subjects += [Subject(role="domain", value="ignored.example")]  # a role the spec does not score
        return [Alert(detector=self.name, window_start=start, window_end=start + timedelta(minutes=self.delay),
                      subjects=subjects, score=0.9, confidence="high")]


def test_perfect_toy_detector_scores_one():
    report = evaluate_lake(imported().lake_path, scenario(), detectors=[ToyScanDetector()])
    s = next(x for x in report.scores if x.name == "ssl_scan")
    assert s.status == "scored" and s.precision == s.recall == s.f1 == 1.0
    assert s.false_positives == [] and s.misses == []
    assert s.time_to_detect == {"ssl_scan-1": 1800.0}
    others = [x for x in report.scores if x.name != "ssl_scan"]
    assert {x.name for x in others} == set(EXPECTED_DETECTORS) - {"ssl_scan"}
    assert all(x.status == "not implemented" and x.precision is None for x in others)


def test_wrong_host_is_a_listed_false_positive():
    report = evaluate_lake(imported().lake_path, scenario(), detectors=[ToyScanDetector(extra=("10.1.0.53",))])
    s = next(x for x in report.scores if x.name == "ssl_scan")
    assert s.precision == 0.5 and s.recall == 1.0
    assert s.false_positives == [{"value": "10.1.0.53", "role": "scanner"}]


def test_scoring_rules():
    truth = {"attacks": [
        {"id": "h-1", "kind": "heavy_hitter", "start": "2025-03-10T20:00:00Z", "hosts": ["10.2.3.4", "198.19.200.1"]},
        {"id": "u-1", "kind": "udp_fragmentation", "start": "2025-03-10T11:00:00Z", "victims": ["10.1.9.9"]},
    ]}
    alerts = [{"subjects": [("10.2.3.0/24", "source"), ("10.1.9.9", "victim"), ("10.9.9.9", "host")],
               "window_end": "2025-03-10T21:00:00Z"}]
    s = score("heavy_hitter", alerts, truth, SPECS["heavy_hitter"])
    # the prefix finds the host inside it; the flood victim is tolerated; 10.9.9.9 is wrong
    assert (s.tp, s.fp, s.found, s.truth) == (1, 1, 1, 2)
    assert s.misses == [{"value": "198.19.200.1", "field": "hosts", "attack": "h-1"}]
    assert s.time_to_detect == {"h-1": 3600.0}
    custom = score("x", [{"subjects": [{"value": "WWW.Example.COM.", "role": "domain"}]}],
                   {"attacks": [{"id": "p-1", "kind": "phishing", "start": "2025-03-10T09:00:00Z",
                                 "domains": ["www.example.com"]}]}, Spec(("phishing",), ("domains",), ("domain",)))
    assert custom.precision == custom.recall == 1.0 and custom.time_to_detect == {"p-1": None}


def test_cli_eval_without_registry_shows_not_implemented(tmp_path, monkeypatch):
    empty = types.ModuleType("necoma.analyze.registry")
    empty.all_detectors = lambda: {}
    monkeypatch.setitem(sys.modules, "necoma.analyze.registry", empty)
    res = CliRunner().invoke(app, ["eval", str(scenario()), "--lake", str(imported().lake_path)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in EXPECTED_DETECTORS:
        line = next(ln for ln in res.output.splitlines() if f" {name} " in ln)
        assert "not implemented" in line and "0.00" not in line
    res = CliRunner().invoke(app, ["eval", str(scenario()), "--lake", str(imported().lake_path), "--json"])
    data = json.loads(res.output)
    assert [d["status"] for d in data["detectors"]] == ["not implemented"] * len(EXPECTED_DETECTORS)


def test_cli_eval_scores_a_registered_toy(tmp_path, monkeypatch):
    toy = types.ModuleType("necoma.analyze.registry")
    toy.all_detectors = lambda: {"ssl_scan": ToyScanDetector(extra=("10.1.0.53",))}
    monkeypatch.setitem(sys.modules, "necoma.analyze.registry", toy)
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "unused"}"\n')
    res = CliRunner().invoke(app, ["-c", str(cfg), "eval", str(scenario()), "--json"])  # temporary lake
    assert res.exit_code == 0, res.output
    ssl = next(d for d in json.loads(res.output)["detectors"] if d["name"] == "ssl_scan")
    assert ssl["precision"] == 0.5 and ssl["recall"] == 1.0
    assert ssl["false_positives"] == [{"value": "10.1.0.53", "role": "scanner"}]
    assert not (tmp_path / "unused").exists()


def test_registered_detectors_run_through_the_analysis_runner():
    """The real registry's Detector classes are run like `necoma analyze` runs them, and scored."""
    import pytest

    registry = pytest.importorskip("necoma.analyze.registry")
    if "ssl_scan" not in registry.all_detectors():
        pytest.skip("no ssl_scan detector registered")
    report = evaluate_lake(imported().lake_path, scenario(), only={"ssl_scan"})
    [s] = report.scores
    assert s.status == "scored", s.error
    assert s.spec["roles"] == ["scanner"] and s.truth == 1
