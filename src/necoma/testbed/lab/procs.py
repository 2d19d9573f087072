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
from dataclasses import asdict, dataclass
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

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Proc":
        return cls(**data)


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
    return Proc(name, ns, p.pid, st[1], argv, str(log))


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

    SIGINT first: tcpdump flushes its pcap on it and softflowd exports every
    open flow on it (pmacct flushes *only* on SIGINT). Returns True if the
    process ended by the first signal (its output is complete).
    """
    if not alive(proc):
        return True
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(proc):
            return True
        time.sleep(0.05)
    if alive(proc):
        os.kill(proc.pid, signal.SIGKILL)
        for _ in range(40):
            if not alive(proc):
                break
            time.sleep(0.05)
    return False
