#!/usr/bin/env python3
"""Live NetFlow v9 collection: `necoma collect` against nfcapd, on the same datagrams.

1. Capture once: softflowd reads a real pcap and exports NetFlow v9 to a
   plain UDP socket here; the datagrams are kept in memory.
2. Replay: a paced sender (this process) sends them over loopback at each
   offered rate, cycling through the capture and rewriting the v9 sequence
   number so every copy is a new, in-order export packet.
3. For each rate, each collector runs alone (the machine has 2 cores: one for
   the sender, one for the collector), with the same socket buffer request.
   Reported: records offered, decoded and stored; stored records/s over the
   send time; CPU seconds of the collector per million stored records (from
   the kernel's rusage of the child, minus its CPU before the first datagram,
   so Python's start-up is not counted); loss %; the collector's peak RSS
   (VmHWM once it has caught up, before the final flush).

necoma: decoded = `records` in its status file, stored = rows in the lake.
nfcapd: stored = `nfdump -R DIR -I` Flows (nfcapd has no separate decoded count).

Usage:
    .venv/bin/python bench/bench_collect_vs_nfcapd.py [--pcap FILE] [--rates 50000,100000,...]
        [--seconds 5] [--repeat-80 2] [--json OUT]
Needs softflowd, nfcapd and nfdump (Debian packages softflowd, nfdump). Loopback only.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PCAP = REPO.parent / "shared" / "data" / "pcap" / "pathspider_real.pcap.gz"
RCVBUF = 32 * 1024 * 1024  # same request for both collectors (both are capped by net.core.rmem_max)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ capture


def capture_v9(pcap: Path, workdir: Path) -> list[bytes]:
    """softflowd -r PCAP -v 9 → the export datagrams, in order."""
    if pcap.suffix == ".gz":
        plain = workdir / pcap.stem
        with gzip.open(pcap) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        pcap = plain
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("127.0.0.1", 0))
    got: list[bytes] = []
    done = threading.Event()

    def receive() -> None:
        sock.settimeout(0.2)
        while True:
            try:
                got.append(sock.recv(65535))
            except socket.timeout:
                if done.is_set():
                    return

    reader = threading.Thread(target=receive)
    reader.start()
    subprocess.run(["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{sock.getsockname()[1]}", "-v", "9", "-d"],
                   check=True, capture_output=True)
    done.set()
    reader.join()
    sock.close()
    return got


def v9_data_records(datagrams: list[bytes]) -> list[int]:
    """Data records per datagram, from the v9 templates (independent of both collectors)."""
    lengths: dict[int, int] = {}
    counts = []
    for d in datagrams:
        n, off = 0, 20
        while off + 4 <= len(d):
            set_id, length = struct.unpack_from("!HH", d, off)
            if length < 4:
                break
            if set_id == 0:  # template set
                p, end = off + 4, off + length
                while p + 4 <= end:
                    tid, fields = struct.unpack_from("!HH", d, p)
                    lengths[tid] = sum(struct.unpack_from("!H", d, p + 6 + 4 * k)[0] for k in range(fields))
                    p += 4 + 4 * fields
            elif set_id >= 256 and lengths.get(set_id):
                n += (length - 4) // lengths[set_id]
            off += length
        counts.append(n)
    return counts


# ------------------------------------------------------------------ sender


def send_paced(datagrams: list[bytes], port: int, rate_dps: float, seconds: float) -> tuple[int, float]:
    """Send for `seconds` at `rate_dps` datagrams/s (0 = as fast as possible); (sent, elapsed)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RCVBUF)
    dest = ("127.0.0.1", port)
    bufs = [bytearray(d) for d in datagrams]
    total = int(rate_dps * seconds)
    pack, send, nbuf = struct.pack_into, sock.sendto, len(bufs)
    t0 = time.perf_counter()
    i = 0
    while True:
        elapsed = time.perf_counter() - t0
        if rate_dps:
            if i >= total:
                break
            due = min(total, int(elapsed * rate_dps) + 1)
            if due <= i:
                time.sleep(0.0005)
                continue
        elif elapsed >= seconds:
            break
        else:
            due = i + 1024
        while i < due:
            b = bufs[i % nbuf]
            pack("!I", b, 12, (i + 1) & 0xFFFFFFFF)  # v9 package_sequence: one per export packet
            try:
                send(b, dest)
            except OSError:  # ENOBUFS: lost on our side, still counted as offered
                pass
            i += 1
    elapsed = time.perf_counter() - t0
    sock.close()
    return i, elapsed


