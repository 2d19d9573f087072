"""`necoma run`'s sharing stages for real: incidents published into the embedded store, then the API served."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select
from typer.testing import CliRunner

from necoma.analyze.runner import load_alerts
from necoma.cli.main import app
from necoma.cli.share_stage import share_stage
from necoma.config import load_settings
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.models import Post, StixObject
from necoma.exchange.testing import free_port


def _serve_run(cfg, port) -> tuple[str, str]:
    """`necoma run` as a user starts it: wait for the URL and key it prints, return them, leave it serving."""
    proc = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", "-c", str(cfg), "run", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "300"})
    out, deadline = [], time.time() + 540
    try:
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "reader key" in line:
                key = line.rsplit(" ", 1)[1].strip()
                url = f"http://127.0.0.1:{port}"
                for _ in range(100):  # uvicorn starts right after the banner
                    try:
                        r = httpx.get(url + "/api/v1/posts", headers={"Authorization": f"Bearer {key}"})
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                assert r.status_code == 200, r.text
                assert any("#n6-" in p["text"] for p in r.json()["posts"])  # the incident bot's posts
                r = httpx.get(url + "/taxii2/root/collections/", auth=("u", key), headers={"Accept": "application/taxii+json;version=2.1"})
                assert "necoma" in {c["title"] for c in r.json()["collections"]}
                return "".join(out), key
        raise AssertionError("necoma run printed no key:\n" + "".join(out))
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            assert proc.wait(timeout=30) in (0, 1, -signal.SIGINT, 130), "".join(out)
        finally:
            proc.kill()


def test_run_publishes_incidents_and_serves(tmp_path):
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    out, key = _serve_run(cfg, free_port())
    m = re.search(r"sharing: (\d+) alerts → (\d+) incidents, (\d+) newly published", out)
    assert m, out
    alerts, incidents, new = map(int, m.groups())
    assert alerts > 0 and 0 < incidents <= alerts and new == incidents
    assert "exchange API on http://127.0.0.1:" in out and key.startswith("necoma_")

    settings = load_settings(cfg)
    engine = open_engine(settings.exchange_db_url)
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Post).where(Post.author == "incident-bot")) == incidents
        assert s.scalar(select(func.count()).select_from(StixObject).where(StixObject.stix_type == "incident")) == incidents
        assert set(s.scalars(select(Post.tlp))) == {"amber"}  # the organization's own group, never public by default
    engine.dispose()

    # Again, without serving: the same alerts make the same incidents, and nothing is published twice.
    res = CliRunner().invoke(app, ["-c", str(cfg), "run", "--no-serve"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert f"{incidents} incidents, 0 newly published" in res.output and "exchange API on" not in res.output
    again = share_stage(settings, load_alerts(settings.lake_path))
    assert len(again) >= incidents
