"""A BGP speaker process that necoma starts and that outlives it (gobgpd or ExaBGP).

The speaker must keep its session and routes while necoma's one-shot commands
(`necoma actions approve`, the expiry sweep) come and go, so it is started in its
own session and found again through a pid file in the point's run_dir. Stopping it
drops the BGP session, which withdraws everything it announced at the peer.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _is_ours(pid: int, name: str) -> bool:
    """The pid is alive and runs our daemon: not a zombie whose parent has not reaped it yet (a stopped
    speaker would look alive), nor an unrelated process that reused a stale pid file's number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc to ask (not Linux): trust the signal check
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and name in cmdline


class ManagedDaemon:
    def __init__(self, name: str, run_dir: Path) -> None:
        self.name, self.run_dir = name, run_dir
        self.pidfile, self.logfile = run_dir / f"{name}.pid", run_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None  # set when this process started it (so it can be reaped)

    def pid(self) -> int | None:
        """The running daemon's pid, or None (never started, exited, or a stale pid file)."""
        if self.proc is not None:
            return None if self.proc.poll() is not None else self.proc.pid
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid if _is_ours(pid, self.name) else None

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> bool:
        """Start it unless it runs already; True when started now."""
        if self.pid():
            return False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                         cwd=self.run_dir, start_new_session=True)
        self.pidfile.write_text(str(self.proc.pid))
        return True

    def log_tail(self, chars: int = 800) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid():
                os.kill(pid, signal.SIGKILL)
            if self.proc is not None:
                self.proc.wait(5)
        self.pidfile.unlink(missing_ok=True)
