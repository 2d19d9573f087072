"""`necoma testbed replay`: every datagram arrives, in order; and end to end into `necoma collect`'s lake."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from necoma.lake import connect
from necoma.testbed.importer import import_scenario
from necoma.config import Settings
from necoma.testbed.replay import parse_target, replay
from necoma.testbed.writers.container import read_datagrams
from necoma.testbed.writers.text import read_syslog
from tests._testbed import scenario


class Sink:
    """A UDP socket on 127.0.0.1 collecting every datagram it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.got: list[bytes] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv(65535))
            except socket.timeout:
                continue

    def close(self) -> None:
        time.sleep(0.3)
        self._stop.set()
        self._t.join()
        self.sock.close()


def test_parse_target():
    assert parse_target("127.0.0.1:2055") == ("127.0.0.1", 2055)
    assert parse_target("[::1]:6343") == ("::1", 6343)
    with pytest.raises(ValueError):
        parse_target("localhost")


def test_replay_delivers_every_datagram_in_order():
    directory = scenario("background", scale=0.1)
    sinks = {p: Sink() for p in ("netflow", "sflow", "syslog")}
    try:
        st = replay(directory, {p: ("127.0.0.1", s.port) for p, s in sinks.items()}, speed=None, max_rate=20000)
    finally:
        for s in sinks.values():
            s.close()
    expected = {"netflow": [d for f in sorted((directory / "netflow").glob("*.bin")) for _, d in read_datagrams(f)[1]],
                "sflow": [d for f in sorted((directory / "sflow").glob("*.bin")) for _, d in read_datagrams(f)[1]],
                "syslog": [m for _, m in read_syslog(directory / "syslog.log", 2025)]}
    for p, s in sinks.items():
        assert sorted(s.got) == sorted(expected[p]), p
    assert sinks["sflow"].got == expected["sflow"]  # one file: exactly its order
    assert st.total == sum(len(v) for v in expected.values())


def test_replay_keeps_the_pace():
    """At speed 3600 a 2-second slice of sending covers ~2 scenario hours."""
    directory = scenario("background", scale=0.1)
    sink = Sink()
    try:
        from necoma.testbed.truth import load_truth, parse_time

        t0 = parse_time(load_truth(directory)["start"]).timestamp()
        began = time.monotonic()
        st = replay(directory, {"sflow": ("127.0.0.1", sink.port)}, speed=3600.0, since=t0 + 3600, until=t0 + 3 * 3600)
        took = time.monotonic() - began
    finally:
        sink.close()
    assert st.total == len(sink.got) > 0
    assert 1.5 < took < 4.0
    assert (st.last - st.first) / 3600 == pytest.approx(took, abs=0.6)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_replay_end_to_end_into_necoma_collect(tmp_path):
    """Replay into a real `necoma collect`; its lake holds what a direct import holds."""
    pytest.importorskip("necoma.collect.listener")
    directory = scenario("background", scale=0.1)
    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "collected"}"\n')
    ports = {p: _free_port() for p in ("netflow", "sflow", "syslog")}
    stats = tmp_path / "collect-stats.json"
    cmd = [sys.executable, "-m", "necoma.cli.main", "-c", str(cfg), "collect", "--flush-seconds", "1",
           "--stats-file", str(stats)] + [a for p, port in ports.items() for a in (f"--{p}", f"127.0.0.1:{port}")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not stats.exists() and time.monotonic() < deadline:  # written once the listeners are up
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        replay(directory, {p: ("127.0.0.1", port) for p, port in ports.items()}, speed=None, max_rate=5000)
        time.sleep(2.0)
        proc.terminate()  # the collector flushes everything on SIGTERM
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    direct = Settings(data_dir=tmp_path / "direct")
    import_scenario(directory, direct)
    live, ref = connect(tmp_path / "collected" / "lake"), connect(direct.lake_path)
    q = "SELECT count(*), sum(packets), sum(bytes) FROM flows WHERE source IN ('netflow9', 'ipfix')"
    assert live.execute(q).fetchone() == ref.execute(q).fetchone(), out
    q = "SELECT count(*) FROM packets WHERE source = 'sflow'"
    assert live.execute(q).fetchone() == ref.execute(q).fetchone(), out
    q = "SELECT count(*), count(DISTINCT message) FROM syslog"
    assert live.execute(q).fetchone() == ref.execute(q).fetchone(), out
