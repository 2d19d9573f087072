"""Lab scenarios: real attack tools against the running lab, recorded and labelled.

`dns-amplification` (the first scenario) runs, all from the attacker namespace
and at the same time:

- scapy: spoofed DNS TXT queries with EDNS0 (source = the victim) to the eight
  open-resolver addresses of Unbound, whose ~3.7 kB answers go to the victim
  as IPv4 fragments;
- hping3 `--udp -f -d 1200 -m 400`: a UDP fragment flood at the victim;
- nmap `-sS -p 443` over the victim's /20 (optional): a TLS port sweep.

A run gets its own directory under `<data_dir>/lab/runs/` with a fresh sensor
set (border and internet mirror pcaps, victim pcap, NetFlow export pcap,
nfcapd files, `necoma collect` into the lake when available), a `truth.json`
and a `run.json` summary; afterwards the border pcap is imported into the lake
and the live sensors are restarted.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from necoma.config import Settings
from necoma.testbed.lab import collector, lab, netns, procs
from necoma.testbed.lab import state as state_mod
from necoma.testbed.lab import truth as truth_mod
from necoma.testbed.lab.procs import LabError, Proc
from necoma.testbed.lab.state import LabState
from necoma.testbed.lab.topology import AMP_NAME, NECOMA_COLLECT_PORT, Plan, default_plan

#: Tools the scenario runs in the attacker namespace.
ATTACK_TOOLS = ["hping3", "nmap"]
#: Seconds after the last attack packet before the sensors stop, so the last
#: answers and fragments are through the router and in every capture.
DRAIN_SECONDS = 1.0


@dataclass
class RunOptions:
    seconds: float = 5.0
    #: Spoofed queries per second (scapy paces them; the real rate may be a little lower).
    query_rate: float = 200.0
    #: hping3 packets per second; each 1228-byte packet leaves as 4 fragments of <= 400 bytes.
    #: 1000/s makes 4000 fragments a second: a 3-second run passes the 10 000-fragment
    #: floor of the udp_fragmentation detector.
    frag_rate: float = 1000.0
    scan: bool = True
    import_pcap: bool = True
    seed: int = 1


@dataclass
class RunResult:
    scenario: str
    rundir: Path
    start: float
    end: float
    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    imported: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "rundir": str(self.rundir), "start": self.start, "end": self.end,
                "files": self.files, "counts": self.counts, "imported": self.imported, "notes": self.notes}


def _require_healthy(settings: Settings) -> LabState:
    st, checks = lab.status(settings)
    if st is None:
        raise LabError("the lab is not up: run `necoma testbed lab up` first")
    bad = [f"{c.name} ({c.detail})" for c in checks if not c.ok]
    if bad:
        raise LabError("the lab is not healthy: " + "; ".join(bad) + " — `lab up` rebuilds it")
    missing = netns.missing(ATTACK_TOOLS) + (["scapy (pip)"] if importlib.util.find_spec("scapy") is None else [])
    if missing:
        raise LabError(f"missing attack tools: {', '.join(missing)} (run scripts/install-system-deps.sh)")
    return st


def _attack(st: LabState, name: str, argv: list[str], logdir: Path) -> Proc:
    proc = procs.start(name, st.namespaces["attacker"], argv, logdir / f"{name}.log")
    st.procs[name] = proc  # recorded, so `lab down` stops it if this process dies mid-run
    state_mod.save(st)
    return proc


def run_dns_amplification(settings: Settings, opts: RunOptions) -> RunResult:
    st = _require_healthy(settings)
    plan = default_plan()
    workdir = Path(st.workdir)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rundir = workdir / "runs" / f"{stamp}-dns-amplification"
    rundir.mkdir(parents=True, exist_ok=False)
    logs = rundir / "logs"
    result = RunResult("dns-amplification", rundir, 0.0, 0.0)

    ncollect: list[str] | None = None
    why_not = collector.available()
    if why_not is None:
        conf = collector.write_settings(settings, rundir / "necoma.toml")
        ncollect = collector.argv(conf, f"{plan.ip('collector')}:{NECOMA_COLLECT_PORT}",
                                  rundir / "collect-stats.json")
    else:
        result.notes.append(f"flows not collected into the lake: {why_not} (nfcapd files kept)")

    try:
        lab.swap_sensors(st, rundir, necoma_collect=ncollect, notes=result.notes)
        started = _launch_tools(st, plan, opts, logs)
        ended = _wait_all(started, timeout=opts.seconds * 3 + 30)
        for key, (_, proc) in started.items():
            code = proc.popen.returncode if proc.popen else None
            # hping3 exits 1 when nothing answered, which is normal for a flood.
            if code is None or (code != 0 and not (key == "frag" and code == 1)):
                result.notes.append(f"{proc.name} ended with {code}; see {proc.log}")
        result.start = min(t for t, _ in started.values())
        result.end = max(ended.values())
        time.sleep(DRAIN_SECONDS)
    finally:
        for name in [k for k in st.procs if k.startswith("attack-")]:
            procs.stop(st.procs.pop(name))
        # Complete files in the run directory, then the lab back to its idle sensor set.
        try:
            lab.swap_sensors(st, workdir / "live", notes=result.notes)
        except LabError as exc:
            result.notes.append(f"live sensors did not restart: {exc}")

    sent = _spoof_summary(logs / "attack-spoof.log")
    result.counts["spoofed_queries"] = sent.get("sent", 0)
    result.counts["frag_packets"] = _frag_count(opts)
    result.counts["netflow_records_nfcapd"] = _nfdump_count(rundir / "nfcapd")
    result.files = {k: str(rundir / f) for k, f in [
        ("router_pcap", "router.pcap"), ("internet_pcap", "internet.pcap"), ("victim_pcap", "victim.pcap"),
        ("export_pcap", "export.pcap"),
        ("nfcapd", "nfcapd"), ("truth", "truth.json")]}
    _write_truth(st, result, started, ended, opts, sent)
    if opts.import_pcap:
        _import_pcap(settings, rundir / "router.pcap", result)
    (rundir / "run.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _frag_count(opts: RunOptions) -> int:
    return max(1, int(opts.frag_rate * opts.seconds))


def _launch_tools(st: LabState, plan: Plan, opts: RunOptions, logs: Path) -> dict[str, tuple[float, Proc]]:
    """Start the attack tools side by side; returns name -> (when it started sending, process)."""
    victim = plan.ip("victim")
    started: dict[str, tuple[float, Proc]] = {}
    spoof = _attack(st, "attack-spoof", [
        sys.executable, "-m", "necoma.testbed.lab.spoof", "--victim", victim, "--resolver", ",".join(plan.resolvers),
        "--qname", AMP_NAME, "--qtype", "TXT", "--rate", str(opts.query_rate), "--seconds", str(opts.seconds),
        "--seed", str(opts.seed)], logs)
    # scapy's import and crafting take seconds: start the others when it starts sending.
    procs.wait_for_log(spoof, '"ready"', timeout=60)
    started["spoof"] = (time.time(), spoof)
    started["frag"] = (time.time(), _attack(st, "attack-frag", [
        "hping3", "--udp", "-f", "-d", "1200", "-m", "400", "-p", "9",
        "-i", f"u{int(1e6 / opts.frag_rate)}", "-c", str(_frag_count(opts)), victim], logs))
    if opts.scan:
        started["scan"] = (time.time(), _attack(st, "attack-scan", [
            # -Pn: no ping sweep first; --max-retries 0 -T4 --min-rate: one SYN per
            # address, a scanner's fast sweep. -n: no reverse DNS (it would leave the lab).
            "nmap", "-sS", "-p", "443", "-n", "-Pn", "-T4", "--max-retries", "0", "--min-rate", "2000",
            plan.victim_site], logs))
    return started


def _wait_all(started: dict[str, tuple[float, Proc]], timeout: float) -> dict[str, float]:
    """Wait for every attack tool; return when each was seen to end (to ~50 ms), killing stragglers."""
    ended: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(started) and time.monotonic() < deadline:
        for key, (_, proc) in started.items():
            if key not in ended and not procs.alive(proc):
                ended[key] = time.time()
        time.sleep(0.05)
    for key, (_, proc) in started.items():
        if key not in ended:
            procs.stop(proc, timeout=3)
            ended[key] = time.time()
    return ended


def _spoof_summary(log: Path) -> dict:
    """The JSON line spoof.py prints at the end, or {} if it did not finish."""
    for line in reversed(log.read_text(errors="replace").splitlines() if log.exists() else []):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {}


def _nfdump_count(nfdir: Path) -> int:
    """Flow records nfcapd stored (the reference collector's count)."""
    try:
        out = subprocess.run(["nfdump", "-R", str(nfdir), "-q", "-o", "csv"], capture_output=True, text=True,
                             timeout=30).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return 0
    # Data lines start with a timestamp; nfdump 1.7 prints a csv header and no summary with -q.
    return sum(1 for line in out.splitlines() if line[:1].isdigit())


def _write_truth(st: LabState, result: RunResult, started: dict[str, tuple[float, Proc]],
                 ended: dict[str, float], opts: RunOptions, sent: dict) -> None:
    plan = default_plan()
    attacker, victim = plan.ip("attacker"), plan.ip("victim")
    # Answers keep arriving for a moment after the last query: the attack ends when they do.
    span = {k: (t, ended[k] + DRAIN_SECONDS) for k, (t, _) in started.items()}
    if "start" in sent:  # the spoofer's own clock: when the first and last query left
        span["spoof"] = (sent["start"], sent["end"] + DRAIN_SECONDS)
    hosts = {role: plan.ip(role) for role in plan.links} | {"router": plan.links["victim"].parent_ip}
    truth = truth_mod.LabTruth("lab-dns-amplification", opts.seed, st.lab_id, hosts, files={
        "router.pcap": "every packet entering the victim network's border router (tcpdump -i any inbound)",
        "internet.pcap": "every packet entering the internet router: spoofed queries on their way to the resolvers",
        "victim.pcap": "every packet at the victim's interface",
        "export.pcap": "NetFlow v9 datagrams from pmacctd in the router, as the collector received them",
        "nfcapd": "the same flows as stored by nfcapd (nfdump -R)"},
        exporters={plan.exporter_ip: {"format": "netflow9", "sampling_rate": 1, "file": "export.pcap",
                                      "site": "border of the victim's network"}})
    # The attacker is named although its address never appears as a source:
    # detectors are scored on the victim and the amplifier (scoring.SPECS).
    truth.add("dns_amplification", *span["spoof"], attackers=[attacker], victims=[victim],
              amplifiers=plan.resolvers, domains=[AMP_NAME],
              details={"qtypes": [16], "queries_sent": sent.get("sent", 0), "spoofed_source": victim,
                       "edns_udp_size": 4096, "fragments_per_response": 3, "victim_sent_queries": False})
    truth.add("udp_fragmentation", *span["frag"], attackers=[attacker], victims=[victim],
              details={"datagrams": _frag_count(opts), "udp_length": 1208,
                       "fragment_mtu": 400, "fragments_per_datagram": 4, "dport": 9})
    if "scan" in span:
        bits = 32 - int(plan.victim_site.split("/")[1])
        truth.add("ssl_scan", *span["scan"], scanners=[attacker],
                  details={"ports": [443], "targets": 2 ** bits, "target_prefixes_24": 2 ** max(0, bits - 8),
                           "target_network": plan.victim_site})
    truth_mod.write(truth, result.rundir / "truth.json")


def _import_pcap(settings: Settings, pcap: Path, result: RunResult) -> None:
    try:
        from necoma.collect.importing import ImportFailed, run_import

        report = run_import("pcap", pcap, settings)
    except ImportFailed as exc:
        result.notes.append(f"router pcap not imported: {exc}")
        return
    except ImportError as exc:  # the pcap importer is not in this build yet
        result.notes.append(f"router pcap not imported: pcap importer unavailable ({exc})")
        return
    result.imported = dict(report.rows)
    result.notes.extend(report.notes)


#: Lab scenarios by name: what `necoma testbed lab run NAME` runs.
SCENARIOS: dict[str, Callable[[Settings, RunOptions], RunResult]] = {
    "dns-amplification": run_dns_amplification,
}


def run(settings: Settings, name: str, opts: RunOptions | None = None) -> RunResult:
    try:
        fn = SCENARIOS[name]
    except KeyError:
        raise LabError(f"unknown lab scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None
    # One run at a time, and no `down` under a running scenario.
    with state_mod.locked(lab.workdir_of(settings)):
        return fn(settings, opts or RunOptions())
