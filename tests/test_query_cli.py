"""`necoma query` through the real command: table, csv, json and parquet output, and SQL errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from necoma.lake import LakeWriter


@pytest.fixture
def cfg(tmp_path):
    data = tmp_path / "data"
    t = datetime(2026, 12, 3, 9, tzinfo=timezone.utc)
    with LakeWriter(data / "lake") as w:
        w.write("dns", [{"time": t, "client_ip": "192.0.2.1", "qname": q, "qtype": 1, "is_response": False}
                        for q in ["a.example", "a.example", "b.example"]])
    path = tmp_path / "necoma.toml"
    path.write_text(f'data_dir = "{data}"\n')
    return path


def necoma(cfg, *args, **kw):
    return subprocess.run([sys.executable, "-m", "necoma.cli.main", "--config", str(cfg), *args],
                          capture_output=True, **kw)


SQL = "SELECT qname, count(*) AS n FROM dns WHERE client_ip = '192.0.2.1' GROUP BY qname ORDER BY n DESC"


def test_table_csv_json(cfg):
    out = necoma(cfg, "query", SQL, text=True).stdout
    assert "a.example" in out and "b.example" in out
    csv = necoma(cfg, "query", SQL, "--format", "csv", text=True).stdout.splitlines()
    assert csv == ['"qname","n"', '"a.example",2', '"b.example",1']
    rows = [json.loads(line) for line in necoma(cfg, "query", SQL, "-f", "json", text=True).stdout.splitlines()]
    assert rows == [{"qname": "a.example", "n": 2}, {"qname": "b.example", "n": 1}]


def test_parquet_to_stdout_and_file(cfg, tmp_path):
    raw = necoma(cfg, "query", SQL, "-f", "parquet").stdout
    assert pq.read_table(io.BytesIO(raw)).num_rows == 2
    out = tmp_path / "r.parquet"
    necoma(cfg, "query", SQL, "-f", "parquet", "--out", str(out), check=True)
    assert pq.read_table(out).column("n").to_pylist() == [2, 1]


def test_bad_sql_is_a_clear_error(cfg):
    r = necoma(cfg, "query", "SELECT nope FROM dns", text=True)
    assert r.returncode == 2
    assert "query failed" in r.stderr and "nope" in r.stderr
