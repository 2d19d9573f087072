"""TAXII 2.1 exchange benchmark: necoma beside medallion (OASIS's reference server), same machine, same run.

Measures
1. ingest: STIX objects per second through TAXII POST (envelopes of --batch
   objects, one client), every object validated (necoma.exchange.stixcheck,
   stix2 for what it cannot prove); with --postgres also on PostgreSQL. Also
   the server's CPU time per object, which a busy shared machine distorts less;
2. page latency: p50/p95 of GET .../objects/?limit=100 with filters (none,
   match[type], added_after, match[id], a deep `next` page) on a collection of
   --collection-size objects.

Objects are a realistic mix: the STIX bundles necoma makes from incidents
(indicators, SCOs, observed-data, sightings, relationships, ...).
The big collection is filled by TAXII POST up to --objects, then by direct
SQL insert of the same kind of rows (ingesting a million objects through
TAXII would take the whole run; the per-object ingest cost is measured in 1).
medallion's memory backend scans the collection for every added object
(O(n^2) ingest), so it gets --medallion-objects objects.

    .venv/bin/python bench/bench_taxii.py [--objects 20000] [--collection-size 1000000] [--postgres]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import insert

from necoma.analyze.alert import Alert, Subject
from necoma.exchange import admin, tlp
from necoma.exchange.db import now_us, open_engine, session_factory
from necoma.exchange.models import StixObject
from necoma.exchange.testing import MedallionServer, PostgresCluster, free_port
from necoma.exchange.timestamps import format_us, parse_us
from necoma.knowledge.correlate import build
from necoma.knowledge.stix import incident_objects

TAXII = "application/taxii+json;version=2.1"
T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def make_objects(n: int, seed: int = 1) -> list[dict]:
    """About n distinct STIX objects from synthetic botnet and amplification incidents."""
    rnd = random.Random(seed)
    out: dict[str, dict] = {}
    i = 0
    while len(out) < n:
        i += 1
        bots = [Subject(role="bot", value=f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}")
                for _ in range(3)]
        cnc = Subject(role="cnc", value=f"203.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}")
        dom = Subject(role="domain", value=f"{rnd.getrandbits(48):x}.com")
        alert = Alert(detector="zeus_dga", window_start=T0 + timedelta(hours=i), window_end=T0 + timedelta(hours=i + 24),
                      subjects=[*bots, cnc, dom], score=0.9, confidence="high", metrics={"flows": 5})
        for o in incident_objects(build([alert]), f"org{i % 7}", "green", now=T0 + timedelta(days=2)):
            if o.type != "marking-definition":
                out[o.id] = json.loads(o.serialize())
    return list(out.values())[:n]


def ingest(url: str, auth: tuple[str, str], objects: list[dict], batch: int, pid: int) -> tuple[float, float]:
    """(objects/s wall clock, server CPU microseconds per object). The CPU figure holds on a busy machine."""
    with httpx.Client(timeout=600) as c:
        t, cpu = time.perf_counter(), _cpu_seconds(pid)
        for i in range(0, len(objects), batch):
            r = c.post(url + "objects/", content=json.dumps({"objects": objects[i:i + batch]}), auth=auth,
                       headers={"Content-Type": TAXII, "Accept": TAXII})
            r.raise_for_status()
            status = r.json()
            assert status.get("failure_count", 0) == 0, status.get("failures", [])[:3]
        return len(objects) / (time.perf_counter() - t), (_cpu_seconds(pid) - cpu) / len(objects) * 1e6


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ingest_row(server: str, rate: float, cpu_us: float, n: int, batch: int) -> tuple[str, ...]:
    return (server, "ingest", f"{rate:,.0f} objects/s ({1e6 / cpu_us:,.0f} per server CPU-second)",
            f"{n:,} objects, envelopes of {batch}")


def page_latencies(url: str, auth: tuple[str, str], ids: list[str], stamps: list[str], rounds: int) -> dict[str, tuple]:
    rnd = random.Random(2)
    cases = {
        "first page": lambda: {"limit": "100"},
        "match[type]=indicator": lambda: {"limit": "100", "match[type]": "indicator"},
        "added_after=<random>": lambda: {"limit": "100", "added_after": rnd.choice(stamps)},
        "match[id]=<random>": lambda: {"limit": "100", "match[id]": rnd.choice(ids)},
        "type+added_after": lambda: {"limit": "100", "match[type]": "sighting", "added_after": rnd.choice(stamps)},
    }
    out = {}
    with httpx.Client(timeout=120) as c:
        for name, params in cases.items():
            times, counts = [], []
            for _ in range(rounds):
                p = params()
                t = time.perf_counter()
                r = c.get(url + "objects/", params=p, auth=auth, headers={"Accept": TAXII})
                times.append(time.perf_counter() - t)
                r.raise_for_status()
                counts.append(len(r.json().get("objects", [])))
            out[name] = (_pct(times, 50), _pct(times, 95), statistics.mean(counts))
        # Deep pages: follow `next` from a random added_after, 5 pages in.
        times = []
        for _ in range(max(1, rounds // 5)):
            p = {"limit": "100", "added_after": rnd.choice(stamps[: len(stamps) // 2])}
            for _page in range(5):
                t = time.perf_counter()
                r = c.get(url + "objects/", params=p, auth=auth, headers={"Accept": TAXII})
                times.append(time.perf_counter() - t)
                body = r.json()
                if not body.get("more"):
                    break
                p = {**p, "next": body["next"]}
        out["next pages"] = (_pct(times, 50), _pct(times, 95), 100)
    return out


def _pct(values: list[float], p: int) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def bulk_fill(db_url: str, collection_id: str, owner: int, template: list[dict], target: int) -> None:
    """Top the collection up to `target` rows by SQL, cloning the template objects with new ids."""
    engine = open_engine(db_url)
    sessions = session_factory(engine)
    with sessions() as s:
        have = s.query(StixObject).count()
    added, chunk, base = have, 20_000, now_us()
    rnd = random.Random(3)
    while added < target:
        rows = []
        for k in range(min(chunk, target - added)):
            obj = dict(rnd.choice(template))
            kind = obj["type"]
            obj["id"] = f"{kind}--{_uuid4(rnd)}"
            stamp = obj.get("modified") or obj.get("created")
            rows.append({"collection_id": collection_id, "stix_id": obj["id"], "stix_type": kind, "spec_version": "2.1",
                         "version_us": parse_us(stamp) if stamp else base, "date_added_us": base + added + k,
                         "tlp": tlp.level_of(obj), "owner_org_id": owner, "body": json.dumps(obj, separators=(",", ":"))})
        with sessions.begin() as s:
            s.execute(insert(StixObject), rows)
        added += len(rows)
    engine.dispose()


def _uuid4(rnd: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=20_000, help="objects ingested through TAXII POST")
    ap.add_argument("--batch", type=int, default=1000, help="objects per envelope")
    ap.add_argument("--collection-size", type=int, default=1_000_000, help="objects in the collection for page latency")
    ap.add_argument("--medallion-objects", type=int, default=1_000,
                    help="objects for medallion (its memory backend is O(n^2) in ingest and slow to page)")
    ap.add_argument("--rounds", type=int, default=100, help="requests per page-latency case")
    ap.add_argument("--postgres", action="store_true",
                    help="also measure ingest with the store on a throwaway local PostgreSQL (fsync off, as in the tests)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="necoma-bench-taxii-"))
    db_url = f"sqlite:///{work / 'exchange.sqlite'}"
    server, port, key, col_id, org_id = _start_necoma(work, db_url)
    objects = make_objects(args.objects)
    print(f"{len(objects)} objects: " + ", ".join(f"{t} {n}" for t, n in _types(objects)))
    rows = []
    try:
        base = f"http://127.0.0.1:{port}/taxii2/root/collections/{col_id}/"
        rows.append(_ingest_row("necoma (SQLite)", *ingest(base, ("u", key), objects, args.batch, server.pid),
                                len(objects), args.batch))
        print(rows[-1])
        t = time.perf_counter()
        bulk_fill(db_url, col_id, org_id, objects, args.collection_size)
        print(f"filled to {args.collection_size:,} rows by SQL in {time.perf_counter() - t:.0f} s")
        ids = [o["id"] for o in objects]
        stamps = _stamps(base, ("u", key), db_url)
        for name, (p50, p95, n) in page_latencies(base, ("u", key), ids, stamps, args.rounds).items():
            rows.append(("necoma (SQLite)", f"page: {name}", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                         f"{args.collection_size:,} objects, {n:.0f} per page"))
            print(rows[-1])
    finally:
        server.terminate()
        server.wait(timeout=30)

    if args.postgres:
        rows.append(_postgres_ingest(work, objects, args.batch))
        print(rows[-1])

    with MedallionServer(max_page_size=100) as med:
        auth = (med.USER, med.PASSWORD)
        m_objects = objects[: args.medallion_objects]
        rows.append(_ingest_row("medallion 3.0 (memory)", *ingest(med.collection_url, auth, m_objects, args.batch,
                                                                  med.proc.pid), len(m_objects), args.batch))
        print(rows[-1])
        stamps = _stamps(med.collection_url, auth)
        for name, (p50, p95, n) in page_latencies(med.collection_url, auth, [o["id"] for o in m_objects], stamps,
                                                   max(5, args.rounds // 10)).items():
            rows.append(("medallion 3.0 (memory)", f"page: {name}", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                         f"{len(m_objects):,} objects, {n:.0f} per page"))
            print(rows[-1])

    print("\n| server | measure | result | data |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def _start_necoma(work: Path, db_url: str):
    """`necoma serve` on a fresh store at db_url: (process, port, analyst key, collection id, org id)."""
    engine = open_engine(db_url)
    with session_factory(engine).begin() as s:
        org = admin.add_org(s, "bench")
        key = admin.create_key(s, "bench", "analyst")[1]
        col = admin.add_group(s, "bench")[1]
        admin.add_member(s, "bench", "bench")
        col_id, org_id = col.id, org.id
    engine.dispose()
    cfg = work / f"necoma-{db_url.split(':')[0]}.toml"
    cfg.write_text(f'data_dir = "{work}"\n[exchange]\ndatabase_url = "{db_url}"\nrate_per_second = 1e9\n'
                   f'rate_burst = 1000000000\nmax_request_bytes = 104857600\n')
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "necoma.cli.main", "--config", str(cfg), "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(f"http://127.0.0.1:{port}/taxii2/", ("u", key))
    return server, port, key, col_id, org_id


def _postgres_ingest(work: Path, objects: list[dict], batch: int) -> tuple[str, ...]:
    cluster = PostgresCluster().start()
    try:
        server, port, key, col_id, _ = _start_necoma(work, cluster.new_database())
        try:
            rate, cpu_us = ingest(f"http://127.0.0.1:{port}/taxii2/root/collections/{col_id}/", ("u", key), objects,
                                  batch, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        cluster.stop()
    return _ingest_row("necoma (PostgreSQL)", rate, cpu_us, len(objects), batch)


def _types(objects: list[dict]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for o in objects:
        counts[o["type"]] = counts.get(o["type"], 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _stamps(url: str, auth, db_url: str | None = None) -> list[str]:
    """200 date_added values of objects in the collection, spread over it."""
    rnd = random.Random(4)
    if db_url:  # necoma: straight from the store
        engine = open_engine(db_url)
        with session_factory(engine)() as s:
            hi = s.query(StixObject.seq).order_by(StixObject.seq.desc()).limit(1).scalar()
            seqs = [rnd.randrange(1, hi + 1) for _ in range(200)]
            found = [r[0] for r in s.query(StixObject.date_added_us).filter(StixObject.seq.in_(seqs))]
        engine.dispose()
        return [format_us(v - 1) for v in found]
    stamps, params = [], {"limit": "100"}
    with httpx.Client(timeout=120) as c:
        while True:  # medallion: walk the whole manifest
            body = c.get(url + "manifest/", params=params, auth=auth, headers={"Accept": TAXII}).json()
            stamps += [o["date_added"] for o in body.get("objects", [])]
            if not body.get("more"):
                break
            params = {**params, "next": body["next"]}
    return [rnd.choice(stamps) for _ in range(200)]


def _wait(url: str, auth) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, auth=auth, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
