"""`lab up`, `lab down`, `lab status`: build, remove and check the namespace lab.

`up` is idempotent (a healthy lab is left alone; a broken one is removed and
rebuilt), `down` removes exactly what the state file records, process by PID
then veth then namespace, and is idempotent too.
"""
from __future__ import annotations

import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from necoma.config import Settings
from necoma.testbed.lab import netns, procs, resolver, sensors
from necoma.testbed.lab import state as state_mod
from necoma.testbed.lab.procs import LabError
from necoma.testbed.lab.state import LabState
from necoma.testbed.lab.topology import AMP_NAME, ROLES, ROUTERS, Plan, default_plan

#: Executables `up` needs; `run` needs the attack tools as well.
UP_TOOLS = ["ip", "unbound", "unbound-checkconf", "pmacctd", "tcpdump", "nfcapd", "dig", "sysctl"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def workdir_of(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "lab"


def _require(tools: list[str]) -> None:
    reason = netns.available()
    if reason:
        raise LabError(f"cannot build the lab here: {reason}")
    missing = netns.missing(tools)
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run scripts/install-system-deps.sh)")


def up(settings: Settings, plan: Plan | None = None) -> tuple[LabState, bool]:
    """Build the lab (or keep the healthy one). Returns (state, created_now)."""
    _require(UP_TOOLS)
    workdir = workdir_of(settings)
    with state_mod.locked(workdir):
        return _up(workdir, plan or default_plan())


def _up(workdir: Path, plan: Plan) -> tuple[LabState, bool]:
    old = state_mod.load(workdir)
    if old is not None:
        if old.complete and all(c.ok for c in status_checks(old, probe=False)):
            return old, False
        _down(workdir)  # half-built or broken: start clean
    lab_id = secrets.token_hex(3)
    st = LabState(lab_id=lab_id, workdir=str(workdir), created=time.time(),
                  namespaces={role: f"necoma-{lab_id}-{role}" for role in ROLES},
                  addresses={role: link.host_ip for role, link in plan.links.items()}
                  | {"resolvers": ",".join(plan.resolvers)})
    try:
        _build(st, plan)
    except BaseException:
        _down(workdir)
        raise
    return st, True


def _build(st: LabState, plan: Plan) -> None:
    ns = st.namespaces
    made: dict[str, str] = {}
    st.namespaces = made  # record each namespace as soon as it exists, never before
    for role in ROLES:
        netns.add(ns[role])
        made[role] = ns[role]
        state_mod.save(st)
        # No IPv6: its autoconfiguration chatter (RS, MLD) would be the only
        # traffic in an idle lab's capture, and none of it is part of a scenario.
        netns.sysctl(ns[role], "net.ipv6.conf.all.disable_ipv6", 1)
        netns.sysctl(ns[role], "net.ipv6.conf.default.disable_ipv6", 1)
    for role in ROUTERS:
        netns.sysctl(ns[role], "net.ipv4.ip_forward", 1)
    # `internet` forwards *spoofed* packets (the victim's source arriving from the
    # attacker's side): no reverse-path filtering, as on the many networks that
    # do not apply BCP 38, which is what makes amplification possible at all.
    for key in ("all", "default"):
        netns.sysctl(ns["internet"], f"net.ipv4.conf.{key}.rp_filter", 0)
    for role, link in plan.links.items():
        netns.connect(ns[link.parent], ns[role], link)
        st.links.append((ns[link.parent], link.parent_if))
        state_mod.save(st)
        if link.parent == "internet":
            netns.sysctl(ns["internet"], f"net.ipv4.conf.{link.parent_if}.rp_filter", 0)
    for addr in plan.extra_resolvers:
        procs.run(["ip", "-n", ns["resolver"], "addr", "add", f"{addr}/{plan.links['resolver'].prefix}",
                   "dev", plan.links["resolver"].host_if])
    # The victim's site: a whole prefix answered by the victim namespace, for the scan.
    procs.run(["ip", "-n", ns["victim"], "route", "add", "local", plan.victim_site, "dev", "lo"])
    for role, routes in plan.routes().items():
        for prefix, via in routes:
            procs.run(["ip", "-n", ns[role], "route", "add", prefix, "via", via])
    st.addresses["victim_site"] = plan.victim_site

    workdir = Path(st.workdir)
    rdir = workdir / "resolver"
    conf = resolver.write_conf(rdir, plan.resolvers)
    procs.run(["unbound-checkconf", str(conf)])
    st.procs["unbound"] = procs.start("unbound", ns["resolver"], ["unbound", "-d", "-c", str(conf)],
                                      rdir / "unbound.stdout")
    state_mod.save(st)
    _wait_resolver(st)

    live = workdir / "live"
    st.sensors_dir = str(live)
    st.procs.update(sensors.start_sensors(plan, ns, live))
    st.complete = True
    state_mod.save(st)


def swap_sensors(st: LabState, outdir: Path, *, necoma_collect: list[str] | None = None,
                 notes: list[str] | None = None) -> None:
    """Stop the running sensor set (its files complete) and start a new one writing into `outdir`."""
    running = {k: p for k, p in st.procs.items() if k in sensors.SENSORS}
    stop_notes = sensors.stop_sensors(running)
    if notes is not None:
        notes.extend(stop_notes)
    for k in running:
        del st.procs[k]
    st.sensors_dir = None
    state_mod.save(st)
    st.procs.update(sensors.start_sensors(default_plan(), st.namespaces, outdir, necoma_collect=necoma_collect,
                                          notes=notes))
    st.sensors_dir = str(outdir)
    state_mod.save(st)


def _dig_big(ns: str, server: str) -> tuple[bool, str]:
    """Ask the resolver for the big TXT set over UDP; ok if the answer is over 512 bytes."""
    out = procs.run(["ip", "netns", "exec", ns, "dig", "+notcp", "+ignore", "+bufsize=4096", "+tries=1",
                     "+time=1", f"@{server}", AMP_NAME, "TXT"], check=False, timeout=5).stdout
    for line in out.splitlines():
        if "MSG SIZE" in line:
            size = int(line.rsplit(":", 1)[1])
            return size > 512, f"{AMP_NAME} TXT answer is {size} bytes"
    return False, "no answer from the resolver"


def _wait_resolver(st: LabState, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = _dig_big(st.namespaces["resolver"], st.addresses["resolver"])
        if ok:
            return
        if not procs.alive(st.procs["unbound"]):
            break
        time.sleep(0.2)
    raise LabError(f"unbound did not answer ({detail}); see {st.procs['unbound'].log} and "
                   f"{Path(st.workdir) / 'resolver' / 'unbound.log'}")


def status_checks(st: LabState, *, probe: bool = True) -> list[Check]:
    """Health of every part `up` made. `probe` also asks the resolver through the router."""
    checks: list[Check] = []
    for role, name in st.namespaces.items():
        checks.append(Check(f"namespace {role}", netns.exists(name), name))
    for ns, ifname in st.links:
        checks.append(Check(f"link {ifname}", netns.exists(ns) and ifname in netns.link_names(ns), ns))
    for role in ROUTERS:
        name = st.namespaces.get(role)
        if name and netns.exists(name):
            fwd = netns.read_sysctl(name, "net.ipv4.ip_forward")
            checks.append(Check(f"{role} forwarding", fwd == "1", f"net.ipv4.ip_forward={fwd}"))
    for name, proc in st.procs.items():
        checks.append(Check(f"process {name}", procs.alive(proc), f"pid {proc.pid} in {proc.ns}"))
    if probe and all(c.ok for c in checks) and "victim" in st.namespaces:
        # From the victim, so the path through both routers is checked too.
        ok, detail = _dig_big(st.namespaces["victim"], st.addresses["resolver"])
        checks.append(Check("open resolver answers big", ok, detail))
    if not st.complete:
        checks.append(Check("build complete", False, "`up` did not finish; run `lab down` then `lab up`"))
    return checks


def status(settings: Settings, *, probe: bool = True) -> tuple[LabState | None, list[Check]]:
    st = state_mod.load(workdir_of(settings))
    if st is None:
        return None, []
    return st, status_checks(st, probe=probe)


def down(settings: Settings) -> list[str]:
    """Remove everything the state file records. Returns what was removed; raises if something stayed."""
    workdir = workdir_of(settings)
    with state_mod.locked(workdir):
        return _down(workdir)


def _down(workdir: Path) -> list[str]:
    st = state_mod.load(workdir)
    if st is None:
        return []
    done: list[str] = []
    problems: list[str] = []
    # Sensors first and in their order, so a live capture ends with complete files.
    sensor_procs = {k: p for k, p in st.procs.items() if k in sensors.SENSORS}
    for note in sensors.stop_sensors(sensor_procs, settle=0.2):
        problems.append(note)
    for name, proc in st.procs.items():
        if name not in sensor_procs:
            procs.stop(proc, signal.SIGTERM)
        if procs.alive(proc) or procs.group(proc):
            problems.append(f"process {name} (pid {proc.pid}) or its helpers still running")
        else:
            done.append(f"process {name} (pid {proc.pid})")
    for ns, ifname in st.links:
        netns.delete_link(ns, ifname)
        done.append(f"link {ifname}")
    for role, name in st.namespaces.items():
        try:
            netns.delete(name)
            done.append(f"namespace {name}")
        except LabError as exc:
            problems.append(str(exc))
        if netns.exists(name):
            problems.append(f"namespace {name} still exists")
    if problems:
        raise LabError("lab down left things behind:\n  " + "\n  ".join(problems))
    state_mod.remove(workdir)
    return done