# ------------------------------------------------------------------ collectors


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM). Not rusage's ru_maxrss: that one
    survives exec, so a child would report its Python parent's size at fork."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop_and_reap(proc: subprocess.Popen, sig: int, timeout: float) -> float:
    """Signal the child, reap it, and return its total CPU seconds from the kernel's rusage.

    os.kill, not proc.send_signal/kill: those call poll() first, which reaps a child
    that has already exited, and a later wait4 then fails with ChildProcessError
    (seen once at 1.6 M/s). An unreaped child keeps its pid, so os.kill is safe.
    """
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    else:
        os.kill(proc.pid, signal.SIGKILL)
        _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, -sig):
        print(f"  warning: {proc.args[0]} exited with status {proc.returncode}", file=sys.stderr)
    return ru.ru_utime + ru.ru_stime


def wait_idle(pid: int, quiet: float = 0.6, timeout: float = 120.0) -> float:
    """Until the process has used no CPU for `quiet` seconds (it has caught up with its
    socket); returns when it was last busy (time.time())."""
    last, since, deadline = cpu_seconds(pid), time.time(), time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now - last > 0.01:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            break
    return since


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the socket bound to 127.0.0.1:port (receive buffer full)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == want:
            return int(f[-1])
    return -1


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Result:
    collector: str
    offered_rate: int  # records/s asked of the sender (0 = flood)
    sent_records: int
    send_seconds: float
    decoded: int
    stored: int
    cpu_seconds: float
    busy_seconds: float  # from the first datagram sent until the collector went idle (incl. its last flush)
    kernel_drops: int  # datagrams dropped by the kernel (socket buffer full), from /proc/net/udp
    peak_rss_mib: float  # the collector's peak resident memory (VmHWM) once it caught up

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent_records - self.stored) / self.sent_records if self.sent_records else 0.0

    @property
    def stored_per_s(self) -> float:
        """Stored records over the send time. Above a collector's capacity this includes the
        backlog its socket buffer held when the sender stopped (at most ~8 MiB here)."""
        return self.stored / self.send_seconds if self.send_seconds else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds / self.stored * 1e6 if self.stored else float("nan")


# necoma's lake codec: zstd (its default) or LZ4 ([lake] compression), files ~3x larger for less CPU.
NECOMA_CODECS = {"necoma": "zstd", "necoma-lz4": "lz4"}


def run_necoma(work: Path, datagrams: list[bytes], per: list[int], rate: int, seconds: float,
               name: str = "necoma") -> Result:
    data = work / "necoma-data"
    shutil.rmtree(data, ignore_errors=True)
    cfg = work / "necoma.toml"
    cfg.write_text(f'data_dir = "{data}"\n[collect]\nflush_seconds = 2.0\n'
                   f'[lake]\ncompression = "{NECOMA_CODECS[name]}"\n')
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", "-c", str(cfg), "collect",
                             "--netflow", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)
    os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until it listens
        if "collecting:" in line:
            break
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    cpu0, t0 = cpu_seconds(proc.pid), time.time()
    sent, elapsed, sent_records = _send(datagrams, per, port, rate, seconds)
    busy = wait_idle(proc.pid) - t0
    drops = udp_drops(port)
    rss = peak_rss_mib(proc.pid)  # after it caught up: everything received is decoded and pending
    cpu = stop_and_reap(proc, signal.SIGTERM, 300) - cpu0
    status = json.loads((data / "collect-stats.json").read_text())
    decoded = sum(e["records"] for e in status["protocols"]["netflow"].values())
    from necoma.lake import connect

    stored = connect(data / "lake").execute("SELECT count(*) FROM flows").fetchone()[0]
    return Result(name, rate, sent_records, elapsed, decoded, stored, cpu, busy, drops, rss)


