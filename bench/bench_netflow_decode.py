"""Micro-benchmark: NetflowDecoder records/s on real softflowd export (v5, v9, IPFIX), beside the `netflow` package.

    .venv/bin/python bench/bench_netflow_decode.py [--records 5000000] [--peer-records 300000] [--pcap PATH]

softflowd exports the pcap once per version to a local UDP socket; those
datagrams are then fed to a fresh decoder over and over (as one exporter)
until --records records went in, and drained once every --drain-every
datagrams, as the listener would every flush interval. Two figures per version:

- end to end: datagram bytes in -> Arrow `flows` table out, records per CPU
  second (process time, so that other load on the machine does not count);
  with softflowd's ~30 records per datagram, the per-datagram Python work
  (header, set walk, template lookup, sequence check) dominates;
- bulk decode: the numpy stage alone (one `np.frombuffer` per batch of
  65,536 records -> columns, times, addresses as text, Arrow table).

The peer, in the same run on the same datagrams: the `netflow` PyPI package
(python-netflow-v9-softflowd, `netflow.parse_packet` with a shared template
cache), fed the datagrams in order until --peer-records records, records per
CPU second. It yields one dict per record; necoma yields Arrow columns. Both
must count the same records per pass over the export, or the run stops.

Without softflowd, built datagrams with the same templates are used.
"""
from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from necoma.collect.netflow import NetflowDecoder  # noqa: E402
from necoma.collect.netflow.records import decode_batch  # noqa: E402


def softflowd_export(pcap: Path, version: int) -> list[bytes]:
    from tests.test_netflow_exporters import Receiver

    r = Receiver()
    try:
        subprocess.run(["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{r.port}", "-v", str(version), "-D"],
                       capture_output=True, timeout=300, check=True)
    finally:
        datagrams = r.close()
    return datagrams


def built_export(version: int) -> list[bytes]:
    from tests import test_netflow_decoder as B

    if version == 5:
        return [B.v5([{"sport": i % 60000 + j} for j in range(30)], seq=30 * i) for i in range(300)]
    t = B.template(256, B.V4_FIELDS)
    recs = lambda i: b"".join(B.v4_record(sport=(i * 40 + j) % 65536) for j in range(40))  # noqa: E731
    if version == 9:
        return [B.v9(B.fset(0, t), B.fset(256, recs(i)), seq=i) for i in range(300)]
    return [B.ipfix(B.fset(2, t), B.fset(256, recs(i)), seq=40 * i) for i in range(300)]


def run(datagrams: list[bytes], target: int, drain_every: int) -> tuple[int, float, float, float]:
    """(rows, CPU seconds feeding, CPU seconds draining, wall seconds)."""
    dec = NetflowDecoder()
    feed_s = drain_s = 0.0
    rows = fed = 0
    now = time.time()
    wall = time.perf_counter()
    while dec.stats.of("bench").records < target:
        t0 = time.process_time()
        for d in datagrams:
            dec.feed(d, "bench", now)
            fed += 1
            if fed % drain_every == 0:
                t1 = time.process_time()
                feed_s += t1 - t0
                rows += sum(t.num_rows for t in dec.drain(now).values())
                t0 = time.process_time()
                drain_s += t0 - t1
        feed_s += time.process_time() - t0
    t1 = time.process_time()
    rows += sum(t.num_rows for t in dec.drain(now).values())
    drain_s += time.process_time() - t1
    wall = time.perf_counter() - wall
    st = dec.stats.of("bench")
    assert rows == st.records and not st.rejected, st.as_dict()
    return rows, feed_s, drain_s, wall


def bulk_only(datagrams: list[bytes], target: int) -> tuple[int, float]:
    """Rows and CPU seconds of the numpy stage alone, on this export's batches."""
    dec = NetflowDecoder()
    for d in datagrams:  # learn templates; collect the raw batches it builds
        dec.feed(d, "bench", 0.0)
    batches = list(dec._batches._open.values())
    rows, cpu = 0, 0.0
    while rows < target:
        for b in batches:
            t0 = time.process_time()
            table = decode_batch(b)
            cpu += time.process_time() - t0
            rows += table.num_rows
    return rows, cpu


