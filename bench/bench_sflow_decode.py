"""Benchmark: sFlow v5 decoding rate and memory on real exporter datagrams.

    .venv/bin/python bench/bench_sflow_decode.py [--passes 10] [--drain-every 10000] [--rate 1]

1. Capture once: pmacctd's sFlow probe (plugins: sfprobe) reads
   ../shared/data/pcap/pathspider_real.pcap.gz and exports to a UDP socket here
   (~7,800 datagrams, ~62,000 flow samples with 128-byte raw headers at rate 1).
2. Decode: SflowDecoder is fed the captured datagrams `--passes` times in one
   process, draining every `--drain-every` datagrams as a listener would; the
   drain runs the shared frame decoder (necoma.collect.packet) on every sampled
   header and builds the `packets`, `flows` and `interfaces` tables.

Prints samples/s for feed alone, drain alone and both (the figure that matters),
rows produced and peak RSS. No network in the timed part: this is the decoder's
own rate, not a listener's.

3. Peer, in the same run (no maintained sFlow decoder exists on PyPI, and
   sflowtool is not packaged in Debian): the same captured datagrams replayed
   `--live-passes` times over loopback, paced at `--live-rate` datagrams/s, to
   nfdump's sfcapd (`sfcapd -b 127.0.0.1 -p PORT -w DIR`, flows read back with
   `nfdump -R DIR -I`) and to `necoma collect --sflow` (rows in `packets`),
   each alone. Reported: flow samples stored of those sent, CPU seconds per
   million flow samples (kernel rusage of the collector, minus its start-up),
   peak RSS, and the CPU ratio. sfcapd keeps one nfdump record per sample
   (addresses, ports, counters); necoma also decodes every sampled header down
   to DNS/NTP fields and writes `packets`, `flows` and `interfaces` Parquet.
Needs pmacctd (Debian package pmacct), and sfcapd/nfdump (nfdump-sflow, nfdump) for step 3.
"""
from __future__ import annotations

import argparse
import gzip
import logging
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from necoma.collect.sflow import SflowDecoder  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402


def capture(rate: int) -> list[bytes]:
    from tests.test_sflow_exporters import pmacctd_export

    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "pathspider_real.pcap"
        with gzip.open(SHARED_DATA / "pcap" / "pathspider_real.pcap.gz") as src, pcap.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        return [d for d, _, _ in pmacctd_export(pcap, Path(tmp), rate=rate)]


