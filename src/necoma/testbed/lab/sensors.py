"""What watches the lab: the router's flow exporter and packet mirror, the collector.

One *sensor set* writes into one directory:

- `router.pcap`: every packet as it enters the router (tcpdump `-i any inbound`,
  Linux cooked framing), the mirror port of a real network; each forwarded
  packet appears once, not once per interface it crosses;
- `victim.pcap`: what reached the victim, the ground truth for "did the attack
  arrive" (later enforcement tests compare it before and after a block);
- softflowd in the router namespace exporting NetFlow v9 for the same ingress
  traffic to the collector namespace;
- `export.pcap`: the export datagrams as the collector received them, captured
  on the collector's link (replayable with tcpreplay, decodable with tshark);
- nfcapd, the reference collector, writing `nfcapd/` (read with `nfdump -R`).

Stop order matters for completeness: the exporter first (on SIGINT softflowd
expires and exports every open flow), then, after the last datagram had time to
arrive, the collector side, then the mirrors (tcpdump flushes on SIGINT).
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

from necoma.testbed.lab import procs
from necoma.testbed.lab.procs import Proc
from necoma.testbed.lab.topology import NETFLOW_PORT, Plan

#: softflowd flow timeouts (seconds). Short, so a live lab feeds a collector within
#: seconds, as a router configured for DDoS detection would (default maxlife is a week).
SOFTFLOWD_TIMEOUTS = {"maxlife": 30, "general": 15, "udp": 10, "tcp": 30, "tcp.rst": 5, "tcp.fin": 5, "expint": 2}

#: Names of the sensor processes, in start order.
SENSORS = ("collector", "export-capture", "router-capture", "victim-capture", "exporter")


def _tcpdump(ifname: str, out: Path, bpf: str, *, linktype: str | None = None) -> list[str]:
    # --immediate-mode: hand each packet over at once; with the default 1 s buffer
    #   timeout, packets still in the kernel ring when SIGINT comes are lost.
    # -U: write each packet at once, so a pcap is readable while the lab runs.
    # -Z root: Debian's tcpdump otherwise drops to user `tcpdump`, which cannot
    #          write into a root-only data dir (pytest's tmp_path is 0700).
    argv = ["tcpdump", "-i", ifname, "-n", "--immediate-mode", "-U", "-Z", "root", "-w", str(out)]
    if linktype:
        argv += ["-y", linktype]
    return argv + [bpf] if bpf else argv


def start_sensors(plan: Plan, ns: dict[str, str], outdir: Path) -> dict[str, Proc]:
    """Start the sensor set writing into `outdir`; return the processes by name."""
    outdir.mkdir(parents=True, exist_ok=True)
    logs = outdir / "logs"
    started: dict[str, Proc] = {}
    collector_net = plan.links["collector"].subnet
    try:
        nfdir = outdir / "nfcapd"
        nfdir.mkdir(exist_ok=True)
        started["collector"] = procs.start(
            "collector", ns["collector"],
            ["nfcapd", "-b", plan.ip("collector"), "-p", str(NETFLOW_PORT), "-w", str(nfdir), "-t", "60"],
            logs / "nfcapd.log")
        started["export-capture"] = procs.start(
            "export-capture", ns["collector"],
            _tcpdump(plan.links["collector"].host_if, outdir / "export.pcap", f"udp and dst port {NETFLOW_PORT}"),
            logs / "export-capture.log")
        # `inbound` keeps each packet once (as it enters the router); the collector link
        # is left out so the mirror holds the network's traffic, not our own telemetry.
        started["router-capture"] = procs.start(
            "router-capture", ns["router"],
            _tcpdump("any", outdir / "router.pcap", f"inbound and not net {collector_net}", linktype="LINUX_SLL"),
            logs / "router-capture.log")
        started["victim-capture"] = procs.start(
            "victim-capture", ns["victim"],
            _tcpdump(plan.links["victim"].host_if, outdir / "victim.pcap", ""),
            logs / "victim-capture.log")
        for name in ("export-capture", "router-capture", "victim-capture"):
            procs.wait_for_log(started[name], "listening on")
        timeouts = [a for k, v in SOFTFLOWD_TIMEOUTS.items() for a in ("-t", f"{k}={v}")]
        started["exporter"] = procs.start(
            "exporter", ns["router"],
            ["softflowd", "-d", "-i", "any", "-v", "9", "-n", plan.collector_netflow,
             # Its own control socket and pidfile: the defaults in /var/run would
             # collide with any other softflowd on the host.
             "-c", str(outdir / "softflowd.ctl"), "-p", str(outdir / "softflowd.pid"),
             *timeouts, f"inbound and not net {collector_net}"],
            logs / "softflowd.log")
        procs.wait_for_log(started["exporter"], "Exporting flows")
        _wait_alive(started["collector"], 0.3)
    except BaseException:
        stop_sensors(started)
        raise
    return started


def _wait_alive(proc: Proc, seconds: float) -> None:
    time.sleep(seconds)
    if not procs.alive(proc):
        raise procs.LabError(f"{proc.name} exited at start; see {proc.log}:\n"
                             + Path(proc.log).read_text(errors="replace")[-500:])


def stop_sensors(sensors: dict[str, Proc], *, settle: float = 1.0) -> list[str]:
    """Stop a sensor set so that every file is complete; return notes on anything that did not stop cleanly."""
    notes: list[str] = []

    def _stop(name: str, sig: int) -> None:
        proc = sensors.get(name)
        if proc and not procs.stop(proc, sig):
            notes.append(f"{name} (pid {proc.pid}) did not stop on {signal.Signals(sig).name}; killed, its output may be short")

    _stop("exporter", signal.SIGINT)
    if "exporter" in sensors:
        time.sleep(settle)  # the final export datagrams are in flight to the collector
    _stop("collector", signal.SIGTERM)  # nfcapd writes its open file on TERM
    for name in ("export-capture", "router-capture", "victim-capture"):
        _stop(name, signal.SIGINT)
    return notes
