"""The `necoma testbed generate` command and `necoma run`'s demo data."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from necoma.cli.main import app


def test_generate_command(tmp_path):
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["testbed", "generate", "--scenario", "ssl_scan", "--seed", "2", "--out", str(out),
                                   "--scale", "0.05", "--day", "2024-02-29", "--history-hours", "0"])
    assert res.exit_code == 0, res.output
    truth = json.loads((out / "truth.json").read_text())
    assert [a["kind"] for a in truth["attacks"]] == ["ssl_scan"]
    assert truth["day"] == "2024-02-29" and truth["start"] == truth["history_until"] == "2024-02-29T00:00:00.000Z"
    res = CliRunner().invoke(app, ["testbed", "generate", "--scenario", "nope", "--out", str(out)])
    assert res.exit_code != 0 and "unknown scenario" in res.output


def test_replay_needs_a_target(tmp_path):
    res = CliRunner().invoke(app, ["testbed", "replay", str(tmp_path)])
    assert res.exit_code != 0 and "nothing to send" in res.output


def test_run_generates_and_imports_demo_data_once(tmp_path):
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    res = CliRunner().invoke(app, ["-c", str(cfg), "run", "--no-serve"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "generating demo data" in res.output and "imported" in res.output
    assert (tmp_path / "data" / "demo" / "truth.json").is_file()
    flows_line = next(ln for ln in res.output.splitlines() if "│ flows" in ln)
    assert int(flows_line.split("│")[2]) > 10_000
    again = CliRunner().invoke(app, ["-c", str(cfg), "run", "--no-serve"], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "generating" not in again.output and "imported" not in again.output
    assert next(ln for ln in again.output.splitlines() if "│ flows" in ln) == flows_line
