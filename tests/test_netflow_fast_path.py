"""feed_many (the compiled v9 batch walk) against feed, datagram by datagram: the same rows and counters.

Real exporter output is compared in test_netflow_exporters.py (every softflowd,
nfreplay and pmacct case goes through `assert_batches_equal`); here: a steady
v9 stream with gaps, reordering, duplicates, template and options changes and
several exporters, cut into batches of random sizes; thousands of mutated
datagrams; and the compiled IPv4 text against the numpy reference.
"""
from __future__ import annotations

import random
import struct

import numpy as np
import pyarrow as pa
import pytest

from necoma.collect.netflow import NetflowDecoder
from necoma.collect.netflow import fast_path
from necoma.collect.netflow.text import ipv4_text, ipv4_text_fast
from tests import test_netflow_decoder as B
from tests.test_netflow_fuzz import corpus, mutate

pytestmark = pytest.mark.skipif(fast_path.kernels() is None, reason="numba not installed: feed_many feeds one by one")

NOW = 1_800_000_000.0


def _decoder(**kw) -> NetflowDecoder:
    return NetflowDecoder(**kw)


def sizes(rng: random.Random):
    while True:
        yield rng.choice((1, 2, 7, 64, 300))


def feed_batches(dec: NetflowDecoder, datagrams: list[bytes], peers: list[str], rng: random.Random,
                 now: float = NOW) -> None:
    """feed_many in batches of random sizes, datagrams at random places of a reused buffer."""
    buf = np.zeros(1 << 20, np.uint8)
    cut = sizes(random.Random(rng.random()))
    i = 0
    while i < len(datagrams):
        n = next(cut)
        chunk, who = datagrams[i:i + n], peers[i:i + n]
        offs, pos = [], rng.randrange(16)
        for d in chunk:
            buf[pos:pos + len(d)] = np.frombuffer(d, np.uint8)
            offs.append(pos)
            pos += len(d) + rng.randrange(3)
        buf[pos:pos + 64] = rng.randrange(256)  # stale bytes after the batch must not be read
        dec.feed_many(buf, np.array(offs, np.int64), np.array([len(d) for d in chunk], np.int64), who, now + i)
        i += n


def feed_each(dec: NetflowDecoder, datagrams: list[bytes], peers: list[str], rng: random.Random,
              now: float = NOW) -> None:
    """The reference: `feed` one by one, with the same receive times as feed_batches gives."""
    cut = sizes(random.Random(rng.random()))
    i = 0
    while i < len(datagrams):
        n = next(cut)
        for d, p in zip(datagrams[i:i + n], peers[i:i + n]):
            dec.feed(d, p, now + i)
        i += n


def plain_rows(t: pa.Table | None) -> list[tuple]:
    if t is None:
        return []
    # timestamps as integers: misparsed (mutated) records may lie outside Python's datetime range
    t = t.cast(pa.schema([pa.field(f.name, pa.int64()) if pa.types.is_timestamp(f.type) else f for f in t.schema]))
    return [tuple(r.values()) for r in t.to_pylist()]


def sorted_rows(dec: NetflowDecoder, now: float) -> list[tuple]:
    rows = plain_rows(dec.drain(now).get("flows"))
    return sorted(rows, key=lambda r: tuple((v is None, 0 if v is None else v) for v in r))


def assert_same(ref: NetflowDecoder, fast: NetflowDecoder, now: float = NOW + 10**6) -> None:
    assert fast.stats.as_dict() == ref.stats.as_dict()
    assert fast.datagram_outcomes == ref.datagram_outcomes
    assert sorted_rows(fast, now) == sorted_rows(ref, now)
    assert fast.templates.count() == ref.templates.count() and fast.pending.count() == ref.pending.count()
    assert fast.interface_names() == ref.interface_names()


def assert_batches_equal(datagrams: list[bytes], exporter: str = "127.0.0.1", seed: int = 0) -> None:
    """Used by the real-exporter tests: their datagrams decoded both ways."""
    peers = [exporter] * len(datagrams)
    ref, fast = NetflowDecoder(), NetflowDecoder()
    feed_each(ref, datagrams, peers, random.Random(seed))
    feed_batches(fast, datagrams, peers, random.Random(seed))
    v9 = sum(d[:2] == b"\0\x09" for d in datagrams)
    if fast_path.kernels() is not None and v9 > 50:  # the kernel took part (templates first go through feed)
        assert fast._fast.taken > v9 // 2, (fast._fast.taken, v9)
    assert_same(ref, fast)


# -- a steady stream and everything that interrupts it -----------------------------------------------------
TPL = B.fset(0, B.template(256, B.V4_FIELDS))
OPT_TPL = B.fset(1, B.v9_options_template(300, [(2, 4)], [(34, 4), (82, 8)]))


