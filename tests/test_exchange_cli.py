"""`necoma admin` and `necoma serve` end to end: keys made by the CLI work against the served TAXII API."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import stix2
from taxii2client.v21 import Server
from typer.testing import CliRunner

from necoma.cli.main import app
from necoma.exchange import tlp
from necoma.exchange.testing import free_port


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n[exchange]\norg_name = "test-cert"\n')
    return cfg


def test_admin_commands(tmp_path):
    runner = CliRunner()
    cfg = ["--config", str(_config(tmp_path))]
    assert runner.invoke(app, [*cfg, "admin", "org", "add", "acme"]).exit_code == 0
    r = runner.invoke(app, [*cfg, "admin", "org", "add", "acme"])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, [*cfg, "admin", "key", "create", "--org", "acme", "--role", "analyst"])
    assert r.exit_code == 0
    token = r.stdout.strip().splitlines()[0]
    assert token.startswith("necoma_")
    r = runner.invoke(app, [*cfg, "admin", "key", "create", "--org", "acme", "--role", "boss"])
    assert r.exit_code == 2 and "role must be one of" in r.output
    assert runner.invoke(app, [*cfg, "admin", "group", "add", "isac"]).exit_code == 0
    assert runner.invoke(app, [*cfg, "admin", "group", "member", "isac", "--org", "acme"]).exit_code == 0
    r = runner.invoke(app, [*cfg, "admin", "group", "list"])
    assert "isac" in r.output and "acme" in r.output
    r = runner.invoke(app, [*cfg, "admin", "key", "list"])
    assert token.split("_")[1] in r.output and token not in r.output  # ids listed, secrets never
    assert (tmp_path / "data" / "exchange.sqlite").exists()


def test_serve_with_cli_made_key(tmp_path):
    runner = CliRunner()
    cfg_path = _config(tmp_path)
    cfg = ["--config", str(cfg_path)]
    runner.invoke(app, [*cfg, "admin", "org", "add", "acme"])
    runner.invoke(app, [*cfg, "admin", "group", "add", "isac"])
    runner.invoke(app, [*cfg, "admin", "group", "member", "isac", "--org", "acme"])
    token = runner.invoke(app, [*cfg, "admin", "key", "create", "--org", "acme", "--role", "analyst"]).stdout.split()[0]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", *cfg, "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}/taxii2/"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "necoma serve did not start"
                time.sleep(0.1)
        root = Server(url, user="bot", password=token).api_roots[0]
        col = {c.title: c for c in root.collections}["isac"]
        ind = json.loads(stix2.v21.Indicator(pattern="[url:value = 'http://phish.example/']", pattern_type="stix",
                                             object_marking_refs=[tlp.TLP2_IDS["amber"]]).serialize())
        assert col.add_objects(json.dumps({"objects": [ind]})).success_count == 1
        assert col.get_objects()["objects"] == [ind]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
