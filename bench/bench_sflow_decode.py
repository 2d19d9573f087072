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
own rate, not a listener's; bench/bench_collect_vs_nfcapd.py measures listeners.
Needs pmacctd (Debian package pmacct).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--drain-every", type=int, default=10_000, help="datagrams between drains")
    ap.add_argument("--rate", type=int, default=1, help="pmacctd sampling rate for the capture")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