def opt_data(rate: int) -> bytes:
    return B.fset(300, struct.pack(">II", 1, rate) + b"eth0\0\0\0\0")


def records(i: int, n: int) -> bytes:
    return b"".join(B.v4_record(src=f"10.{i % 256}.{k}.1", sport=1000 + k, packets=i + k + 1, nbytes=40 * (k + 1))
                    for k in range(n))


def stream(rng: random.Random, count: int, source: int = 0) -> list[bytes]:
    out = []
    seq = 0
    for i in range(count):
        sets = []
        if i % 16 == 0:
            sets += [TPL, OPT_TPL, opt_data(10 if i < count // 2 else 20)]  # re-sent; the rate changes once
        sets.append(B.fset(256, records(i, rng.randint(1, 30))))
        if i % 50 == 25:
            sets.append(B.fset(300, struct.pack(">II", 2, 5) + b"eth1\0\0\0\0"))  # another interface
        if i == count // 3:
            sets.insert(0, B.fset(0, B.template(256, B.V4_FIELDS[:-1] + [(5, 1)])))  # template changes
        out.append(B.v9(*sets, seq=seq, source=source, uptime=1000 + i))
        seq += 1
        r = rng.random()
        if r < 0.02:
            seq += rng.randint(1, 5)  # lost datagrams: a gap
        elif r < 0.03 and out:
            out.append(out[-1])  # duplicate
    for _ in range(count // 40):  # reordering
        j = rng.randrange(len(out) - 1)
        out[j], out[j + 1] = out[j + 1], out[j]
    return out


def mutated_stream(rng: random.Random, datagrams: list[bytes], others: list[bytes]) -> list[bytes]:
    """An in-order stream (most of it reaches the kernel), 30 % mutated by splicing other
    datagrams into it, and 5 % more mutated strangers inserted before their neighbour."""
    out = []
    for d in datagrams:
        r = rng.random()
        if r < 0.3:
            d = mutate(rng, d, others[rng.randrange(len(others))])
        elif r < 0.35:
            out.append(mutate(rng, others[rng.randrange(len(others))], d))
        out.append(d)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_steady_stream_with_gaps_reorders_changes_and_two_exporters(seed):
    rng = random.Random(seed)
    a, b, c = stream(rng, 400), stream(rng, 300, source=7), stream(rng, 200)
    queues = [[(d, "192.0.2.1") for d in a], [(d, "192.0.2.1") for d in b], [(d, "198.51.100.2") for d in c]]
    datagrams, peers = [], []
    while any(queues):  # interleaved, each stream in its own order
        q = rng.choice([q for q in queues if q])
        run = rng.randint(1, 40)
        for d, p in q[:run]:
            datagrams.append(d)
            peers.append(p)
        del q[:run]
    ref, fast = NetflowDecoder(), NetflowDecoder()
    feed_each(ref, datagrams, peers, random.Random(seed))
    feed_batches(fast, datagrams, peers, random.Random(seed))
    st = ref.stats.of("192.0.2.1")
    assert st.sequence_gaps > 0 and st.records > 10_000  # the case is not trivial
    assert fast._fast.taken > len(datagrams) // 2
    assert_same(ref, fast)


def test_data_before_template_and_truncated_sets_in_batches():
    rng = random.Random(5)
    body = records(1, 3)
    datagrams = [
        B.v9(B.fset(256, body), seq=0),  # held until the template comes
        B.v9(TPL, B.fset(256, body), seq=1),
        B.v9(B.fset(256, body + b"\x01\x02"), seq=2),  # truncated record
        B.v9(B.fset(256, body), B.fset(17, b"\0\0\0\0"), seq=3),  # reserved set id
        B.v9(B.fset(256, body), seq=4) + b"\x07",  # trailing bytes
        B.v9(B.fset(256, body), seq=5)[:-3],  # set length beyond the datagram
        B.v9(B.fset(256, body), seq=6) + b"\0\0\0\0\0",  # zero padding: fine
        B.v9(B.fset(999, body), seq=7),  # unknown template
        B.v9(B.fset(256, body), seq=8)[:19],  # short header
        struct.pack(">H", 7) + b"\0" * 30,  # bad version
    ]
    peers = ["192.0.2.9"] * len(datagrams)
    ref, fast = NetflowDecoder(), NetflowDecoder()
    feed_each(ref, datagrams, peers, random.Random(5))
    feed_batches(fast, datagrams, peers, rng)
    assert_same(ref, fast)


def test_mutated_datagrams_give_the_same_counts_and_rows():
    """The kernel's bounds checks: mutations of a steady stream either go through it or through feed, alike."""
    rng = random.Random(11)
    datagrams = mutated_stream(rng, stream(random.Random(1), 3000), corpus())
    peers = ["192.0.2.1"] * len(datagrams)
    ref = NetflowDecoder(template_wait_seconds=5, max_pending_datagrams=32, max_templates_per_exporter=64)
    fast = NetflowDecoder(template_wait_seconds=5, max_pending_datagrams=32, max_templates_per_exporter=64)
    feed_each(ref, datagrams, peers, random.Random(3))
    feed_batches(fast, datagrams, peers, random.Random(3))
    assert fast._fast.taken > 500  # many went through the kernel, not only through feed
    assert all("internal_error" not in st.rejected for st in fast.stats.exporters.values())
    assert_same(ref, fast, now=NOW + 10)  # pending sets still held: both hold the same


def test_kernel_failure_falls_back_to_feed(monkeypatch):
    rng = random.Random(2)
    datagrams = stream(rng, 50)
    peers = ["192.0.2.1"] * len(datagrams)
    ref, fast = NetflowDecoder(), NetflowDecoder()
    feed_each(ref, datagrams, peers, random.Random(4))

    def broken(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(fast_path.K, "walk", broken)
    feed_batches(fast, datagrams, peers, random.Random(4))
    assert fast._fast.broken
    assert_same(ref, fast)


def test_compiled_ipv4_text_equals_numpy_reference():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.integers(0, 2**32, 100_000, dtype=np.uint64),
                             [0, 1, 9, 10, 99, 100, 255, 256, 0x0A000001, 0xFFFFFFFF, 0x64646464]]).astype(np.uint32)
    fast, ref = ipv4_text_fast(values), ipv4_text(values)
    assert fast.equals(ref)
    some = np.array([0x0A000001, 0xFFFFFFFF, 0x64646464, 0, 0x01020304], np.uint32)
    assert ipv4_text_fast(some).to_pylist() == ["10.0.0.1", "255.255.255.255", "100.100.100.100", "0.0.0.0", "1.2.3.4"]
    assert ipv4_text_fast(np.zeros(0, np.uint32)).to_pylist() == []


def test_background_decode_gives_the_same_rows():
    """The collector decodes full batches in a worker thread: same tables, in the same order, once waited for."""
    rng = random.Random(8)
    datagrams = stream(rng, 6000)  # > BATCH_RECORDS records: background decodes while feeding
    peers = ["192.0.2.1"] * len(datagrams)
    ref, bg = NetflowDecoder(), NetflowDecoder(background_decode=True)
    feed_batches(ref, datagrams, peers, random.Random(1))
    early = []
    for i in range(0, len(datagrams), 500):
        feed_batches(bg, datagrams[i:i + 500], peers[i:i + 500], random.Random(1))
        early += plain_rows(bg.drain(NOW, wait=False).get("flows"))  # only what has finished
    rows = early + plain_rows(bg.drain(NOW).get("flows"))
    key = lambda r: tuple((v is None, 0 if v is None else v) for v in r)  # noqa: E731
    assert len(rows) > 65_536 and sorted(rows, key=key) == sorted_rows(ref, NOW)
    counters = [{e: {k: v for k, v in st.items() if k != "last_seen"} for e, st in d.stats.as_dict().items()}
                for d in (bg, ref)]  # receive times differ: the batches were cut differently
    assert counters[0] == counters[1]


def test_counters_of_every_width_keep_the_low_bits_the_column_holds():
    """Numeric fields go straight from big-endian to the column type: the value mod 2^bits, as via uint64."""
    rng = random.Random(4)
    fields = [(8, 4), (12, 4), (6, 2), (5, 1), (16, 4), (1, 8), (10, 2), (14, 8), (7, 2), (2, 4)]
    tpl = B.fset(0, B.template(300, fields))
    recs, want = b"", []
    for _ in range(50):
        vals = [rng.getrandbits(8 * n) for _, n in fields]
        recs += b"".join(v.to_bytes(n, "big") for v, (_, n) in zip(vals, fields))
        want.append((vals[2] & 0xFF, vals[3], vals[4], vals[5], vals[6], vals[7] & 0xFFFFFFFF, vals[8], vals[9]))
    dec = NetflowDecoder()
    feed_batches(dec, [B.v9(tpl, B.fset(300, recs), seq=0), B.v9(B.fset(300, recs), seq=1)], ["192.0.2.5"] * 2,
                 random.Random(1))
    got = dec.drain(NOW)["flows"].to_pylist()
    cols = ("tcp_flags", "tos", "src_as", "bytes", "input_if", "output_if", "src_port", "packets")
    assert [tuple(r[c] for c in cols) for r in got] == want * 2
    assert dec._fast.taken == 1
