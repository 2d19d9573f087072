"""`necoma eval --all`: scenarios generated (then reused), scored, the scenario × detector table, the bar as exit code."""
from __future__ import annotations

import json
import sys
import types

from typer.testing import CliRunner

from necoma.analyze.alert import Subject
from necoma.cli.main import app
from necoma.testbed.scoring import Score
from necoma.testbed.suite import cell

ARGS = ["eval", "--all", "--scenarios", "background,ssl_scan", "--seeds", "1", "--scale", "0.3", "--only", "ssl_scan"]


def test_cells_hold_the_bar():
    assert cell(Score(name="x", status="scored", truth=0, fp=0)).ok
    assert cell(Score(name="x", status="scored", truth=0, fp=1)).text == "fp 1"
    assert not cell(Score(name="x", status="scored", truth=0, fp=1)).ok
    good = Score(name="x", status="scored", truth=20, tp=20, fp=1, found=19)  # P 0.952, R 0.95
    assert cell(good).ok and cell(good).text == "0.95/0.95"
    assert not cell(Score(name="x", status="scored", truth=20, tp=18, found=18)).ok  # R 0.90
    assert not cell(Score(name="x", status="not implemented")).ok


def test_eval_all_generates_scores_and_exits_by_the_bar(tmp_path, monkeypatch):
    work, figures = tmp_path / "work", tmp_path / "eval.json"
    res = CliRunner().invoke(app, ARGS + ["--work", str(work), "--figures", str(figures)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "| scenario | seed | ssl_scan |" in lines
    assert "| background | 1 | · |" in lines and "| ssl_scan | 1 | 1.00/1.00 |" in lines
    assert "met" in lines[-1] and "NOT" not in lines[-1]
    fig = json.loads(figures.read_text())["detectors"]["ssl_scan"]
    assert list(fig) == ["ssl_scan"] and fig["ssl_scan"]["found"] == fig["ssl_scan"]["truth"] > 0
    truth = work / "background-s1-x0.3-h6" / "truth.json"
    written = truth.stat().st_mtime_ns

    # a detector naming an innocent host on every scenario misses the bar: exit 1, the cells in bold
    class Noisy:
        name = "ssl_scan"

        def run(self, con):
            return [types.SimpleNamespace(subjects=[Subject(role="scanner", value="10.1.0.53")], window_end=None)]

    registry = types.ModuleType("necoma.analyze.registry")
    registry.all_detectors = lambda: {"ssl_scan": Noisy()}
    monkeypatch.setitem(sys.modules, "necoma.analyze.registry", registry)
    res = CliRunner().invoke(app, ARGS + ["--work", str(work)], env={"COLUMNS": "200"})
    assert res.exit_code == 1, res.output
    assert "| background | 1 | **fp 1** |" in res.output.splitlines()
    assert "NOT met" in res.output
    assert truth.stat().st_mtime_ns == written  # the scenario directories were reused, not generated again


def test_eval_all_rejects_bad_arguments(tmp_path):
    res = CliRunner().invoke(app, ["eval", "--all", "--scenarios", "nosuch"])
    assert res.exit_code == 2 and "unknown scenario 'nosuch'" in res.output
    res = CliRunner().invoke(app, ["eval", "--all", "--seeds", "one"])
    assert res.exit_code == 2 and "not a comma-separated list" in res.output
    res = CliRunner().invoke(app, ["eval", "--all", str(tmp_path)])
    assert res.exit_code == 2 and "no DIRECTORY" in res.output
    res = CliRunner().invoke(app, ["eval"])
    assert res.exit_code == 2 and "--all" in res.output
