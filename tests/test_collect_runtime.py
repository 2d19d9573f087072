"""`necoma collect` as a real process on loopback: syslog over UDP and TCP, NetFlow from
softflowd, signals, the status file and the metrics endpoint."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from necoma.lake import connect
from tests.conftest import require_tool


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (syslog listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Collector:
    """A `necoma collect` subprocess with its stderr captured by a thread."""

    def __init__(self, tmp: Path, *args: str, flush: float = 60.0) -> None:
        self.data = tmp / "data"
        self.config = tmp / "necoma.toml"
        self.config.write_text(f'data_dir = "{self.data}"\n')
        self.stats_file = self.data / "collect-stats.json"
        cmd = [sys.executable, "-X", "faulthandler", "-m", "necoma.cli.main", "-c", str(self.config), "collect",
               "--flush-seconds", str(flush), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if "collecting:" in self.stderr:
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"collector exited early ({self.proc.returncode}):\n{self.stderr}")
            time.sleep(0.05)
        pytest.fail(f"collector did not start:\n{self.stderr}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints where it hung
            self.proc.wait(10)
            self._reader.join(5)
            pytest.fail(f"collector did not stop on {signal.Signals(sig).name}:\n{self.stderr}")
        self._reader.join(5)
        return rc

    def status(self) -> dict:
        return json.loads(self.stats_file.read_text())

    def query(self, sql: str) -> list[tuple]:
        return connect(self.data / "lake").execute(sql).fetchall()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def collectors():
    started: list[Collector] = []
    yield started
    for c in started:
        c.kill()


def octet(msg: bytes) -> bytes:
    return str(len(msg)).encode() + b" " + msg


def test_syslog_over_udp_and_tcp_lands_in_lake(tmp_path, collectors):
    port = free_port()
    args = ["--syslog", f"127.0.0.1:{port}"]
    v6 = has_ipv6_loopback()
    if v6:
        args += ["--syslog", f"[::1]:{port}"]
    c = Collector(tmp_path, *args, flush=0.3)
    collectors.append(c)
    c.wait_listening()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed\n", ("127.0.0.1", port))
        u.sendto(b'<165>1 2024-05-01T10:00:00.5+02:00 web.example nginx 77 ID1 [meta@1 k="v"] udp 5424',
                 ("127.0.0.1", port))
        u.sendto(b"<999>not a valid PRI", ("127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", port)) as t:  # newline framing
        t.sendall(b"<13>Jan  2 03:04:05 host1 app: tcp newline one\n<13>Jan  2 03:04:06 host1 app: tcp newl")
        time.sleep(0.05)
        t.sendall(b"ine two\n")
    with socket.create_connection(("127.0.0.1", port)) as t:  # octet counting
        t.sendall(octet(b"<14>1 2024-05-01T10:00:01Z h2 app - - - tcp octet\nwith newline")
                  + octet(b"<14>1 2024-05-01T10:00:02Z h2 app - - - tcp octet two"))
    if v6:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as u6:
            u6.sendto(b"<13>1 - v6host app - - - over ipv6", ("::1", port))

    # The status file is rewritten at each flush while the collector runs.
    deadline = time.time() + 15
    while time.time() < deadline:
        if c.stats_file.exists() and c.status()["rows_written"].get("syslog", 0) >= 6 + v6:
            break
        time.sleep(0.1)
    assert c.status()["state"] == "running"
    assert c.stop(signal.SIGTERM) == 0, c.stderr

    rows = c.query("SELECT format, host, app, procid, msgid, structured_data, message, exporter, "
                   "epoch_us(time) FROM syslog ORDER BY message")
    by_msg = {r[6]: r for r in rows}
    assert len(rows) == 6 + v6
    assert by_msg["'su root' failed"][:4] == ("rfc3164", "mymachine", "su", "42")
    r = by_msg["udp 5424"]
    assert r[:6] == ("rfc5424", "web.example", "nginx", "77", "ID1", '{"meta@1": {"k": "v"}}')
    assert r[8] == 1714550400500000  # 2024-05-01T08:00:00.5Z
    assert {"tcp newline one", "tcp newline two", "tcp octet\nwith newline", "tcp octet two"} <= set(by_msg)
    if v6:
        assert by_msg["over ipv6"][7] == "::1"

    st = c.status()
    assert st["state"] == "stopped" and st["rows_written"] == {"syslog": 6 + v6}
    local = st["protocols"]["syslog"]["127.0.0.1"]
    assert local["records"] == 6 and local["rejected"] == {"bad PRI": 1} and local["datagrams"] == 7
    assert "bad PRI" in c.stderr  # logged once

    out = subprocess.run([sys.executable, "-m", "necoma.cli.main", "-c", str(c.config), "collect", "--stats"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "127.0.0.1" in out.stdout and "1 bad PRI" in out.stdout


def test_sigint_mid_stream_loses_nothing_received(tmp_path, collectors):
    port = free_port()
    c = Collector(tmp_path, "--syslog", f"127.0.0.1:{port}", flush=3600)  # no flush before the signal
    collectors.append(c)
    c.wait_listening()

    # UDP: every datagram sent before the signal is in the kernel or the decoder: all must land.
    n_udp = 3000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(n_udp):
            u.sendto(b"<13>1 - h udp - - - udp %d" % i, ("127.0.0.1", port))
    # TCP: a sender still streaming when SIGINT arrives; what got through must be a gap-free prefix.
    sent = []
    stop_sending = threading.Event()

    def stream() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port)) as t:
                i = 0
                while not stop_sending.is_set():
                    t.sendall(octet(b"<13>1 - h tcp - - - tcp %d" % i))
                    sent.append(i)
                    i += 1
                    if i % 200 == 0:
                        time.sleep(0.002)
        except OSError:
            pass  # the collector closed the connection on shutdown

    sender = threading.Thread(target=stream)
    sender.start()
    time.sleep(0.5)
    rc = c.stop(signal.SIGINT)
    stop_sending.set()
    sender.join(10)
    assert rc == 0, c.stderr

    udp = c.query("SELECT count(*), count(DISTINCT message) FROM syslog WHERE app = 'udp'")[0]
    assert udp == (n_udp, n_udp)
    tcp = sorted(int(m.split()[1]) for (m,) in c.query("SELECT message FROM syslog WHERE app = 'tcp'"))
    assert len(tcp) > 100 and tcp == list(range(len(tcp)))  # nothing lost, nothing out of order
    st = c.status()["protocols"]["syslog"]["127.0.0.1"]
    assert st["records"] == n_udp + len(tcp)  # every decoded record was written


def test_metrics_endpoint(tmp_path, collectors):
    port, mport = free_port(), free_port()
    c = Collector(tmp_path, "--syslog", f"127.0.0.1:{port}", "--metrics-port", str(mport), flush=0.2)
    collectors.append(c)
    c.wait_listening()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(5):
            u.sendto(b"<13>1 - h m - - - metric %d" % i, ("127.0.0.1", port))
        u.sendto(b"", ("127.0.0.1", port))
    url = f"http://127.0.0.1:{mport}/metrics"
    deadline = time.time() + 10
    text = ""
    while time.time() < deadline:
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
            text = resp.read().decode()
        if 'necoma_collect_rows_written_total{table="syslog"} 5' in text:
            break
        time.sleep(0.1)
    assert 'necoma_collect_records_total{protocol="syslog",exporter="127.0.0.1"} 5' in text
    assert 'necoma_collect_rejected_total{protocol="syslog",exporter="127.0.0.1",reason="empty message"} 1' in text
    assert 'necoma_collect_rows_written_total{table="syslog"} 5' in text
    assert "# TYPE necoma_collect_datagrams_total counter" in text
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{mport}/other", timeout=5)
    assert exc.value.code == 404
    # A client that connects and says nothing does not block others.
    idle = socket.create_connection(("127.0.0.1", mport))
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
    idle.close()
    assert c.stop() == 0


def test_slow_and_garbage_tcp_clients_do_not_stall_others(tmp_path, collectors):
    port = free_port()
    c = Collector(tmp_path, "--syslog", f"127.0.0.1:{port}", flush=0.2)
    collectors.append(c)
    c.wait_listening()
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"100 <13>1 - h a - - - half a mess")  # never completes
    garbage = socket.create_connection(("127.0.0.1", port))
    garbage.sendall(b"12x34 \x00\xff" * 10)  # bad octet count: connection closed by the collector
    huge = socket.create_connection(("127.0.0.1", port))
    huge.sendall(b"<13>" + b"A" * 200_000 + b"\n<13>after the huge one\n")
    with socket.create_connection(("127.0.0.1", port)) as good:
        good.sendall(b"<13>good client\n")
    time.sleep(0.5)
    assert garbage.recv(10) == b""  # closed
    huge.close()
    assert c.stop() == 0
    slow.close()
    msgs = {m for (m,) in c.query("SELECT message FROM syslog")}
    assert {"good client", "after the huge one"} <= msgs
    rejected = c.status()["protocols"]["syslog"]["127.0.0.1"]["rejected"]
    assert rejected["bad octet count"] == 1 and rejected["message too long"] == 1
    assert rejected["truncated message"] == 1  # the slow client's half message, at shutdown


def test_busy_port_and_bad_address_are_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from necoma.cli.main import app

    cfg = tmp_path / "necoma.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["-c", str(cfg), "collect", "--duration", "5", *args])

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        out = run("--netflow", f"127.0.0.1:{busy.getsockname()[1]}")
    assert out.exit_code == 2 and "address already in use" in out.output
    for bad, says in [("nonsense", "expected HOST:PORT"), ("127.0.0.1:99999", "port must be"),
                      ("::1:2055", "brackets"), ("example.com:514", "not an IP address")]:
        out = run("--syslog", bad)
        assert out.exit_code == 2 and says in out.output, (bad, out.output)
    out = runner.invoke(app, ["-c", str(cfg), "collect"])
    assert out.exit_code == 2 and "nothing to listen on" in out.output
    out = runner.invoke(app, ["-c", str(cfg), "collect", "--stats"])
    assert out.exit_code == 1 and "no status file" in out.output


@pytest.mark.shared_data
def test_netflow_v9_from_softflowd(tmp_path, collectors, shared_data):
    pytest.importorskip("necoma.collect.netflow", reason="NetFlow decoder not in this build yet")
    require_tool("softflowd")
    pcap = shared_data / "pcap" / "lab_mixed.pcap"
    port, sport = free_port(), free_port()
    c = Collector(tmp_path, "--netflow", f"127.0.0.1:{port}", "--syslog", f"127.0.0.1:{sport}", flush=0.5)
    collectors.append(c)
    c.wait_listening()
    sf = subprocess.run(["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "9", "-D"],
                        capture_output=True, text=True, timeout=120)
    assert sf.returncode == 0, sf.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:  # both protocols in one process
        u.sendto(b"<13>1 - h a - - - alongside netflow", ("127.0.0.1", sport))
    time.sleep(1.0)
    assert c.stop(signal.SIGTERM) == 0, c.stderr
    n, packets, nbytes, sources = c.query(
        "SELECT count(*), sum(packets), sum(bytes), list(DISTINCT source) FROM flows")[0]
    assert n > 0 and packets >= n and nbytes > 0 and sources == ["netflow9"]
    st = c.status()
    nf = st["protocols"]["netflow"]["127.0.0.1"]
    assert nf["datagrams"] > 0 and nf["records"] == n and st["rows_written"]["flows"] == n
    assert not nf["rejected"] and nf["template_misses"] == 0
    assert c.query("SELECT count(*) FROM syslog")[0][0] == 1


@pytest.mark.shared_data
def test_sflow_from_pmacctd(tmp_path, collectors, shared_data):
    pytest.importorskip("necoma.collect.sflow", reason="sFlow decoder not in this build yet")
    require_tool("pmacctd")
    pcap = shared_data / "pcap" / "lab_mixed.pcap"
    port = free_port()
    c = Collector(tmp_path, "--sflow", f"127.0.0.1:{port}", flush=0.5)
    collectors.append(c)
    c.wait_listening()
    conf, log = tmp_path / "pmacctd.conf", tmp_path / "pmacctd.log"
    conf.write_text(f"daemonize: false\nlogfile: {log}\npcap_savefile: {pcap}\npcap_savefile_wait: true\n"
                    f"plugins: sfprobe[sf]\nsfprobe_receiver[sf]: 127.0.0.1:{port}\nsampling_rate[sf]: 1\n")
    pm = subprocess.Popen(["pmacctd", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while "finished reading PCAP" not in (log.read_text() if log.exists() else ""):
            assert pm.poll() is None and time.time() < deadline, log.read_text() if log.exists() else ""
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        pm.send_signal(signal.SIGINT)  # pmacct flushes its samples only on SIGINT
        pm.wait(30)
    time.sleep(1.0)
    assert c.stop(signal.SIGTERM) == 0, c.stderr
    n_packets, rates = c.query("SELECT count(*), list(DISTINCT sampling_rate) FROM packets")[0]
    assert n_packets > 0 and rates == [1]
    assert c.query("SELECT count(*) FROM flows WHERE source = 'sflow'")[0][0] > 0
    st = c.status()["protocols"]["sflow"]["127.0.0.1"]
    assert st["datagrams"] > 0 and st["records"] > 0 and st["sequence_gaps"] == 0
    assert not st["rejected"]
