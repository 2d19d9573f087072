"""The configured collectors, run beside `necoma run`'s other stages.

`necoma run` starts `necoma collect` as a child process when necoma.toml names
listeners ([collect] netflow / sflow / syslog). A child rather than a thread:
the collector keeps its own event loop and signal handling (SIGTERM and SIGINT
flush everything received), the parent's batch stages (import, analysis, ...)
cannot stall reception, and a crash of one does not take the other down.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from necoma.collect.endpoints import ListenError

READY_TIMEOUT = 60.0  # seconds for the child to bind its sockets
STOP_TIMEOUT = 300.0  # seconds for its final flush (a big backlog takes a while to write)


def configured(collect) -> bool:
    """Whether necoma.toml names any listener (necoma.config.CollectSettings)."""
    return bool(collect.netflow or collect.sflow or collect.syslog)


class BackgroundCollector:
    """A running `necoma collect` child; its log lines are copied to our stderr."""

    def __init__(self, proc: subprocess.Popen, listening: str) -> None:
        self.proc = proc
        self.listening = listening  # the child's "collecting: ..." line
        self.last_line = ""
        self._pump = threading.Thread(target=self._copy_stderr, name="collector-log", daemon=True)
        self._pump.start()

    @classmethod
    def start(cls, config: Path | None) -> "BackgroundCollector":
        """Start `necoma collect` with the same configuration; return once it listens.

        Raises ListenError with the child's own message when it cannot start
        (busy port, bad address)."""
        cmd = [sys.executable, "-m", "necoma.cli.main"]
        if config is not None:
            cmd += ["--config", str(config)]
        proc = subprocess.Popen(cmd + ["collect"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, errors="replace")
        assert proc.stderr is not None
        deadline = time.monotonic() + READY_TIMEOUT
        seen: list[str] = []
        # The pipe is read line by line until the child says it listens (or dies):
        # `for line in proc.stderr` blocks, so a watchdog kills a child that hangs.
        watchdog = threading.Timer(READY_TIMEOUT, proc.kill)
        watchdog.start()
        try:
            for line in proc.stderr:
                if "collecting:" in line:
                    return cls(proc, line.strip().split("collecting:", 1)[1].strip())
                seen.append(line.rstrip())
        finally:
            watchdog.cancel()
        proc.wait()
        why = next((s for s in reversed(seen) if "error" in s.lower()), seen[-1] if seen else "no output")
        if time.monotonic() >= deadline:
            why = f"not listening after {READY_TIMEOUT:.0f} s"
        raise ListenError(f"the collectors did not start (exit {proc.returncode}): {why}")

    def _copy_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # keeps the pipe drained so the child never blocks on logging
            self.last_line = line.rstrip()
            sys.stderr.write(line)
            sys.stderr.flush()

    def wait(self) -> int:
        """Block until the child exits on its own (it runs until signalled)."""
        return self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, then wait for the final flush; returns the child's exit code."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # a hung flush must not hang `necoma run` forever
                self.proc.wait()
        self._pump.join(5.0)
        return self.proc.returncode


def run_until_signalled(collectors: BackgroundCollector) -> int:
    """Wait for SIGTERM or SIGINT (turned into a clean stop of the child), or for the child to end."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.is_set() and collectors.proc.poll() is None:
            stop.wait(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return collectors.stop()


__all__ = ["BackgroundCollector", "configured", "run_until_signalled"]