def _is_options(record: dict) -> bool:
    """An options data record as the `netflow` package returns it (it lists them among the flows)."""
    return "selectorAlgorithm" in record or "samplingPacketInterval" in record or "SAMPLING_INTERVAL" in record


def peer_run(datagrams: list[bytes], target: int) -> tuple[int, float, int]:
    """(records, CPU seconds, records per pass) for `netflow.parse_packet` over the same export."""
    import netflow

    templates: dict = {"netflow": {}, "ipfix": {}}
    records = per_pass = 0
    passes = 0
    cpu = 0.0
    while records < target:
        n = 0
        t0 = time.process_time()
        for d in datagrams:
            # options records (sampling, interface names) are applied by necoma, not stored as flows
            n += sum(1 for f in netflow.parse_packet(d, templates).flows if not _is_options(f.data))
        cpu += time.process_time() - t0
        records += n
        per_pass = per_pass or n
        passes += 1
    return records, cpu, per_pass


def necoma_per_pass(datagrams: list[bytes]) -> int:
    dec = NetflowDecoder()
    for d in datagrams:
        dec.feed(d, "bench", 0.0)
    return sum(t.num_rows for t in dec.drain(0.0).values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--peer-records", type=int, default=300_000, help="records for the netflow package (it is slow)")
    ap.add_argument("--drain-every", type=int, default=20_000, help="datagrams between drains")
    ap.add_argument("--pcap", type=Path, default=REPO.parent / "shared" / "data" / "pcap" / "pathspider_real.pcap.gz")
    args = ap.parse_args()

    use_softflowd = shutil.which("softflowd") is not None and args.pcap.is_file()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "in.pcap"
        if use_softflowd:
            data = args.pcap.read_bytes()
            while data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            pcap.write_bytes(data)
        print(f"input: {'softflowd export of ' + args.pcap.name if use_softflowd else 'built datagrams'}; "
              f"{args.records:,} records per version, drained every {args.drain_every:,} datagrams")
        for version, name in ((5, "NetFlow v5"), (9, "NetFlow v9"), (10, "IPFIX")):
            datagrams = softflowd_export(pcap, version) if use_softflowd else built_export(version)
            ours_per_pass = necoma_per_pass(datagrams)
            rows, feed_s, drain_s, wall = run(datagrams, args.records, args.drain_every)
            bulk_rows, bulk_s = bulk_only(datagrams, args.records)
            peer_rows, peer_s, peer_per_pass = peer_run(datagrams, args.peer_records)
            if peer_per_pass != ours_per_pass:
                print(f"{name}: the netflow package decoded {peer_per_pass} records per pass, necoma "
                      f"{ours_per_pass}: not the same work, no ratio")
                return 1
            ours = rows / (feed_s + drain_s)
            theirs = peer_rows / peer_s
            print(f"{name:<11} {len(datagrams):>5} datagrams x {ours_per_pass / len(datagrams):.1f} records: "
                  f"necoma {ours / 1e6:5.2f} M records/CPU-s end to end ({rows:,} rows; feed {feed_s:.2f} s "
                  f"+ drain {drain_s:.2f} s CPU, {wall:.2f} s wall, "
                  f"{(feed_s + drain_s) * 1e6 / (rows / ours_per_pass * len(datagrams)):.1f} us/datagram); "
                  f"bulk decode {bulk_rows / bulk_s / 1e6:5.1f} M records/CPU-s; "
                  f"netflow package {theirs / 1e6:5.3f} M records/CPU-s ({peer_rows:,} records, {peer_s:.2f} s); "
                  f"necoma / netflow = {ours / theirs:.1f}x", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
