"""Long fuzz run of the NetFlow v5/v9/IPFIX decoder: >= 1,000,000 mutated and random datagrams.

    .venv/bin/python fuzz/fuzz_netflow.py [--datagrams 1000000] [--seed 1]

Seeds are softflowd's real v5/v9/IPFIX export of a shared pcap (when softflowd
is installed) plus built datagrams covering every structure (templates,
options, variable-length and enterprise fields, withdrawals). Each datagram is
fed as is (20 %) or after 1-3 mutations (bit flips, truncation, absurd
lengths/counts/ids, inserted/deleted/repeated bytes, splices, random bodies).
First (--batched), a mutated in-order v9 stream is fed both one by one and in
batches through the compiled walk (feed_many): rows and counters must agree.
Every 10,000 datagrams the decoder is drained and checked (tests/test_netflow_fuzz.check):
no exception, every datagram decoded or rejected, rows == records, caches
within their caps. Prints counts, rate and peak RSS; exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_netflow_fuzz import EXP, check, corpus, mutate, new_decoder  # noqa: E402

EXPORTERS = (EXP, "203.0.113.9", "2001:db8::77")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batched", type=int, default=200_000,
                    help="then this many datagrams of a mutated in-order v9 stream, fed one by one and in "
                         "batches (feed_many, the compiled walk): the two must agree (0 = skip)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # rejections are logged once per reason; here we only count
    if args.batched and batched(args.batched, args.seed):
        return 1

    seeds = corpus()
    rng = random.Random(args.seed)
    dec = new_decoder()
    clock = 1_800_000_000.0
    rows = 0
    reasons: Counter = Counter()
    t0 = time.perf_counter()
    try:
        for i in range(args.datagrams):
            data = seeds[rng.randrange(len(seeds))]
            if rng.random() < 0.8:
                data = mutate(rng, data, seeds[rng.randrange(len(seeds))])
            clock += 0.001
            dec.feed(data, EXPORTERS[i % len(EXPORTERS)], clock)
            if i % 10_000 == 9_999:
                rows += check(dec, clock)
                if i % 200_000 == 199_999:
                    print(f"{i + 1:>9,} datagrams  {(i + 1) / (time.perf_counter() - t0):,.0f}/s", flush=True)
            if i % 250_000 == 249_999:  # a fresh decoder now and then: state built from scratch again
                rows += check(dec, clock + 3600)
                _collect(dec, reasons)
                dec = new_decoder()
        rows += check(dec, clock + 3600)
    except Exception:
        traceback.print_exc()
        print(f"FAILED after {i + 1:,} datagrams (seed {args.seed})")
        return 1
    _collect(dec, reasons)
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"seeds: {len(seeds)} datagrams ({len(seeds) - 9} real softflowd export)")
    print(f"datagrams: {args.datagrams:,}  decoded: {reasons.pop('#decoded'):,}  rejected: {reasons.pop('#rejected'):,}")
    print(f"rows drained: {rows:,}  template misses: {reasons.pop('#misses'):,}")
    print(f"time: {elapsed:,.1f} s  rate: {args.datagrams / elapsed:,.0f} datagrams/s  peak RSS: {peak_mb:,.0f} MB")
    print("rejections by reason:", ", ".join(f"{r}={n:,}" for r, n in reasons.most_common()))
    print("OK: no exception, every datagram accounted for, caches bounded")
    return 0


def batched(total: int, seed: int) -> int:
    """feed_many against feed on a v9 stream in order (most datagrams reach the kernel), 30 % mutated."""
    from tests.test_netflow_fast_path import assert_same, feed_batches, feed_each, mutated_stream, stream

    rng = random.Random(seed)
    others = corpus()
    t0 = time.perf_counter()
    taken = done = 0
    try:
        while done < total:
            datagrams = mutated_stream(rng, stream(random.Random(rng.random()), 5_000), others)
            peers = [EXPORTERS[0]] * len(datagrams)
            ref, fast = new_decoder(), new_decoder()
            cut = rng.random()
            feed_each(ref, datagrams, peers, random.Random(cut))
            feed_batches(fast, datagrams, peers, random.Random(cut))
            assert_same(ref, fast)
            taken += fast._fast.taken
            done += len(datagrams)
    except Exception:
        traceback.print_exc()
        print(f"FAILED: feed_many and feed disagree after {done:,} datagrams (seed {seed})")
        return 1
    print(f"batched: {done:,} datagrams, {taken:,} through the compiled walk, feed_many == feed "
          f"({time.perf_counter() - t0:,.1f} s)", flush=True)
    return 0


def _collect(dec, reasons: Counter) -> None:
    for exporter, st in dec.stats.exporters.items():
        out = dec.datagram_outcomes.get(exporter, {})
        reasons["#decoded"] += out.get("decoded", 0)
        reasons["#rejected"] += out.get("rejected", 0)
        reasons["#misses"] += st.template_misses
        reasons.update(st.rejected)


if __name__ == "__main__":
    sys.exit(main())