# nfcapd's storage options: plain (its default), or its files compressed block by block
# (-z LZO, -y LZ4), which is what necoma's zstd Parquet is closer to.
NFCAPD_FLAGS = {"nfcapd": [], "nfcapd-lzo": ["-z"], "nfcapd-lz4": ["-y"]}


def run_nfcapd(work: Path, datagrams: list[bytes], per: list[int], rate: int, seconds: float,
               name: str = "nfcapd") -> Result:
    out = work / "nfcapd"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    port = free_udp_port()
    proc = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-B", str(RCVBUF),
                             *NFCAPD_FLAGS[name]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Startup" in line:
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    cpu0, t0 = cpu_seconds(proc.pid), time.time()
    sent, elapsed, sent_records = _send(datagrams, per, port, rate, seconds)
    busy = wait_idle(proc.pid) - t0
    drops = udp_drops(port)
    rss = peak_rss_mib(proc.pid)
    cpu = stop_and_reap(proc, signal.SIGTERM, 120) - cpu0  # nfcapd flushes its file on SIGTERM
    info = subprocess.run(["nfdump", "-R", str(out), "-I"], capture_output=True, text=True).stdout
    stored = next((int(line.split()[1]) for line in info.splitlines() if line.startswith("Flows:")), 0)
    return Result(name, rate, sent_records, elapsed, stored, stored, cpu, busy, drops, rss)


def _send(datagrams: list[bytes], per: list[int], port: int, rate: int, seconds: float) -> tuple[int, float, int]:
    avg = sum(per) / len(per)
    sent, elapsed = send_paced(datagrams, port, rate / avg if rate else 0, seconds)
    full, part = divmod(sent, len(datagrams))
    return sent, elapsed, full * sum(per) + sum(per[:part])


# ------------------------------------------------------------------ report


