"""Long fuzz run of the syslog decoder and TCP framer: >= 1,000,000 mutated and random messages.

    .venv/bin/python fuzz/fuzz_syslog.py [--messages 1000000] [--seed 1]

Seeds are RFC 5424 / RFC 3164 messages of every shape the parser knows (the
RFC's own examples, structured data with escapes and repeats, NILVALUEs,
fractions and offsets, BSD variants, no PRI, Latin-1 bytes). Each message is
fed as is (20 %) or after 1-3 byte-level mutations (the NetFlow fuzzer's:
bit flips, truncation, absurd values, inserted/deleted/repeated bytes,
splices, random bodies). Every 10,000 messages the decoder is drained and
checked: no exception, every message decoded or rejected, rows == records,
no "decoder error" (a parser bug). One message in ten also goes, in random
chunks, through an RFC 6587 framer (octet-counted or newline-framed) whose
buffer must stay bounded. Prints counts, rate and peak RSS; exits 1 on any failure.
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

from necoma.collect.framing import SyslogFramer  # noqa: E402
from necoma.collect.syslog import SyslogDecoder  # noqa: E402
from necoma.schemas import SYSLOG  # noqa: E402
from tests.test_netflow_fuzz import mutate  # noqa: E402

SEEDS = [
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick",
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b'<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App" '
    b'eventID="1011"][examplePriority@32473 class="high"] \xef\xbb\xbfAn application event',
    b'<14>1 - host app - - [x@1 a="q\\"uo\\]te\\\\" a="2" b="\\n"][x@1 c="3"]',
    b"<0>1 2024-02-29T23:59:59.123456789+00:00 - - - - - msg",
    b"<191>1 2024-05-01T10:00:00+14:00 h a 1 m - x",
    b"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed",
    b"<13>Jan  2 03:04:05 host1 app: tcp newline one",
    b"<13>2024-05-01T10:00:00Z host app[7]: iso 3164",
    b"<13>Feb 29 00:00:00 h: leap",
    b"no pri at all, just text",
    b"<13>caf\xe9 latin-1 \xff bytes",
    b"<86>Mar  3 12:00:00 fw kernel: [UFW BLOCK] IN=eth0 SRC=203.0.113.9 DST=192.0.2.1 PROTO=TCP DPT=22",
]
EXPORTERS = ("192.0.2.1", "198.51.100.7", "2001:db8::9")
MAX_MESSAGE = 2048


def check(dec: SyslogDecoder, now: float) -> int:
    tables = dec.drain(now)
    rows = tables["syslog"].num_rows if tables else 0
    if tables:
        assert set(tables) == {"syslog"} and tables["syslog"].schema == SYSLOG
    for exporter, s in dec.stats.exporters.items():
        assert "decoder error" not in s.rejected, (exporter, dict(s.rejected))
    records = sum(s.records for s in dec.stats.exporters.values())
    assert rows == records, (rows, records)
    for s in dec.stats.exporters.values():
        s.records = 0  # rows are checked per drain
    return rows


def frame(rng: random.Random, msgs: list[bytes], octet: bool) -> bytes:
    if octet:
        return b"".join(str(len(m) if rng.random() < 0.95 else rng.randrange(1 << 20)).encode() + b" " + m
                        for m in msgs)
    return b"".join(m + rng.choice([b"\n", b"\r\n", b"\n\n"]) for m in msgs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # rejections are logged once per reason; here we only count

    rng = random.Random(args.seed)
    dec = SyslogDecoder()
    now = 1_800_000_000.0
    rows = framed = 0
    fed: Counter = Counter()
    reasons: Counter = Counter()
    t0 = time.perf_counter()
    try:
        for i in range(args.messages):
            data = SEEDS[rng.randrange(len(SEEDS))]
            if rng.random() < 0.8:
                data = mutate(rng, data, SEEDS[rng.randrange(len(SEEDS))])
            exporter = EXPORTERS[i % len(EXPORTERS)]
            dec.feed(data, exporter, now + i * 0.001)
            fed[exporter] += 1
            if i % 10 == 0:  # the same kind of bytes through the TCP framer
                f = SyslogFramer(max_message=MAX_MESSAGE)
                stream = frame(rng, [data, SEEDS[rng.randrange(len(SEEDS))]], rng.random() < 0.5)
                pos = 0
                while pos < len(stream):
                    n = rng.randint(1, 300)
                    msgs, rejects = f.feed(stream[pos:pos + n])
                    pos += n
                    assert all(len(m) <= MAX_MESSAGE + 1 for m in msgs)
                    assert len(f._buf) <= MAX_MESSAGE + 300 + 11, len(f._buf)
                    assert set(rejects) <= {"message too long", "bad octet count"}, rejects
                    framed += len(msgs)
                f.close()
            if i % 10_000 == 9_999:
                rows += check(dec, now)
                for exporter, s in dec.stats.exporters.items():
                    assert s.datagrams == fed[exporter]
                if i % 200_000 == 199_999:
                    print(f"{i + 1:>9,} messages  {(i + 1) / (time.perf_counter() - t0):,.0f}/s", flush=True)
        rows += check(dec, now)
    except Exception:
        traceback.print_exc()
        print(f"FAILED after {i + 1:,} messages (seed {args.seed})")
        return 1
    rejected = 0
    for s in dec.stats.exporters.values():
        reasons.update(s.rejected)
        rejected += sum(s.rejected.values())
    elapsed = time.perf_counter() - t0
    assert rows + rejected == args.messages, (rows, rejected)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages: {args.messages:,}  decoded (rows): {rows:,}  rejected: {rejected:,}  "
          f"framed by TCP framer: {framed:,}")
    print(f"time: {elapsed:,.1f} s  rate: {args.messages / elapsed:,.0f} messages/s  peak RSS: {peak_mb:,.0f} MB")
    print("rejections by reason:", ", ".join(f"{r}={n:,}" for r, n in reasons.most_common()))
    print("OK: no exception, every message accounted for, framer bounded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
