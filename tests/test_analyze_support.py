"""Helpers for the analysis tests: build a small lake with LakeWriter, run a detector on it."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from necoma.analyze.alert import Alert
from necoma.analyze.runner import run_detector
from necoma.lake.engines import open_engine
from necoma.lake.writer import LakeWriter

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)


def at(hour: int = 0, minute: int = 0, second: int = 0, day: int = 0) -> dt.datetime:
    return DAY + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def flow(t, src, dst, sport, dport, *, proto=17, packets=1, bytes=100, rate=1, flags=0, fragments=0, dur=1.0) -> dict:
    return {
        "start_time": t, "end_time": t + dt.timedelta(seconds=dur), "exporter": "192.0.2.254",
        "src_ip": src, "dst_ip": dst, "src_port": sport, "dst_port": dport, "protocol": proto,
        "tcp_flags": flags, "packets": packets, "bytes": bytes, "sampling_rate": rate,
        "fragments": fragments, "source": "netflow9",
    }


def packet(t, src, dst, sport, dport, *, proto=17, length=100, rate=1, offset=0, more=False) -> dict:
    return {
        "time": t, "exporter": "192.0.2.253", "sampling_rate": rate, "src_ip": src, "dst_ip": dst,
        "src_port": sport, "dst_port": dport, "protocol": proto, "ip_version": 6 if ":" in src else 4,
        "ip_length": length, "fragment_offset": offset, "more_fragments": more, "source": "sflow",
    }


def dns(t, client, qname, *, server="192.0.2.53", rcode=0, response=True, answers=(), qtype=1, size=None) -> dict:
    return {
        "time": t, "client_ip": client, "server_ip": server, "client_port": 40000, "transport": "udp",
        "transaction_id": 1, "qname": qname, "qtype": qtype, "qclass": 1, "is_response": response,
        "rcode": rcode if response else None, "answer_count": len(answers),
        "answers": [{"name": qname, "type": 1, "ttl": 60, "data": a} for a in answers],
        "response_size": size, "source": "pcap",
    }


def write_lake(root: Path, **tables: list[dict]) -> Path:
    with LakeWriter(root, tag="test") as w:
        for name, rows in tables.items():
            if rows:
                w.write(name, rows)
    return root


def run(detector_cls, root: Path, start=None, end=None, *, engine="duckdb", enricher=None, **params) -> list[Alert]:
    start = start or DAY
    end = end or DAY + dt.timedelta(days=1)
    with open_engine(engine, root) as eng:
        return run_detector(detector_cls(params), eng, start, end, enricher=enricher).alerts


def test_helpers_write_a_readable_lake(tmp_path):
    write_lake(tmp_path, flows=[flow(at(1), "10.0.0.1", "10.0.0.2", 1234, 80, proto=6, bytes=500, rate=10)])
    with open_engine("duckdb", tmp_path) as eng:
        rows = eng.query("SELECT sum(bytes * sampling_rate) AS b FROM flows WHERE start_time >= :s", {"s": DAY})
    assert rows == [{"b": 5000}]
