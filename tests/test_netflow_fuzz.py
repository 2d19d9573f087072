"""Hostile input, short run: mutated real and built datagrams never break the decoder's promises.

For every batch of datagrams: no exception (and no swallowed `internal_error`),
every datagram accounted as decoded or rejected, every record counted in
`stats.records` is a drained row, and the template cache and pending buffer
stay within their caps. The long run (>= 1 M datagrams) is fuzz/fuzz_netflow.py,
which reuses `corpus`, `mutate` and `check` from here.
"""
from __future__ import annotations

import random
import shutil
import struct
import subprocess
import time
from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from necoma.collect.netflow import NetflowDecoder
from necoma.schemas import FLOWS
from tests import test_netflow_decoder as B

EXP = "198.51.100.7"
MAX_TEMPLATES = 64
MAX_PENDING = 32
INTERESTING = (0, 1, 2, 3, 4, 5, 9, 10, 255, 256, 257, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
OPS = ("flip", "truncate", "word", "insert", "delete", "splice", "repeat", "random")


# -- corpus ------------------------------------------------------------------------------------------
def built_corpus() -> list[bytes]:
    """Datagrams covering every structure the decoder knows, built with the unit tests' builders."""
    f = B.fset
    var = [(8, 4), (12, 4), (96, 65535), (2, 4), (12345, 65535, 9), (1, 4), (4, 1), (27, 16)]
    var_rec = (b"\x0a\0\0\x05\x0a\0\0\x06" + b"\x04http" + struct.pack(">I", 4) + b"\xff\x01\x00" + b"v" * 256
               + struct.pack(">IB", 400, 17) + b"\x20\x01" + b"\0" * 14)
    opt = f(3, B.ipfix_options_template(600, [(149, 4)], [(34, 4), (160, 8)]))
    return [
        B.v5([{}, {"first": 2**32 - 10}] * 3, seq=0, sampling=0x4010),
        B.v9(f(0, B.template(256, B.V4_FIELDS)), f(256, B.v4_record() * 4), seq=0),
        B.v9(f(1, B.v9_options_template(300, [(2, 4)], [(34, 4), (82, 8)])),
             f(300, struct.pack(">II", 1, 10) + b"eth0\0\0\0\0"), seq=1),
        B.v9(f(256, B.v4_record() * 2), seq=2),
        B.ipfix(f(2, B.template(256, B.V4_FIELDS)), opt, f(600, struct.pack(">IIQ", 0, 4, 1_700_000_000_000)),
                f(256, B.v4_record() * 3), seq=0),
        B.ipfix(f(2, B.template(400, var)), f(400, var_rec * 2), seq=3),
        B.ipfix(f(400, var_rec), f(256, B.v4_record()), seq=5),
        B.ipfix(f(2, struct.pack(">HH", 256, 0)), f(2, struct.pack(">HH", 2, 0)), seq=7),
        B.ipfix(f(2, B.template(500, [(27, 16), (28, 16), (22, 4), (21, 4), (88, 2), (197, 1)])),
                f(500, b"\x20" * 32 + struct.pack(">IIHB", 5, 9, 0, 0x20)), seq=7),
    ]


@lru_cache(maxsize=1)
def real_corpus() -> tuple[bytes, ...]:
    """softflowd's v5, v9 and IPFIX export of a small real pcap, when softflowd is installed."""
    from tests.conftest import SHARED_DATA
    from tests.test_netflow_exporters import Receiver

    pcap = SHARED_DATA / "pcap" / "lab_mixed.pcap"
    if shutil.which("softflowd") is None or not pcap.is_file():
        return ()
    out: list[bytes] = []
    for version in (5, 9, 10):
        r = Receiver()
        try:
            subprocess.run(["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{r.port}", "-v", str(version), "-D"],
                           capture_output=True, timeout=60)
        finally:
            out += r.close()
    return tuple(out)


def corpus() -> list[bytes]:
    return built_corpus() + list(real_corpus())


# -- mutation -------------------------------------------------------------------------------------------
def apply(data: bytes, ops: list[tuple[str, int, int]], other: bytes = b"") -> bytes:
    """Deterministic mutations: (kind, position, value)."""
    b = bytearray(data)
    for kind, pos, value in ops:
        n = len(b)
        p = pos % (n + 1)
        if kind == "flip" and n:
            b[pos % n] ^= (value % 255) + 1
        elif kind == "truncate":
            del b[p:]
        elif kind == "word" and n >= 2:  # lengths, counts, ids: where parsers trust the input
            q = (pos % (n - 1)) & ~1 if value % 3 else min((pos % 8) * 4 + 16, n - 2)
            b[q:q + 2] = struct.pack(">H", INTERESTING[value % len(INTERESTING)] if value % 2 else value & 0xFFFF)
        elif kind == "insert":
            b[p:p] = bytes((value + i) & 0xFF for i in range(value % 17))
        elif kind == "delete":
            del b[p:p + value % 64 + 1]
        elif kind == "splice":
            b = b[:p] + other[value % (len(other) + 1):]
        elif kind == "repeat" and n:
            chunk = b[p:p + value % 128 + 4]
            b[p:p] = chunk * (value % 3 + 1)
        elif kind == "random":
            b = bytearray(b[:2]) + bytearray(random.Random(value).randbytes(pos % 1500))
    return bytes(b[:65535])


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    ops = [(rng.choice(OPS), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(rng.randint(1, 3))]
    return apply(data, ops, other)


def new_decoder() -> NetflowDecoder:
    return NetflowDecoder(template_wait_seconds=5, max_pending_datagrams=MAX_PENDING,
                          max_templates_per_exporter=MAX_TEMPLATES)


def check(dec: NetflowDecoder, now: float) -> int:
    """The decoder's promises after any input; returns the rows drained."""
    tables = dec.drain(now)
    rows = 0
    if tables:
        assert set(tables) == {"flows"} and tables["flows"].schema == FLOWS
        rows = tables["flows"].num_rows
    for exporter, s in dec.stats.exporters.items():
        assert "internal_error" not in s.rejected, s.rejected
        outcomes = dec.datagram_outcomes.get(exporter, {})
        assert s.datagrams == outcomes.get("decoded", 0) + outcomes.get("rejected", 0)
        assert dec.templates.count(exporter) <= MAX_TEMPLATES
        assert dec.pending.count(exporter) <= MAX_PENDING
        assert s.sequence_gaps >= 0 and s.template_misses >= 0
    assert rows == sum(s.records for s in dec.stats.exporters.values())
    for s in dec.stats.exporters.values():
        s.records = 0  # rows are checked per drain
    return rows


# -- the short runs ---------------------------------------------------------------------------------------
op = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16), st.integers(0, 1 << 16))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.lists(op, max_size=3)), min_size=1, max_size=8))
def test_mutated_datagrams_hypothesis(picks):
    seeds = corpus()
    dec = new_decoder()
    for i, (index, ops) in enumerate(picks):
        data = apply(seeds[index % len(seeds)], ops, seeds[(index + 1) % len(seeds)])
        dec.feed(data, EXP, 1000.0 + i)
    check(dec, 1000.0)
    check(dec, 2000.0)  # after every pending set expired


