"""The analysis benchmark's generated lake gives every detector real work: each finds its planted attack."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pyarrow.parquet as pq

from necoma.analyze.registry import instantiate
from necoma.analyze.runner import run_all
from necoma.lake.engines import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import analyze_lake  # noqa: E402


def test_generated_lake_layout_and_findings(tmp_path):
    lake = analyze_lake.ensure_lake(tmp_path, 300_000, log=lambda _: None)
    assert analyze_lake.ensure_lake(tmp_path, 300_000, log=lambda _: None) == lake  # cached, not regenerated
    hours = sorted(p.name for p in (lake / "flows" / "dt=20260302").iterdir())
    assert hours == [f"hr={h:02d}" for h in range(24)]
    flows = sum(pq.ParquetFile(f).metadata.num_rows for f in (lake / "flows").rglob("*.parquet"))
    assert 300_000 <= flows <= 300_000 + 20_000  # background plus the fixed-size attacks
    start = analyze_lake.DAY
    with open_engine("duckdb", lake) as eng:
        runs = {r.name: r for r in run_all(instantiate(), eng, start, start + dt.timedelta(days=1), keep_going=False)}
    subjects = {name: {s.value for a in r.alerts for s in a.subjects} for name, r in runs.items()}
    assert all(r.alerts for r in runs.values()), {n: len(r.alerts) for n, r in runs.items()}
    assert "10.0.0.102" in subjects["ntp_amplifier"]  # victims planted by analyze_lake.attacks
    assert "10.0.0.203" in subjects["dns_amplifier"]
    assert "10.0.1.54" in subjects["reflection"]
    assert "10.0.1.155" in subjects["udp_fragmentation"]
    assert len(runs["ssl_scan"].alerts) == 1 and runs["ssl_scan"].alerts[0].metrics["targets"] == 5000
    assert runs["zeus_dga"].alerts[0].metrics["bots"] == 20
