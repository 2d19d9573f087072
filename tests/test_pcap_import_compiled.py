"""The compiled (numba) kernels of pcap import against their numpy references:
DNS decoding against the lock-step `dns_wire.parse_messages` on real and mutated
messages, flow cutting against `FlowAggregator._flows_numpy` on real captures,
and the kernels still working where no cache directory is writable."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from necoma.collect import dns_fast, dns_wire
from necoma.collect.capture_file import CaptureReader
from necoma.collect.flowagg import FlowAggregator
from necoma.collect.packet import decode_frames

REPO = Path(__file__).resolve().parent.parent
CAPTURES = ["pathspider_real.pcap.gz", "dpkt_dns_icmp.pcap", "gopacket_test_dns.pcap", "lab_mixed.pcap",
            "dpkt_truncated_dns.pcap", "pathspider_dns_valid_response.pcap"]


def _dns_payloads(path: Path) -> list[bytes]:
    """UDP port-53 payloads of the Ethernet frames of a capture (IPv4 and IPv6)."""
    out = []
    with CaptureReader(path) as reader:
        for b in reader.batches():
            for o, c in zip(b.offsets, b.caplens):
                f = bytes(b.buf[o : o + c])
                if len(f) > 42 and f[12:14] == b"\x08\x00" and f[23] == 17:
                    l4 = 14 + (f[14] & 15) * 4
                    if 53 in struct.unpack(">HH", f[l4 : l4 + 4]):
                        out.append(f[l4 + 8 :])
                elif len(f) > 62 and f[12:14] == b"\x86\xdd" and f[20] == 17 and 53 in struct.unpack(">HH", f[54:58]):
                    out.append(f[62:])
    return out


def _assert_same_messages(a: dns_wire.Messages, b: dns_wire.Messages) -> None:
    """Equal wherever a value means something (fields of a message without a header are garbage)."""
    h = a.header_ok
    assert (a.header_ok == b.header_ok).all() and (a.question_ok == b.question_ok).all()
    for f in ("id", "is_response", "rcode", "qdcount", "ancount"):
        assert (getattr(a, f)[h] == getattr(b, f)[h]).all(), f
    q = a.question_ok & (a.qdcount > 0)
    assert (a.qtype[q] == b.qtype[q]).all() and (a.qclass[q] == b.qclass[q]).all()
    assert a.qname.to_pylist() == b.qname.to_pylist()
    assert (a.edns_size == b.edns_size).all()
    assert a.answers.to_pylist() == b.answers.to_pylist()
    assert list(a.problems) == list(b.problems)  # same reasons in the same order ...
    for reason, idx in a.problems.items():  # ... for the same messages, listed in the same order (first seen)
        assert np.array_equal(np.asarray(idx), b.problems[reason]), reason


@pytest.mark.shared_data
def test_compiled_dns_equals_the_lockstep_reference(shared_data):
    rng = np.random.default_rng(5)
    real = [p for name in CAPTURES for p in _dns_payloads(shared_data / "pcap" / name)]
    mutated = []
    for i in range(6000):  # byte flips (pointers, lengths, counts) and cuts anywhere
        b = bytearray(real[int(rng.integers(len(real)))])
        for _ in range(int(rng.integers(0, 4))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        if i % 3 == 0:
            b = b[: int(rng.integers(0, len(b) + 1))]
        mutated.append(bytes(b))
    messages = real + mutated
    buf = np.frombuffer(b"".join(messages), np.uint8)
    lens = np.array([len(m) for m in messages], np.int64)
    msg = np.cumsum(lens) - lens
    ref = dns_wire.parse_messages(buf, msg, msg + lens)
    _assert_same_messages(ref, dns_fast.parse_messages(buf, msg, msg + lens))
    assert len(real) > 400 and sum(len(v) for v in ref.problems.values()) > 2000  # damage reached every stage
    assert sum(len(x) for x in ref.answers.to_pylist()[: len(real)]) > 50
    # offsets outside the buffer are a short header, never a read out of range
    odd = dns_fast.parse_messages(buf[:100], np.array([-5, 90, 200]), np.array([50, 400, 300]))
    assert not odd.header_ok.any()


def test_compiled_dns_on_hand_made_messages():
    """Records behind a question-less header, pointers, escapes, MX/NS/TXT/AAAA data."""
    q = b"\x03WwW\x07ex.mple\x03com\x00" + struct.pack(">HH", 1, 1)
    rrs = (b"\xc0\x0c" + struct.pack(">HHIH", 15, 1, 60, 6) + b"\x00\x0a\x01m\xc0\x18"
           + b"\xc0\x0c" + struct.pack(">HHIH", 2, 1, 60, 2) + b"\xc0\x18"
           + b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 60, 6) + b"\x02a\"\x02\x00b"
           + b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + bytes(15) + b"\x01")
    msgs = [struct.pack(">6H", 1, 0x8180, 1, 4, 0, 0) + q + rrs,
            struct.pack(">6H", 2, 0x8180, 0, 1, 0, 0) + b"\x00" + struct.pack(">HHIH", 1, 1, 5, 4) + bytes([192, 0, 2, 9])]
    buf = np.frombuffer(b"".join(msgs), np.uint8)
    lens = np.array([len(m) for m in msgs])
    msg = np.cumsum(lens) - lens
    ref, fast = dns_wire.parse_messages(buf, msg, msg + lens), dns_fast.parse_messages(buf, msg, msg + lens)
    _assert_same_messages(ref, fast)
    assert fast.qname.to_pylist() == ["www.ex\\046mple.com", None]
    assert [a["data"] for a in fast.answers.to_pylist()[0]] == ["10 m.com", "com", '"a\\"" "\\000b"', "::1"]
    assert fast.answers.to_pylist()[1] == [{"name": "", "type": 1, "ttl": 5, "data": "192.0.2.9"}]


def test_compiled_dns_grows_its_buffers():
    """Many answers per message: the kernel stops, its buffers grow, it goes on."""
    q = b"\x07example\x03com\x00" + struct.pack(">HH", 1, 1)
    rr = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 6) + b"\x03www\xc0\x0c"  # CNAME www.<question>
    msgs = [struct.pack(">6H", i, 0x8180, 1, 120, 0, 0) + q + rr * 120 for i in range(40)] + [b"\x00" * 5]
    buf = np.frombuffer(b"".join(msgs), np.uint8)
    lens = np.array([len(m) for m in msgs])
    msg = np.cumsum(lens) - lens
    ref, fast = dns_wire.parse_messages(buf, msg, msg + lens), dns_fast.parse_messages(buf, msg, msg + lens)
    _assert_same_messages(ref, fast)
    answers = fast.answers.to_pylist()
    assert len(answers[39]) == 120 and answers[39][119]["data"] == "www.example.com"


def _flows(path: Path, reference: bool, cut_rows: int, idle: float, active: float) -> list[tuple]:
    agg = FlowAggregator("x", idle_s=idle, active_s=active, cut_rows=cut_rows, reference=reference)
    out = []
    with CaptureReader(path, chunk_bytes=256 << 10) as reader:
        for b in reader.batches():
            d = decode_frames(b.buf, b.offsets, b.caplens, b.wirelens, b.times_us, b.linktypes, exporter="x")
            out.append(agg.add(d.packets, d.tos, d.addr_keys))
    out.append(agg.finish())
    return sorted(tuple(r.values()) for r in pa.concat_tables(out).to_pylist())


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["pathspider_real.pcap.gz", "lab_mixed.pcap", "libtrace_anon-v4.pcap.gz"])
def test_compiled_flows_equal_the_numpy_reference(name, shared_data):
    for cut_rows, idle, active in ((500, 0.5, 3.0), (3000, 2.0, 10.0), (1 << 18, 60.0, 300.0)):
        fast = _flows(shared_data / "pcap" / name, False, cut_rows, idle, active)
        assert len(fast) > 10 and fast == _flows(shared_data / "pcap" / name, True, cut_rows, idle, active)


def test_kernels_work_without_a_writable_cache(tmp_path):
    """A read-only install with a read-only home: numba refuses to cache, the kernels
    are compiled in the process instead (checked in a private read-only mount)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to mount the sources read-only")
    src, home = tmp_path / "src", tmp_path / "home"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    home.mkdir()
    code = ("import numpy as np; from necoma.collect._jit import load; load();"  # compiled path, not numpy's
            "from necoma.collect.wire import ipv4_text; from necoma.collect.wire_jit import ipv4_text_buffers;"
            "import necoma.collect.netflow.v9_kernel, necoma.collect.netflow.text;"  # the collector's too
            "print(ipv4_text(np.array([3232235777], np.uint32)).to_pylist(), ipv4_text_buffers.signatures != [])")
    script = (f"mount --bind {src} {src} && mount -o remount,ro,bind {src} && mount --bind {home} {home}"
              f" && mount -o remount,ro,bind {home} && ! touch {src}/probe 2>/dev/null"
              f" && HOME={home} PYTHONPATH={src} {sys.executable} -c '{code}'")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    if run.returncode != 0 and "mount" in run.stderr and "ermission" in run.stderr:
        pytest.skip(f"cannot mount here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['192.168.1.1'] True"  # compiled in the process
    assert not list(src.rglob("*.nbi"))  # nothing was cached


def _frames_of(path: Path) -> list[tuple[bytes, int]]:
    out = []
    with CaptureReader(path) as reader:
        for b in reader.batches():
            lts = np.broadcast_to(b.linktypes, b.offsets.shape)
            out += [(bytes(b.buf[o : o + c]), int(t)) for o, c, t in zip(b.offsets, b.caplens, lts)]
    return out


def _relinked(frames: list[tuple[bytes, int]], rng) -> list[tuple[bytes, int]]:
    """The IP packets of Ethernet frames again under every link type the decoder knows."""
    out = []
    for data, lt in frames:
        if lt != 1 or len(data) < 15 or data[12:14] not in (b"\x08\x00", b"\x86\xdd"):
            continue
        ip, et = data[14:], data[12:14]
        choice = int(rng.integers(9))
        out.append([(data[:12] + b"\x81\x00\x00\x05" + et + ip, 1),  # 802.1Q
                    (data[:12] + b"\x88\xa8\x00\x07\x81\x00\x00\x05" + et + ip, 1),  # QinQ
                    (bytes(14) + et + ip, 113), (et + bytes(18) + ip, 276),  # SLL, SLL2
                    (ip, 101), (ip, 12), (b"\x02\x00\x00\x00" + ip, 0), (b"\x00\x00\x00\x1e" + ip, 108),
                    (ip, 228 if et == b"\x08\x00" else 229)][choice])
    return out


@pytest.mark.shared_data
def test_compiled_layers_equal_the_numpy_reference(shared_data):
    """Link, IP and transport layers: same rows, fields, rejections (reasons, counts and
    first frames) and skipped kinds, on real frames, re-linked ones and mutations."""
    rng = np.random.default_rng(17)
    frames = [f for name in CAPTURES + ["libtrace_anon-v4.pcap.gz"] for f in _frames_of(shared_data / "pcap" / name)]
    frames += _relinked(frames, rng)
    mutated = []
    for i in range(8000):  # flips anywhere (link, IP, extension headers, ports), cuts, odd link types
        data, lt = frames[int(rng.integers(len(frames)))]
        b = bytearray(data)
        for _ in range(int(rng.integers(0, 4))):
            if b:
                b[int(rng.integers(min(len(b), 80)))] = int(rng.integers(256))
        if i % 3 == 0:
            b = b[: int(rng.integers(0, len(b) + 1))]
        mutated.append((bytes(b), int(rng.choice([lt, lt, lt, 147, 113, 0]))))
    everything = frames + mutated
    buf = np.frombuffer(b"".join(f[0] for f in everything), np.uint8)
    lens = np.array([len(f[0]) for f in everything], np.int64)
    offs = np.cumsum(lens) - lens
    lts = np.array([f[1] for f in everything], np.int64)
    times = np.arange(len(everything), dtype=np.int64) * 1000
    ref, fast = (decode_frames(buf, offs, lens, lens + 4, times, lts, exporter="x", frame_base=10, reference=r)
                 for r in (True, False))
    assert fast.packets.equals(ref.packets) and fast.dns.equals(ref.dns)
    assert fast.rejects == ref.rejects and fast.truncated == ref.truncated and fast.skipped == ref.skipped
    assert np.array_equal(fast.addr_keys, ref.addr_keys) and np.array_equal(fast.tos, ref.tos)
    assert len(ref.rejects.by_reason) >= 8 and ref.packets.num_rows > 60000  # the damage reached every layer


def test_ipv4_text_compiled_equals_numpy():
    from necoma.collect.wire import _ipv4_text_numpy
    from necoma.collect.wire_jit import ipv4_text_buffers

    rng = np.random.default_rng(2)
    a = np.r_[rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32), [0, 2**32 - 1, 0x0A000001]]
    offsets, data = ipv4_text_buffers(a)
    compiled = pa.StringArray.from_buffers(len(a), pa.py_buffer(offsets), pa.py_buffer(data))
    assert compiled.equals(_ipv4_text_numpy(a))
    many = np.tile(a[:9], 300)  # the numpy version's distinct-values path
    assert _ipv4_text_numpy(many, repeats=True).equals(_ipv4_text_numpy(many))


@pytest.mark.shared_data
def test_small_import_does_not_load_numba(shared_data, tmp_path):
    """Below COMPILE_FROM_BYTES the numpy paths decode: no 0.6 s numba load per small file."""
    code = ("import sys; from pathlib import Path; from necoma.collect.importing import run_import;"
            "from necoma.config import Settings;"
            f"r = run_import('pcap', Path('{shared_data / 'pcap' / 'lab_mixed.pcap'}'), Settings(data_dir=Path('{tmp_path}')));"
            "print(r.rows['packets'] > 0, 'numba' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False"]
