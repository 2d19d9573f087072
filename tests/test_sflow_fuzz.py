"""Hostile sFlow input, short run: mutated real datagrams and random bytes never escape as exceptions.

Seeds are datagrams pmacctd's sFlow probe exported for lab_mixed.pcap (when
pmacctd and the shared data are present) plus hand-built ones covering every
sample and record type we decode. The long run is fuzz/fuzz_sflow.py.

What is checked for every datagram:
- `feed` returns normally and never needed its last-resort `internal_error`;
- it is accounted for: counted in `datagrams`, and either rejected as a whole
  (broken header), or each of its samples is decoded or rejected, so a datagram
  that declares samples moves `records` or `rejected`;
- drains return tables with the lake schemas and no more rows than samples.
"""
from __future__ import annotations

import random
import shutil
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from necoma.collect.sflow import SflowDecoder
from necoma.collect.sflow.xdr import Malformed, read_header
from necoma.schemas import schema_of
from tests import sflow_encode as enc
from tests.conftest import SHARED_DATA

INTERESTING = (0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x3FFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


def built_seeds() -> list[bytes]:
    """Every structure the decoder reads, from the encoder."""
    eth_dns = bytes.fromhex(
        "ffffffffffff02fc000000010800450000390001000040110000c0000201c0000235"
        "0400003500250000abcd01000001000000000000076578616d706c6503636f6d0000010001")
    v6 = bytes.fromhex("6000000000200640" + "20010db8" + "00" * 11 + "01" + "20010db8" + "00" * 11 + "02"
                       + "9c4000500000000100000000500220000000000000000000")
    samples = [
        enc.flow_sample([enc.raw_header(eth_dns, stripped=4, frame_length=len(eth_dns) + 4), enc.ext_switch(10, 0, 20, 0),
                         enc.ext_router(), enc.ext_gateway(src_as=64500, dst_path=[1, 2, 3], communities=[7])],
                        seq=1, rate=100),
        enc.flow_sample([enc.raw_header(v6, protocol=enc.HEADER_IPV6)], seq=2, expanded=True),
        enc.flow_sample([enc.sampled_ipv4("10.0.0.1", "10.0.0.2", src_port=1, dst_port=2)], seq=3),
        enc.flow_sample([enc.sampled_ipv6("2001:db8::1", "2001:db8::2")], seq=4, expanded=True),
        enc.counter_sample([enc.generic_counters(if_index=1, in_octets=5), enc.ethernet_counters()], seq=5),
        enc.counter_sample([enc.generic_counters(if_index=2)], seq=6, expanded=True),
        enc.tagged(5, b"\0" * 16),
    ]
    return [enc.datagram(samples, seq=1), enc.datagram(samples[:3], agent="2001:db8::9", seq=2),
            enc.datagram([], seq=3)]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    out = built_seeds()
    pcap = SHARED_DATA / "pcap" / "lab_mixed.pcap"
    if shutil.which("pmacctd") and pcap.exists():
        from tests.test_sflow_exporters import pmacctd_export
        out += [d for d, _, _ in pmacctd_export(pcap, tmp_path_factory.mktemp("pmacct"), rate=1)]
    return out


def mutate(data: bytes, rnd: random.Random) -> bytes:
    """One to four edits of the kinds that break length-prefixed binary formats."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.randrange(7)
        if not b:
            b += rnd.randbytes(rnd.randint(1, 64))
            continue
        pos = rnd.randrange(len(b))
        if kind == 0:  # bit flip
            b[pos] ^= 1 << rnd.randrange(8)
        elif kind == 1:  # a word that is a count, a length or a format
            pos -= pos % 4
            if pos + 4 <= len(b):
                struct.pack_into(">I", b, pos, rnd.choice(INTERESTING + (len(b), len(b) - pos, rnd.getrandbits(32))))
        elif kind == 2:  # truncation
            del b[pos:]
        elif kind == 3:  # random bytes in place
            n = rnd.randint(1, 16)
            b[pos:pos + n] = rnd.randbytes(n)
        elif kind == 4:  # insertion
            b[pos:pos] = rnd.randbytes(rnd.randint(1, 12))
        elif kind == 5:  # deletion
            del b[pos:pos + rnd.randint(1, 12)]
        else:  # duplicate a slice (repeated samples/records)
            n = rnd.randint(4, 200)
            b[pos:pos] = b[pos:pos + n]
    return bytes(b)


def feed_and_check(dec: SflowDecoder, data: bytes, exporter: str = "192.0.2.1") -> None:
    s = dec.stats.of(exporter)
    before = (s.datagrams, s.records, sum(s.rejected.values()))
    dec.feed(data, exporter, time.time())
    after = (s.datagrams, s.records, sum(s.rejected.values()))
    assert "internal_error" not in s.rejected, data.hex()
    assert after[0] == before[0] + 1
    moved = (after[1] - before[1]) + (after[2] - before[2])
    try:
        header = read_header(data)
    except Malformed:
        assert after[2] - before[2] == 1 and after[1] == before[1], data.hex()  # rejected as a whole
        return
    if header.n_samples:
        assert moved >= 1, data.hex()


def check_drain(dec: SflowDecoder, exporter: str = "192.0.2.1") -> None:
    records_before = getattr(dec, "_fuzz_records", 0)
    tables = dec.drain(time.time())
    for name, table in tables.items():
        assert table.schema == schema_of(name)
    samples = dec.stats.of(exporter).records - records_before
    dec._fuzz_records = dec.stats.of(exporter).records
    flows = tables["flows"].num_rows if "flows" in tables else 0
    packets = tables["packets"].num_rows if "packets" in tables else 0
    assert packets <= flows <= samples
    assert "internal_error" not in dec.stats.of(exporter).rejected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_real_datagrams(seeds, pick, seed):
    """60 examples x 80 mutants: ~5,000 mutated datagrams, drained in batches as a listener would."""
    rnd = random.Random(seed)
    dec = SflowDecoder()
    for i in range(80):
        original = seeds[(pick + i) % len(seeds)]
        if i % 10 == 0:
            feed_and_check(dec, original)
        feed_and_check(dec, mutate(original, rnd))
    check_drain(dec)


@settings(max_examples=800, deadline=None)
@given(data=st.binary(max_size=1500))
def test_random_bytes(data):
    dec = SflowDecoder()
    feed_and_check(dec, data)
    feed_and_check(dec, enc.u32(5, 1) + data)  # past the version check
    feed_and_check(dec, enc.u32(5, 1, 0xC0000201, 0, 1, 0, 3) + data)  # past the header, into the samples
    check_drain(dec)


def test_absurd_counts_are_cheap():
    """Counts of 2^32-1 samples, records and AS path entries cost no time or memory."""
    huge = 0xFFFFFFFF
    dgram = enc.u32(5, 1, 0xC0000201, 0, 1, 0, huge) + enc.tagged(1, enc.u32(1, 1, 1, 1, 0, 1, 2, huge))
    gateway = enc.tagged(1003, enc.address("192.0.2.1") + enc.u32(1, 2, 3, huge))
    dec = SflowDecoder()
    start = time.perf_counter()
    for _ in range(1000):
        feed_and_check(dec, dgram)
        feed_and_check(dec, enc.datagram([enc.flow_sample([gateway])]))
    assert time.perf_counter() - start < 2
    assert dec.stats.of("192.0.2.1").rejected == {
        "record_count_exceeds_data": 1000, "sample_count_exceeds_data": 1000, "as_path_segment_count_exceeds_data": 1000}
