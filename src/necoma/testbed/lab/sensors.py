"""What watches the lab: the router's flow exporter and packet mirror, the collector.

One *sensor set* writes into one directory:

- `router.pcap`: every packet as it enters the border router of the victim's
  network (tcpdump `-i any inbound`, Linux cooked framing), the mirror port of
  a real network; each forwarded packet appears once, not once per interface;
- `internet.pcap`: the same for the `internet` router, where the attacker's
  spoofed queries can be seen on their way to the resolvers (the resolvers'
  operators' view; the victim's network never sees them);
- `victim.pcap`: what reached the victim, the ground truth for "did the attack
  arrive" (later enforcement tests compare it before and after a block);
- pmacctd (pmacct's libpcap probe, `nfprobe` plugin) in the border router
  exporting NetFlow v9 for its ingress traffic to the collector namespace;
- `export.pcap`: the export datagrams as the collector received them, captured
  on the collector's link (replayable with tcpreplay, decodable with tshark);
- nfcapd, the reference collector, writing `nfcapd/` (read with `nfdump -R`).

Why pmacct and not softflowd: softflowd 1.1.0 opens its live capture with a
libpcap read timeout of 0, and on these kernels (TPACKET_V3 rings) it then
never sees a packet until a whole ring block fills — a quiet lab exports
nothing at all. pmacctd reads the same interface promptly.

Stop order matters for completeness: the exporter first (pmacct exports its
open flows *only* on SIGINT), then, after the last datagram had time to arrive,
the collector side, then the mirrors (tcpdump flushes on SIGINT).
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

from necoma.testbed.lab import procs
from necoma.testbed.lab.procs import Proc
from necoma.testbed.lab.topology import NECOMA_COLLECT_PORT, NETFLOW_PORT, Plan

#: Exporter flow timeouts (seconds). Short, so a live lab feeds a collector within
#: seconds, as a router configured for DDoS detection would (pmacct's TCP default is an hour).
FLOW_TIMEOUTS = {"maxlife": 30, "general": 15, "udp": 10, "tcp": 30, "tcp.rst": 5, "tcp.fin": 5, "expint": 2}
#: Kernel capture buffer for the mirrors, KiB: bursts (nmap's sweep, a burst of
#: fragmented answers) must not overflow it while tcpdump writes.
CAPTURE_BUFFER_KIB = 32768
#: Bytes kept per packet. The lab's links have MTU 1500 so every packet is whole;
#: the point is the ring: in immediate mode libpcap sizes each ring slot by the
#: snap length, and with tcpdump's default (256 KiB) a 32 MiB ring holds only
#: 128 packets, so a burst is dropped by the kernel.
SNAPLEN = 2048

#: Names of the sensor processes, in start order.
SENSORS = ("collector", "necoma-collect", "export-capture", "router-capture", "internet-capture", "victim-capture",
           "exporter")


def _tcpdump(ifname: str, out: Path, bpf: str, *, linktype: str | None = None) -> list[str]:
    # --immediate-mode: hand each packet over at once; with the default 1 s buffer
    #   timeout, packets still in the kernel ring when SIGINT comes are lost.
    # -U: write each packet at once, so a pcap is readable while the lab runs.
    # -Z root: Debian's tcpdump otherwise drops to user `tcpdump`, which cannot
    #          write into a root-only data dir (pytest's tmp_path is 0700).
    argv = ["tcpdump", "-i", ifname, "-n", "--immediate-mode", "-U", "-B", str(CAPTURE_BUFFER_KIB), "-s", str(SNAPLEN),
            "-Z", "root", "-w", str(out)]
    if linktype:
        argv += ["-y", linktype]
    return argv + [bpf] if bpf else argv


def start_sensors(plan: Plan, ns: dict[str, str], outdir: Path, *,
                  necoma_collect: list[str] | None = None, notes: list[str] | None = None) -> dict[str, Proc]:
    """Start the sensor set writing into `outdir`; return the processes by name.

    `necoma_collect`: argv of a `necoma collect` listening on NECOMA_COLLECT_PORT
    of the collector; the exporter then sends to it as well as to nfcapd. If it
    does not start and `notes` is given, the reason goes there and the set runs without it.
    """
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
        destinations = [plan.collector_netflow]
        if necoma_collect:
            nc = procs.start("necoma-collect", ns["collector"], necoma_collect, logs / "necoma-collect.log")
            try:
                _wait_alive(nc, 1.0)
                started["necoma-collect"] = nc
                destinations.append(f"{plan.ip('collector')}:{NECOMA_COLLECT_PORT}")
            except procs.LabError as exc:
                # The lab still works without it: nfcapd and export.pcap keep the flows.
                if notes is None:
                    raise
                notes.append(str(exc))
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
        started["internet-capture"] = procs.start(
            "internet-capture", ns["internet"],
            _tcpdump("any", outdir / "internet.pcap", "inbound", linktype="LINUX_SLL"),
            logs / "internet-capture.log")
        started["victim-capture"] = procs.start(
            "victim-capture", ns["victim"],
            _tcpdump(plan.links["victim"].host_if, outdir / "victim.pcap", ""),
            logs / "victim-capture.log")
        for name in ("export-capture", "router-capture", "internet-capture", "victim-capture"):
            procs.wait_for_log(started[name], "listening on")
        conf = write_pmacct_conf(outdir / "pmacctd.conf", destinations, f"inbound and not net {collector_net}",
                                 outdir / "pmacctd.pid")
        started["exporter"] = procs.start("exporter", ns["router"], ["pmacctd", "-f", str(conf)],
                                          logs / "pmacctd.log")
        procs.wait_for_log(started["exporter"], "Exporting flows to", timeout=10)
        _wait_alive(started["collector"], 0.3)
    except BaseException:
        stop_sensors(started)
        raise
    return started


def write_pmacct_conf(path: Path, destinations: list[str], bpf: str, pidfile: Path) -> Path:
    """pmacctd config: capture on every router interface, one nfprobe plugin (NetFlow v9) per destination."""
    timeouts = ":".join(f"{k}={v}" for k, v in FLOW_TIMEOUTS.items())
    lines = ["daemonize: false", f"pidfile: {pidfile}", "pcap_interface: any", f"pcap_filter: {bpf}",
             "plugins: " + ", ".join(f"nfprobe[d{i}]" for i in range(len(destinations)))]
    for i, dest in enumerate(destinations):
        lines += [f"nfprobe_receiver[d{i}]: {dest}", f"nfprobe_version[d{i}]: 9", f"nfprobe_timeouts[d{i}]: {timeouts}"]
    path.write_text("\n".join(lines) + "\n")
    return path


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
            notes.append(f"{name} (pid {proc.pid}) did not stop on {signal.Signals(sig).name}; "
                         "killed, its output may be short")

    _stop("exporter", signal.SIGINT)  # pmacct exports open flows only on SIGINT
    if "exporter" in sensors:
        time.sleep(settle)  # the final export datagrams are in flight to the collector
    _stop("collector", signal.SIGTERM)  # nfcapd writes its open file on TERM
    _stop("necoma-collect", signal.SIGINT)  # flushes what it received to the lake
    for name in ("export-capture", "router-capture", "internet-capture", "victim-capture"):
        _stop(name, signal.SIGINT)
    return notes