def table(results: list[Result]) -> str:
    lines = ["| collector | offered rec/s | sent records | decoded | stored | stored rec/s | loss % "
             "| kernel drops (datagrams) | CPU s / M rec | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        offered = "flood" if r.offered_rate == 0 else f"{r.offered_rate:,}"
        lines.append(f"| {r.collector} | {offered} | {r.sent_records:,} | {r.decoded:,} | {r.stored:,} | "
                     f"{r.stored_per_s:,.0f} | {r.loss_pct:.2f} | {r.kernel_drops:,} | {r.cpu_per_million:.2f} | {r.peak_rss_mib:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pcap", type=Path, default=DEFAULT_PCAP, help="pcap(.gz) softflowd turns into NetFlow v9")
    ap.add_argument("--rates", default="200000,400000,800000,1200000,1600000,2400000,3200000,4000000,4800000,0",
                    help="offered records/s, comma-separated; 0 = as fast as the sender can")
    ap.add_argument("--seconds", type=float, default=5.0, help="send time per rate and collector")
    ap.add_argument("--collectors", default="necoma,nfcapd,nfcapd-lz4",
                    help=f"comma-separated, of {', '.join(NECOMA_CODECS)}, {', '.join(NFCAPD_FLAGS)} "
                         "(necoma-lz4: [lake] compression = lz4; nfcapd-lzo, -lz4: nfcapd -z, -y)")
    ap.add_argument("--repeat-80", type=int, default=2,
                    help="runs of each collector at 80 %% of its own highest stored rate (0 = skip)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--nice", type=int, default=0,
                    help="run sender and collectors at this niceness (e.g. -10 as root on a shared, busy machine)")
    args = ap.parse_args()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by nothing else: set per child below
    for tool in ("softflowd", "nfcapd", "nfdump"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install softflowd nfdump)")
    runners = {**{n: functools.partial(run_necoma, name=n) for n in NECOMA_CODECS},
               **{n: functools.partial(run_nfcapd, name=n) for n in NFCAPD_FLAGS}}
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        work = Path(tmp)
        datagrams = capture_v9(args.pcap, work)
        per = v9_data_records(datagrams)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"load average before: {' '.join(load)}; niceness {os.getpriority(os.PRIO_PROCESS, 0)}")
        print(f"captured {len(datagrams)} NetFlow v9 datagrams, {sum(per)} data records "
              f"({sum(per) / len(datagrams):.1f} per datagram) from {args.pcap.name}", flush=True)
        results: list[Result] = []

        def run(name: str, rate: int, label: str = "") -> Result:
            r = runners[name](work, datagrams, per, rate, args.seconds)
            print(f"{name:7s} offered {rate or 'flood'!s:>8}{label}: sent {r.sent_records:,} stored {r.stored:,} "
                  f"({r.loss_pct:.2f}% loss) {r.stored_per_s:,.0f} rec/s, "
                  f"{r.cpu_per_million:.2f} CPU s/M, peak RSS {r.peak_rss_mib:,.0f} MiB", flush=True)
            return r

        names = args.collectors.split(",")
        unknown = set(names) - set(runners)
        if unknown:
            sys.exit(f"unknown collectors {sorted(unknown)}; known: {', '.join(runners)}")
        for rate in [int(r) for r in args.rates.split(",")]:
            for name in names:
                results.append(run(name, rate))
        # Zero loss at 80 % of its own maximum: each collector at 0.8 x the most it stored per second above.
        at80: dict[str, list[Result]] = {}
        for _ in range(args.repeat_80):
            for name in names:
                top = max(r.stored_per_s for r in results if r.collector == name)
                at80.setdefault(name, []).append(run(name, int(0.8 * top), " (80 % of its max)"))
    print()
    print(table(results))
    if at80:
        print("\nat 80 % of each collector's own maximum stored rate:")
        print(table([r for rs in at80.values() for r in rs]))
    ours = [n for n in names if n in NECOMA_CODECS]
    peers = [n for n in names if n in NFCAPD_FLAGS]
    # Highest rate stored without losing a record, over the ladder and the 80 % runs: the
    # offered rate (the stored-per-second figure of two loss-free runs at the same step
    # differs by send-time jitter), the stored rate for a loss-free flood.
    every = results + [r for rs in at80.values() for r in rs]
    best = {n: max(((r.offered_rate or r.stored_per_s) for r in every
                    if r.collector == n and r.stored == r.sent_records), default=0.0) for n in names}
    cpu = {n: min((r.cpu_per_million for r in results if r.collector == n and r.stored), default=float("nan"))
           for n in names}
    rss = {n: max((r.peak_rss_mib for r in results if r.collector == n), default=0.0) for n in names}
    for n in names:
        print(f"{n}: highest loss-free rate {best[n]:,.0f} rec/s, lowest {cpu[n]:.2f} CPU s per million "
              f"records, peak RSS {rss[n]:,.0f} MiB")
    for name, rs in at80.items():
        lost = [f"{r.loss_pct:.2f} %" for r in rs]
        print(f"{name}: loss at 80 % of its maximum ({rs[0].offered_rate:,} rec/s): {', '.join(lost)} -> "
              f"{'zero-loss goal met' if all(r.stored == r.sent_records for r in rs) else 'not met'}")
    for mine in ours:
        for peer in (p for p in peers if best[p]):
            print(f"loss-free rate ratio {mine} / {peer}: {best[mine] / best[peer]:.2f} "
                  f"({'met' if best[mine] >= best[peer] else 'not met'}: {mine} >= {peer}); "
                  f"CPU per record ratio {cpu[mine] / cpu[peer]:.1f}")
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "loss_pct": r.loss_pct, "stored_per_s": r.stored_per_s,
                                          "cpu_per_million": r.cpu_per_million, "at_80": r not in results}
                                         for r in results + [r for rs in at80.values() for r in rs]], indent=1))


if __name__ == "__main__":
    main()
