"""Commands and long-running processes inside the lab's namespaces.

Background processes are recorded by PID *and* kernel start time, so `down`
never signals a stranger that reused a PID after the lab's process died; and
they are stopped by PID only, never by name (other labs and other people's
daemons of the same name may be running on the host).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class LabError(Exception):
    """A lab operation failed; the message says which step and why."""


def run(cmd: list[str], *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a short command and capture its output; raise LabError with its stderr on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]}: not installed (run scripts/install-system-deps.sh)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from None
    if check and proc.returncode != 0:
        raise LabError(f"failed ({proc.returncode}): {' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def in_ns(ns: str, cmd: list[str]) -> list[str]:
    # `ip netns exec` execs the command in place (no extra fork), so the PID
    # Popen returns is the tool's own PID, which is what `down` must signal.
    return ["ip", "netns", "exec", ns, *cmd]


@dataclass
class Proc:
    """A background process the lab started."""

    name: str        # role in the lab, e.g. "unbound", "exporter"
    ns: str
    pid: int
    start_ticks: int  # /proc/PID/stat field 22: tells a live PID from a reused one
    argv: list[str]
    log: str
    #: The Popen handle when this process started it (for exit codes); never saved.
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "ns", "pid", "start_ticks", "argv", "log")}

    @classmethod
    def from_json(cls, data: dict) -> "Proc":
        return cls(**{k: data[k] for k in ("name", "ns", "pid", "start_ticks", "argv", "log")})


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks) of a PID, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def _reap(pid: int) -> None:
    # When the lab was started by this very process (tests, `lab run`), a dead
    # child stays a zombie until waited for; reap it so it counts as gone.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(proc: Proc) -> bool:
    if proc.popen is not None:
        if proc.popen.poll() is not None:  # reaps, and keeps the exit code for wait()
            return False
    else:
        _reap(proc.pid)
    st = _stat(proc.pid)
    return st is not None and st[0] not in ("Z", "X") and st[1] == proc.start_ticks


def start(name: str, ns: str, argv: list[str], log: Path, *, env: dict[str, str] | None = None) -> Proc:
    """Start `argv` in namespace `ns`, detached from our session, output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            p = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env)
        except FileNotFoundError:
            raise LabError(f"{argv[0]}: not installed (run scripts/install-system-deps.sh)") from None
    st = _stat(p.pid)
    if st is None:
        raise LabError(f"{name}: exited at once; see {log}")
    return Proc(name, ns, p.pid, st[1], argv, str(log), popen=p)


def wait(proc: Proc, timeout: float) -> int | None:
    """Wait for a process to end; its exit code if we started it, None if it had to be killed or is not ours."""
    if proc.popen is not None:
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(proc, signal.SIGTERM, timeout=3)
            return None
    deadline = time.monotonic() + timeout
    while alive(proc) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(proc):
        stop(proc, signal.SIGTERM, timeout=3)
    return None


def wait_for_log(proc: Proc, needle: str, timeout: float = 5.0) -> None:
    """Wait until `needle` appears in the process's log (a readiness line), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in Path(proc.log).read_text(errors="replace"):
            return
        if not alive(proc):
            break
        time.sleep(0.05)
    tail = Path(proc.log).read_text(errors="replace")[-500:]
    raise LabError(f"{proc.name} in {proc.ns} not ready (waiting for {needle!r}); log {proc.log}:\n{tail}")


def stop(proc: Proc, sig: int = signal.SIGINT, timeout: float = 10.0) -> bool:
    """Signal the process (by PID, only if it is still ours), wait, escalate to SIGKILL.

    SIGINT first: tcpdump flushes its pcap on it, pmacct exports its open
    flows *only* on it. Helpers the process forked (pmacct's plugins) are in
    its process group, which the lab created (`start_new_session`): whatever
    of the group outlives the leader is ended too. Returns True if the process
    ended by the first signal (its output is complete).
    """
    clean = True
    if alive(proc):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(proc):
            clean = False
            os.kill(proc.pid, signal.SIGKILL)
            for _ in range(40):
                if not alive(proc):
                    break
                time.sleep(0.05)
    _end_group(proc)
    return clean


def group(proc: Proc) -> list[int]:
    """Live PIDs in the process group the lab made for `proc` (started no earlier than it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        # rest[2] is the process group; rest[19] the start time, which guards against a reused group id.
        if int(rest[2]) == proc.pid and rest[0] not in ("Z", "X") and int(rest[19]) >= proc.start_ticks:
            pids.append(int(entry.name))
    return pids


def _end_group(proc: Proc, grace: float = 5.0) -> None:
    # Helpers may still be finishing (pmacct's plugins export their last flows
    # after the core has gone): give them time before signalling them.
    deadline = time.monotonic() + grace
    while group(proc) and time.monotonic() < deadline:
        time.sleep(0.05)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        members = group(proc)
        if not members:
            return
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while group(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