def live(datagrams: list[bytes], passes: int, rate: float, expected: int) -> None:
    """Step 3: sfcapd and `necoma collect --sflow` on the same paced replay."""
    import json
    import signal
    import socket
    import subprocess
    import threading

    sys.path.insert(0, str(REPO / "bench"))
    from bench_collect_vs_nfcapd import RCVBUF, cpu_seconds, free_udp_port, peak_rss_mib, stop_and_reap, wait_idle

    # Not bench_collect_vs_nfcapd.send_paced: it rewrites a v9 sequence number at offset 12,
    # where sFlow has the sub-agent id. Sent unchanged instead.
    def send(port: int) -> float:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RCVBUF)
        t0 = time.perf_counter()
        n = 0
        for _ in range(passes):
            for d in datagrams:
                while n >= (time.perf_counter() - t0) * rate:
                    time.sleep(0.0005)
                sock.sendto(d, ("127.0.0.1", port))
                n += 1
        sock.close()
        return time.perf_counter() - t0

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sflow-") as tmp:
        work = Path(tmp)
        # sfcapd
        out = work / "sfcapd"
        out.mkdir()
        port = free_udp_port()
        proc = subprocess.Popen(["sfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-B", str(RCVBUF)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Startup" in line:
                break
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        cpu0 = cpu_seconds(proc.pid)
        secs = send(port)
        wait_idle(proc.pid)
        rss = peak_rss_mib(proc.pid)
        cpu = stop_and_reap(proc, signal.SIGTERM, 120)
        info = subprocess.run(["nfdump", "-R", str(out), "-I"], capture_output=True, text=True).stdout
        stored = next((int(line.split()[1]) for line in info.splitlines() if line.startswith("Flows:")), 0)
        results["sfcapd"] = (stored, cpu - cpu0, rss, secs)
        # necoma collect
        data = work / "necoma-data"
        cfg = work / "necoma.toml"
        cfg.write_text(f'data_dir = "{data}"\n[collect]\nflush_seconds = 2.0\n')
        port = free_udp_port()
        proc = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", "-c", str(cfg), "collect",
                                 "--sflow", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if "collecting:" in line:
                break
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        cpu0 = cpu_seconds(proc.pid)
        secs = send(port)
        wait_idle(proc.pid)
        rss = peak_rss_mib(proc.pid)
        cpu = stop_and_reap(proc, signal.SIGTERM, 300)
        from necoma.lake import connect

        stored = connect(data / "lake").execute("SELECT count(*) FROM packets").fetchone()[0]
        status = json.loads((data / "collect-stats.json").read_text())
        rejected = {k: v for e in status["protocols"]["sflow"].values() for k, v in e["rejected"].items()}
        results["necoma"] = (stored, cpu - cpu0, rss, secs)
    sent = expected * passes
    print(f"\nlive, {passes} passes of {len(datagrams):,} datagrams ({sent:,} flow samples) at "
          f"{rate:,.0f} datagrams/s over loopback:")
    print("| collector | flow samples stored / sent | CPU s per M samples | peak RSS MiB | send s |")
    print("|---|---:|---:|---:|---:|")
    for name, (stored, cpu, rss, secs) in results.items():
        print(f"| {name} | {stored:,} / {sent:,} | {cpu / max(stored, 1) * 1e6:.2f} | {rss:,.0f} | {secs:.1f} |")
    (n_st, n_cpu, _, _), (s_st, s_cpu, _, _) = results["necoma"], results["sfcapd"]
    print(f"necoma rejected: {rejected or 'none'}; CPU per sample necoma / sfcapd = "
          f"{(n_cpu / max(n_st, 1)) / (s_cpu / max(s_st, 1)):.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--drain-every", type=int, default=10_000, help="datagrams between drains")
    ap.add_argument("--rate", type=int, default=1, help="pmacctd sampling rate for the capture")
    ap.add_argument("--live-passes", type=int, default=3, help="replays of the capture to each live collector (0: skip)")
    ap.add_argument("--live-rate", type=float, default=4000, help="datagrams/s of the live replay")
    args = ap.parse_args()
    if not shutil.which("pmacctd"):
        print("pmacctd is not installed (Debian package pmacct)")
        return 2
    logging.disable(logging.WARNING)
    t = time.perf_counter()
    datagrams = capture(args.rate)
    print(f"captured {len(datagrams):,} datagrams from pmacctd in {time.perf_counter() - t:.1f} s "
          f"({sum(map(len, datagrams)) / len(datagrams):.0f} bytes each)")

    dec = SflowDecoder()
    rows: Counter = Counter()
    feed_s = drain_s = 0.0
    now = time.time()
    n = 0
    for _ in range(args.passes):
        for data in datagrams:
            t = time.perf_counter()
            dec.feed(data, "127.0.0.1", now)
            feed_s += time.perf_counter() - t
            n += 1
            if n % args.drain_every == 0:
                t = time.perf_counter()
                for name, table in dec.drain(now).items():
                    rows[name] += table.num_rows
                drain_s += time.perf_counter() - t
    t = time.perf_counter()
    for name, table in dec.drain(now).items():
        rows[name] += table.num_rows
    drain_s += time.perf_counter() - t

    st = dec.stats.of("127.0.0.1")
    samples = st.records
    print(f"datagrams: {st.datagrams:,}  samples decoded: {samples:,}  rejected: {dict(st.rejected)}")
    print(f"rows: {dict(rows)}")
    print(f"feed  : {feed_s:6.2f} s  {samples / feed_s:>10,.0f} samples/s")
    print(f"drain : {drain_s:6.2f} s  {samples / drain_s:>10,.0f} samples/s")
    print(f"total : {feed_s + drain_s:6.2f} s  {samples / (feed_s + drain_s):>10,.0f} samples/s "
          f"({st.datagrams / (feed_s + drain_s):,.0f} datagrams/s)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.live_passes:
        if not (shutil.which("sfcapd") and shutil.which("nfdump")):
            print("sfcapd/nfdump not installed (Debian packages nfdump-sflow, nfdump): no peer figures")
            return 2
        live(datagrams, args.live_passes, args.live_rate, rows["packets"] // args.passes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
