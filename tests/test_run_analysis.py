"""`necoma run` runs the detectors after importing the demo data, stores their alerts and prints them."""
from __future__ import annotations

from typer.testing import CliRunner

from necoma.analyze.runner import load_alerts
from necoma.cli.main import app
from necoma.config import Settings


def test_run_prints_and_stores_alerts(tmp_path):
    from necoma.testbed.scenario import generate

    data = tmp_path / "data"
    # A small demo scenario put where `necoma run` looks for it, so the test need not generate the full one.
    generate("mixed", 1, data / "demo", scale=0.1, history_hours=2)
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{data}"\n')
    res = CliRunner().invoke(app, ["-c", str(cfg), "run", "--no-serve"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "analysis:" in res.output and "alerts" in res.output
    rows = {ln.split("│")[1].strip(): ln for ln in res.output.splitlines() if ln.startswith("│")}
    # the mixed scenario plants a ZeuS botnet and an NTP amplification; their rows name the bots and the victim
    assert "(bot)" in rows["zeus_dga"] and "(victim)" in rows["ntp_amplifier"]
    stored = load_alerts(Settings(data_dir=data).lake_path)
    assert {a.detector for a in stored} >= {"zeus_dga", "ntp_amplifier"}
    # a second run stores nothing new (alert ids are content hashes)
    again = CliRunner().invoke(app, ["-c", str(cfg), "run", "--no-serve"], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "(0 new)" in again.output
