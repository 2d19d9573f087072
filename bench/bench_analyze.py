"""Analysis benchmark: the whole daily detector suite beside DuckDB's bare scan + group-by of the same lake.

    .venv/bin/python bench/bench_analyze.py --rows 10000000 [--rows 100000000] [--work DIR] [--no-spark]

For each --rows N, a realistic one-day lake of N flow rows (plus sFlow
packet samples = 5 % and DNS log rows = 10 % of N; see bench/analyze_lake.py)
is generated once and cached under --work. Then, in the same run, each in its
own process (so CPU time and peak RSS are its own):

1. bare: DuckDB over the same lake views (`necoma.lake.catalog.connect`),
   `BARE_SQL` below — every flow row of the day read once, grouped per hour
   and source /24, bytes, packets and rows summed; best of --bare-runs;
2. suite: `necoma analyze --day D --no-store --json` (the real CLI, every
   detector, DuckDB engine); per-detector seconds from its progress lines;
3. spark: the same command with `--engine spark --spark-master local[2]`
   (skipped for N above --spark-max-rows, or after --spark-timeout).

Prints wall, CPU (user+sys of the process tree), peak RSS (sum over the
process tree, sampled every 0.2 s), flow rows/s, alerts per detector, the
ratio suite / bare, and the load average.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analyze_lake import DAY, ensure_lake  # noqa: E402

BARE_SQL = """
SELECT date_trunc('hour', start_time) AS hour, regexp_replace(src_ip, '[.][0-9]+$', '') AS src_net,
       sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE start_time >= TIMESTAMPTZ '{start}' AND start_time < TIMESTAMPTZ '{end}'
GROUP BY ALL
"""
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


class TreeMonitor(threading.Thread):
    """Peak RSS and CPU time of a process and all its descendants, from /proc."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}  # pid -> last seen user+sys seconds
        self.done = threading.Event()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return out

    def sample(self) -> None:
        rss = 0
        for p in self._tree():
            try:
                rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
                f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                self.cpu[p] = (int(f[11]) + int(f[12])) / TICK
            except (OSError, IndexError, ValueError):
                continue
        self.peak_rss = max(self.peak_rss, rss)

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.sample()


def measure(cmd: list[str], timeout: float) -> dict:
    """Run cmd; wall seconds, CPU seconds of its process tree, peak tree RSS, stdout, stderr."""
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    mon = TreeMonitor(proc.pid)
    mon.start()
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the whole tree (a Spark JVM too), this benchmark's own process group
        out, err = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - t
    mon.done.set()
    mon.join()
    after = os.times()
    reaped = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall": wall, "cpu": max(reaped, sum(mon.cpu.values())), "rss": mon.peak_rss, "out": out, "err": err,
            "rc": proc.returncode, "timed_out": timed_out}


def bare_child(lake: str) -> None:
    """Runs in its own process: the bare scan, printing its row count as JSON."""
    from necoma.lake.catalog import connect

    con = connect(Path(lake))
    end = DAY + dt.timedelta(days=1)
    rows = con.sql(BARE_SQL.format(start=DAY.isoformat(sep=" "), end=end.isoformat(sep=" "))).fetchall()
    print(json.dumps({"groups": len(rows), "flows": sum(r[4] for r in rows)}))


DETECTOR_LINE = re.compile(r"^\s+(\w+)\s+(\d+) alerts in ([\d.]+)s", re.M)


def suite(config: Path, engine: str, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "necoma.cli.main", "--config", str(config), "analyze", "--day", DAY.date().isoformat(),
           "--no-store", "--json", "--engine", engine]
    if engine == "spark":
        cmd += ["--spark-master", "local[2]"]
    r = measure(cmd, timeout)
    r["detectors"] = {m[1]: (int(m[2]), float(m[3])) for m in DETECTOR_LINE.finditer(r["err"])}
    counts: dict[str, int] = {}
    for line in r["out"].splitlines():
        if line.startswith("{"):
            d = json.loads(line)["detector"]
            counts[d] = counts.get(d, 0) + 1
    r["alerts"] = counts
    return r


def write_config(work: Path, lake: Path, spark_memory: str) -> Path:
    cfg = work / f"necoma-{lake.name}.toml"
    cfg.write_text(f'data_dir = "{work / "state"}"\n[lake]\npath = "{lake}"\n'
                   f'[analyze.spark_conf]\n"spark.driver.memory" = "{spark_memory}"\n')
    return cfg


