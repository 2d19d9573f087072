"""The BGP speakers necoma runs for its FlowSpec/RTBH points: see, start, stop, restart.

A speaker necoma starts (gobgpd with `manage = true`, or ExaBGP) outlives the
command that started it, on purpose: the BGP session must stay up between
one-shot commands, or the peer would withdraw every rule. This module is how an
operator deals with that process. It never builds a point's driver just to look
(building one starts its speaker); status reads the pid file and asks the API
only when the speaker runs. Stopping drops the session, so the peer withdraws
everything the speaker announced; every applied action there gets an audit row
saying so, and a restart re-announces them through reconcile.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from necoma.protect.drivers.bgp_daemon import ManagedDaemon
from necoma.protect.model import DriverError

BGP_DRIVERS = ("gobgp", "exabgp")
# gobgp's apipb.PeerState.SessionState
_GOBGP_STATES = {0: "unknown", 1: "idle", 2: "connect", 3: "active", 4: "opensent", 5: "openconfirm", 6: "established"}


class NotASpeaker(ValueError):
    """The point is not a BGP point, or its speaker is not necoma's to start or stop."""


@dataclass
class SpeakerStatus:
    point: str
    driver: str
    managed: bool  # necoma runs the process (else the operator's gobgpd, reached through its API)
    pid: int | None
    run_dir: str | None
    sessions: list[tuple[str, str]] = field(default_factory=list)  # (peer address, BGP state)
    announced: set[str] | None = None  # action ids the speaker holds (None: not asked, it is down)
    error: str | None = None
    log_tail: str = ""

    @property
    def running(self) -> bool:
        return self.pid is not None or (not self.managed and self.error is None)


def options(points, point: str) -> dict[str, Any]:
    opts = points.configs.get(point)
    if opts is None:
        raise NotASpeaker(f"point {point!r} is not configured in [protect.points]")
    if opts["driver"] not in BGP_DRIVERS:
        raise NotASpeaker(f"point {point!r} is a {opts['driver']} point, not a BGP speaker (gobgp, exabgp)")
    return opts


def daemon(points, point: str) -> ManagedDaemon | None:
    """The process necoma runs for the point, or None when the operator runs the speaker."""
    opts = options(points, point)
    if opts["driver"] == "gobgp" and not opts.get("manage"):
        return None
    if "run_dir" not in opts:
        raise NotASpeaker(f"point {point!r}: a speaker necoma runs needs option run_dir")
    return ManagedDaemon("gobgpd" if opts["driver"] == "gobgp" else "exabgp", Path(opts["run_dir"]))


def _sessions(driver) -> list[tuple[str, str]]:
    """(peer, state) of every neighbor, as the speaker itself reports it."""
    from necoma.protect.drivers.bgp_speaker import run

    sp = driver.speaker
    if hasattr(sp, "base"):  # GoBgpSpeaker: the gobgp CLI
        out = run([*sp.base, "-j", "neighbor"], f"{sp.api}: list neighbors")
        peers = json.loads(out) if out.strip() else []
        return [(p["state"]["neighbor_address"], _GOBGP_STATES.get(p["state"].get("session_state", 0), "unknown"))
                for p in peers]
    out = []
    for line in sp.command("show neighbor summary"):  # ExaBGP: "Peer AS up/down state | #sent #recvd"
        words = line.split()
        if words and re.fullmatch(r"[0-9a-fA-F.:]+", words[0]) and ":" not in words[0][-1:] and len(words) >= 4:
            out.append((words[0], words[3].lower()))
    return out


def status(points, point: str) -> SpeakerStatus:
    opts = options(points, point)
    d = daemon(points, point)
    st = SpeakerStatus(point, opts["driver"], d is not None, d.pid() if d else None,
                       opts.get("run_dir"))
    if d is not None:
        st.log_tail = d.log_tail(400)
        if st.pid is None:
            return st  # down: asking would start it
    try:
        drv = points.real(point)
        st.sessions = _sessions(drv)
        st.announced = drv.installed()
    except (DriverError, ValueError, OSError) as exc:
        st.error = str(exc)
    return st


def stop(protector, point: str, who: str) -> int | None:
    """Stop the speaker necoma runs for the point; return the pid it had (None: it was not running).
    Each action applied there for real gets an audit row: the peer no longer has it."""
    d = daemon(protector.points, point)
    if d is None:
        raise NotASpeaker(f"point {point!r} uses the operator's gobgpd (manage = false): necoma does not run it, "
                          "stop it the way it was started")
    pid = d.pid()
    d.stop()
    protector.points.forget(point)
    if pid is not None:
        for r in protector.store.find(("applied",), point=point):
            if not r.action.dry_run:
                protector.store.remark(r.action.id, who, f"speaker of {point} (pid {pid}) stopped by {who}: the BGP "
                                       "session dropped and the peer withdrew this rule; `necoma actions speaker "
                                       "start` or `reconcile` announces it again")
    return pid


def start(protector, point: str) -> tuple[int | None, bool]:
    """Start the speaker (by building the driver, which writes its config from the current options);
    (pid, started now). A new speaker announces nothing: the caller reconciles the point next."""
    d = daemon(protector.points, point)
    if d is None:
        raise NotASpeaker(f"point {point!r} uses the operator's gobgpd (manage = false): necoma does not start it")
    was = d.pid()
    protector.points.real(point)  # raises DriverError with the log tail if it cannot start
    return d.pid(), was is None