def test_thousands_of_mutated_datagrams_seeded():
    seeds = corpus()
    rng = random.Random(20261203)
    dec = new_decoder()
    now = time.time()
    for i in range(5000):
        data = seeds[rng.randrange(len(seeds))]
        if rng.random() < 0.8:
            data = mutate(rng, data, seeds[rng.randrange(len(seeds))])
        dec.feed(data, EXP if i % 7 else "203.0.113.9", now + i / 1000)
        if i % 500 == 499:
            check(dec, now + i / 1000)
    check(dec, now + 100)
    outcomes = dec.datagram_outcomes[EXP]
    assert outcomes["decoded"] > 0 and outcomes["rejected"] > 0  # both paths were exercised


def test_template_flood_stays_bounded():
    dec = new_decoder()
    for i in range(2000):  # colliding ids over many domains, redefinitions, withdrawals
        fields = [(8, 4), (12, 4), (1, 1 + i % 8)]
        sets = [B.fset(2, B.template(256 + i % 300, fields))]
        if i % 5 == 0:
            sets.append(B.fset(2, struct.pack(">HH", 256 + i % 300, 0)))
        dec.feed(B.ipfix(*sets, domain=i % 50), EXP, 1000.0)
        dec.feed(B.ipfix(B.fset(256 + i % 300, b"\0" * 40), domain=1000 + i), EXP, 1000.0)
    check(dec, 1000.0)
    assert dec.templates.count(EXP) <= MAX_TEMPLATES and dec.pending.count(EXP) <= MAX_PENDING
    assert dec.stats.of(EXP).rejected["template_cap"] > 0 and dec.stats.of(EXP).template_misses > 0


def test_real_corpus_is_used_when_softflowd_exists():
    from tests.conftest import SHARED_DATA

    if shutil.which("softflowd") is None or not SHARED_DATA.is_dir():
        return
    assert len(real_corpus()) > 10
