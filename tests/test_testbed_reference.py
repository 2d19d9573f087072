"""The testbed's NetFlow v9, IPFIX and sFlow datagrams read by reference collectors (nfdump's nfcapd and sfcapd)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from necoma.testbed.replay import replay
from necoma.testbed.truth import load_truth
from tests._testbed import scenario
from tests.conftest import require_tool


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary(directory) -> dict[str, int]:
    out = subprocess.run(["nfdump", "-R", str(directory), "-I"], capture_output=True, text=True, check=True).stdout
    return {k.strip(): int(v) for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
            if v.strip().isdigit()}


@pytest.mark.slow
def test_nfcapd_and_sfcapd_read_every_record(tmp_path):
    require_tool("nfcapd", "sfcapd", "nfdump")
    directory = scenario("background", scale=0.1)
    truth = load_truth(directory)
    counts = truth["counts"]
    ports = {"netflow": _free_port(), "sflow": _free_port()}
    pids = []
    for proto, tool in (("netflow", "nfcapd"), ("sflow", "sfcapd")):
        (tmp_path / proto).mkdir()
        pidfile = tmp_path / f"{proto}.pid"
        subprocess.run([tool, "-b", "127.0.0.1", "-p", str(ports[proto]), "-w", str(tmp_path / proto), "-D",
                        "-P", str(pidfile)], check=True, capture_output=True)
        for _ in range(50):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.1)
        pids.append(int(pidfile.read_text().strip()))
    try:
        time.sleep(0.5)
        replay(directory, {p: ("127.0.0.1", port) for p, port in ports.items()}, speed=None, max_rate=5000)
        time.sleep(1.0)
    finally:
        for pid in pids:  # only the daemons this test started, by PID; they flush their files on SIGTERM
            os.kill(pid, signal.SIGTERM)
        time.sleep(2.0)
    nf = _summary(tmp_path / "netflow")
    assert nf["Flows"] == counts["nf9-site-a_records"] + counts["ipfix-site-b_records"]
    assert _epoch(truth["start"]) <= nf["First"] and nf["Last"] < _epoch(truth["end"]) + 60  # no uptime wrap
    sf = _summary(tmp_path / "sflow")
    assert sf["Flows"] == counts["sflow_samples"]
    assert sf["Packets"] == counts["sflow_samples"] * 1024  # sfcapd scales each sample by the sampling rate


def _epoch(text: str) -> int:
    from necoma.testbed.truth import parse_time

    return int(parse_time(text).timestamp())
