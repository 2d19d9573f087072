"""`necoma run` starts the collectors named in necoma.toml and stops them with a flush.

Real processes on loopback: `necoma run` as a subprocess, syslog datagrams
sent to the collector it starts, the lake read back afterwards.
"""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from necoma.config import load_settings
from necoma.lake import connect


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """`necoma run` with its output lines (stdout and stderr) readable as they come."""

    def __init__(self, conf: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", "--config", str(conf), "run", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"`necoma run` never printed {text!r}; output so far:\n{''.join(self.seen)}")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        for pid in self.children():
            os.kill(pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()


def free_port_tcp() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send(port: int, text: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"<13>1 2025-03-10T10:00:00Z runhost app - - - {text}".encode(), ("127.0.0.1", port))


def messages(conf: Path) -> set[str]:
    con = connect(load_settings(conf).lake_path)
    try:
        return {m for (m,) in con.execute("SELECT message FROM syslog WHERE host = 'runhost'").fetchall()}
    except duckdb.Error:
        return set()


def config(tmp_path: Path, port: int) -> Path:
    conf = tmp_path / "necoma.toml"
    conf.write_text(f'data_dir = "{tmp_path / "data"}"\n[collect]\nsyslog = ["127.0.0.1:{port}"]\n'
                    f"flush_seconds = 0.5\n")
    return conf


@pytest.mark.parametrize("serve", [False, True], ids=["no-serve", "serve"])
def test_run_collects_during_and_after_its_stages_then_flushes_on_sigterm(tmp_path, serve):
    port = free_port()
    conf = config(tmp_path, port)
    run = Run(conf, *(["--serve", "--port", str(free_port_tcp())] if serve else ["--no-serve"]))
    try:
        run.wait_for("collectors started", 120)
        send(port, "while the batch stages run")
        # with --serve the API is the last stage, and its SIGTERM stops the collectors too
        run.wait_for("exchange API on" if serve else "collecting until SIGTERM", 900)
        if serve:
            time.sleep(1.0)  # uvicorn installs its signal handlers as it starts
        send(port, "after the batch stages")
        time.sleep(0.3)
        [child] = run.children()
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(120) == 0, "".join(run.seen)
    finally:
        if run.proc.poll() is None:
            run.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert messages(conf) == {"while the batch stages run", "after the batch stages"}


def test_sigterm_during_the_batch_stages_stops_the_collectors_too(tmp_path):
    port = free_port()
    conf = config(tmp_path, port)
    run = Run(conf)
    try:
        run.wait_for("collectors started", 120)
        [child] = run.children()
        send(port, "before an early stop")
        time.sleep(0.3)
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(120) == 0, "".join(run.seen)  # a requested stop, not a crash
    finally:
        if run.proc.poll() is None:
            run.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # not orphaned: stopped (and reaped) by `necoma run`
    assert messages(conf) == {"before an early stop"}


def test_busy_collector_port_fails_clearly(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        conf = config(tmp_path, busy.getsockname()[1])
        res = subprocess.run([sys.executable, "-m", "necoma.cli.main", "--config", str(conf), "run"],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "collectors did not start" in res.stderr and "in use" in res.stderr.lower(), res.stderr
