"""Long fuzz of the sFlow v5 decoder: >= 1,000,000 hostile datagrams, every one accounted for.

    .venv/bin/python fuzz/fuzz_sflow.py [--datagrams 1000000] [--seed 1] [--drain-every 20000]

Seeds are real exports: pmacctd's sFlow probe over lab_mixed.pcap and
pathspider_real.pcap.gz (from ../shared/data), plus the hand-built datagrams of
tests/test_sflow_fuzz.py that cover every sample and record type. Each
datagram fed is a mutant of a seed (80 %), random bytes behind a valid or
invalid header (10 %), or an unmodified seed (10 %), from 127.0.0.1 and
::1 in turn. Rows are drained every --drain-every datagrams, as a listener would.

Checks, and exit status 1 on any failure: no exception leaves feed() or drain();
the last-resort `internal_error` counter stays 0; every datagram is counted, and
one that declares samples moves `records` or `rejected`; drained tables have the
lake schemas. Prints datagrams/s, samples decoded, rejections by reason, and
the peak RSS, with the RSS after each drain to show memory is bounded.
"""
from __future__ import annotations

import argparse
import gzip
import logging
import random
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
from necoma.collect.sflow.xdr import Malformed, read_header  # noqa: E402
from necoma.schemas import schema_of  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.test_sflow_fuzz import built_seeds, mutate  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def real_seeds() -> list[bytes]:
    if not shutil.which("pmacctd"):
        print("pmacctd not installed: hand-built seeds only")
        return []
    from tests.test_sflow_exporters import pmacctd_export

    seeds: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        lab = SHARED_DATA / "pcap" / "lab_mixed.pcap"
        if lab.exists():
            seeds += [d for d, _, _ in pmacctd_export(lab, t, rate=1)]
        gz = SHARED_DATA / "pcap" / "pathspider_real.pcap.gz"
        if gz.exists():
            pcap = t / "pathspider.pcap"
            with gzip.open(gz) as src, pcap.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            export = [d for d, _, _ in pmacctd_export(pcap, t, rate=1)]
            seeds += export[:: max(1, len(export) // 2000)]  # ~2,000 spread over the capture
    return seeds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drain-every", type=int, default=20_000)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # rejections are logged once each; the counts are printed below

    seeds = real_seeds() + built_seeds()
    print(f"seeds: {len(seeds)} datagrams")
    rnd = random.Random(args.seed)
    dec = SflowDecoder()
    exporters = ("127.0.0.1", "::1")
    kinds: Counter = Counter()
    failures: list[str] = []
    rss_after_drain: list[float] = []
    rows: Counter = Counter()
    start = time.perf_counter()
    for i in range(args.datagrams):
        roll = rnd.random()
        seed = rnd.choice(seeds)
        if roll < 0.8:
            data, kind = mutate(seed, rnd), "mutated"
        elif roll < 0.9:
            junk = rnd.randbytes(rnd.randint(0, 600))
            data, kind = (junk if rnd.random() < 0.3 else seed[:rnd.randrange(8, 40)] + junk), "random"
        else:
            data, kind = seed, "seed"
        kinds[kind] += 1
        exporter = exporters[i & 1]
        st = dec.stats.of(exporter)
        before = (st.datagrams, st.records + sum(st.rejected.values()))
        try:
            dec.feed(data, exporter, time.time())
        except Exception as exc:  # the contract says this never happens
            failures.append(f"feed raised {exc!r} on {data.hex()}")
            continue
        moved = st.records + sum(st.rejected.values()) - before[1]
        try:
            declares = read_header(data).n_samples > 0
        except Malformed:
            declares = True  # a broken header must be counted as one rejection
        if st.datagrams != before[0] + 1 or (declares and moved < 1):
            failures.append(f"datagram not accounted for: {data.hex()}")
        if (i + 1) % args.drain_every == 0 or i + 1 == args.datagrams:
            try:
                for name, table in dec.drain(time.time()).items():
                    rows[name] += table.num_rows
                    if table.schema != schema_of(name):
                        failures.append(f"{name} drained with a wrong schema")
            except Exception as exc:
                failures.append(f"drain raised {exc!r}")
            rss_after_drain.append(current_rss_mb())
        if len(failures) > 20:
            break
    elapsed = time.perf_counter() - start

    total = Counter()
    datagrams = records = gaps = 0
    for st in dec.stats.exporters.values():
        total.update(st.rejected)
        datagrams += st.datagrams
        records += st.records
        gaps += st.sequence_gaps
    if total.get("internal_error"):
        failures.append(f"internal_error counted {total['internal_error']} times")
    print(f"datagrams fed: {datagrams:,} ({', '.join(f'{k} {v:,}' for k, v in kinds.items())})")
    print(f"time: {elapsed:.1f} s, {datagrams / elapsed:,.0f} datagrams/s")
    print(f"samples decoded: {records:,}; rows drained: {dict(rows)}; sequence gaps counted: {gaps:,}")
    print(f"rejections: {sum(total.values()):,}")
    for reason, n in total.most_common(25):
        print(f"  {n:>10,}  {reason}")
    print(f"RSS after drains: first {rss_after_drain[0]:.0f} MB, max {max(rss_after_drain):.0f} MB, "
          f"last {rss_after_drain[-1]:.0f} MB; peak RSS {rss_mb():.0f} MB")
    for f in failures[:20]:
        print("FAIL:", f[:400])
    print("OK" if not failures else f"FAILED ({len(failures)} problems)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