def fmt(r: dict, flows: int) -> str:
    if r["timed_out"]:
        return f"did not finish in {r['wall']:.0f} s (killed)"
    return (f"{r['wall']:7.1f} s wall, {r['cpu']:7.1f} s CPU, peak RSS {r['rss'] / 2**20:6,.0f} MiB, "
            f"{flows / r['wall'] / 1e6:5.2f} M flow rows/s")


def bench(n: int, args) -> dict:
    lake = ensure_lake(args.work, n, log=print)
    cfg = write_config(args.work, lake, args.spark_memory)
    files = sum(1 for _ in (lake / "flows").rglob("*.parquet"))
    size = sum(f.stat().st_size for f in (lake / "flows").rglob("*.parquet"))
    print(f"\n== {n:,} flow rows ({files} files, {size / 2**30:.2f} GiB), lake {lake}")
    print(f"   load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    bares = []
    for _ in range(args.bare_runs):
        b = measure([sys.executable, __file__, "--bare-child", str(lake)], args.timeout)
        if b["rc"] != 0:
            raise SystemExit(f"bare scan failed:\n{b['err']}")
        b["groups"] = json.loads(b["out"])["groups"]
        bares.append(b)
        print(f"   bare scan + group-by : {fmt(b, n)}  ({b['groups']:,} hour × /24 groups)")
    bare = min(bares, key=lambda b: b["wall"])
    s = suite(cfg, "duckdb", args.timeout)
    if s["rc"] != 0:
        raise SystemExit(f"necoma analyze failed:\n{s['err'][-3000:]}")
    print(f"   daily suite (DuckDB) : {fmt(s, n)}")
    for name, (alerts, secs) in s["detectors"].items():
        print(f"      {name:<20} {secs:7.1f} s  {alerts:4d} alerts")
    ratio = s["wall"] / bare["wall"]
    print(f"   suite / bare scan    : {ratio:.1f}x wall, {s['cpu'] / bare['cpu']:.1f}x CPU "
          f"(goal <= 3x: {'met' if ratio <= 3 else 'NOT met'})")
    result = {"rows": n, "bare": bare, "suite": s, "ratio": ratio}
    if not args.no_spark and n <= args.spark_max_rows:
        sp = suite(cfg, "spark", args.spark_timeout)
        print(f"   daily suite (Spark local[2]): {fmt(sp, n)}")
        if not sp["timed_out"]:
            if sp["rc"] != 0:
                print(f"      failed: {sp['err'][-2000:]}")
            for name, (alerts, secs) in sp["detectors"].items():
                print(f"      {name:<20} {secs:7.1f} s  {alerts:4d} alerts")
            same = sp["alerts"] == s["alerts"]
            print(f"   Spark / DuckDB suite : {sp['wall'] / s['wall']:.1f}x wall; alert counts per detector "
                  f"{'identical' if same else 'DIFFER: ' + str(sp['alerts'])}")
        result["spark"] = sp
    elif not args.no_spark:
        print(f"   Spark: skipped above --spark-max-rows {args.spark_max_rows:,}")
    print(f"   load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return result


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "absent"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, action="append", help="flow rows of the day (repeatable; default 10,000,000)")
    ap.add_argument("--work", type=Path, default=HERE / "out" / "analyze", help="where generated lakes are cached")
    ap.add_argument("--bare-runs", type=int, default=2, help="bare scan repetitions (the best counts; the first warms the cache)")
    ap.add_argument("--no-spark", action="store_true", help="DuckDB only")
    ap.add_argument("--spark-max-rows", type=int, default=100_000_000, help="largest lake Spark is run on")
    ap.add_argument("--spark-timeout", type=float, default=3600, help="seconds before the Spark run is stopped")
    ap.add_argument("--spark-memory", default="6g", help="spark.driver.memory for local[2]")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before a DuckDB run is stopped")
    ap.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        return bare_child(args.bare_child)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB RAM; "
          f"python {sys.version.split()[0]}, duckdb {_version('duckdb')}, pyspark {_version('pyspark')}")
    for n in args.rows or [10_000_000]:
        bench(n, args)


if __name__ == "__main__":
    main()
