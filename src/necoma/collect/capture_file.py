"""Streaming reader of pcap and pcapng files, gzipped (even twice) or not.

`CaptureReader.batches()` yields `FrameBatch`es of whole frames from chunks of
about `chunk_bytes`, so memory stays bounded whatever the file size. pcap record
headers are walked by a compiled loop (`wire_jit.pcap_records`) once numba is
loaded (see `_jit`), else in Python like pcapng blocks; every other field is read
over the whole batch at once. When the file is damaged (truncated record, absurd
length, corrupt gzip stream) the reader yields everything before the damage and
sets `stopped` to a sentence saying where and why.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from necoma.collect._jit import loaded


PCAP_MAGICS = {  # first 4 bytes as read little-endian -> (byte order, ticks per second)
    0xA1B2C3D4: ("<", 1_000_000), 0xD4C3B2A1: (">", 1_000_000),
    0xA1B23C4D: ("<", 1_000_000_000), 0x4D3CB2A1: (">", 1_000_000_000),
}
PCAPNG_SHB = 0x0A0D0D0A
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD = 262_144  # Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: longer is damage, not a frame


class NotACapture(Exception):
    """The file is not a pcap or pcapng capture (gzipped or not) at all."""


@dataclass
class FrameBatch:
    buf: np.ndarray  # uint8 view of the chunk
    offsets: np.ndarray
    caplens: np.ndarray
    wirelens: np.ndarray
    times_us: np.ndarray
    linktypes: int | np.ndarray
    first_frame: int  # 0-based number of this batch's first frame in the file


class _Gunzip:
    """gzip decompression with `read(n)` that keeps the data before a damaged spot.

    (gzip.GzipFile raises EOFError on a truncated stream and drops what it had
    decompressed in that call.) Multi-member streams are followed.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.z = zlib.decompressobj(wbits=31)
        self.pending = b""
        self.error: str | None = None
        self.eof = False

    def read(self, n: int) -> bytes:
        out = [self.pending]
        have = len(self.pending)
        self.pending = b""
        while have < n and not self.eof:
            try:
                if self.z.unconsumed_tail:
                    piece = self.z.decompress(self.z.unconsumed_tail, n - have)
                else:
                    data = self.raw.read(1 << 20)
                    if not data:
                        self.eof = True
                        if not self.z.eof:
                            self.error = "the gzip stream is truncated"
                        break
                    piece = self.z.decompress(data, n - have)
                if self.z.eof and self.z.unused_data:  # next gzip member
                    rest = self.z.unused_data
                    self.z = zlib.decompressobj(wbits=31)
                    piece += self.z.decompress(rest, max(1, n - have - len(piece)))
            except zlib.error as exc:
                self.error = f"the gzip stream is corrupt ({exc})"
                self.eof = True
                break
            out.append(piece)
            have += len(piece)
        data = b"".join(out)
        self.pending = data[n:]
        return data[:n]


def _open(path: Path) -> tuple[BinaryIO | _Gunzip, list]:
    """A readable stream of the capture bytes, unwrapping gzip layers by magic
    (some published captures are gzipped twice)."""
    raw = open(path, "rb")
    stream: BinaryIO | _Gunzip = raw
    layers: list = [raw]
    head = raw.peek(2)[:2]  # peek, not seek: pipes work too
    while head == GZIP_MAGIC and len(layers) < 4:
        stream = _Gunzip(stream)  # type: ignore[arg-type]
        layers.append(stream)
        head = stream.read(2)
        stream.pending = head + stream.pending  # push back the peeked bytes
    return stream, layers


class CaptureReader:
    def __init__(self, path: Path, *, chunk_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.stopped: str | None = None  # why reading ended early, for the user
        self.format = ""
        self.frames = 0
        self._stream, self._layers = _open(self.path)
        head = self._stream.read(24)
        self._carry = head
        self._pos = 0  # stream offset of _carry[0]
        if len(head) < 4:
            self.close()
            raise NotACapture(f"{self.path}: {'empty file' if not head else 'too short to be a capture'}")
        magic = struct.unpack("<I", head[:4])[0]
        if magic in PCAP_MAGICS:
            if len(head) < 24:
                self.close()
                raise NotACapture(f"{self.path}: pcap global header is truncated")
            self.format = "pcap"
            self._order, self._ticks = PCAP_MAGICS[magic]
            self._snaplen, network = struct.unpack(self._order + "II", head[16:24])
            self._linktype = network & 0x03FFFFFF  # upper bits carry FCS length flags
        elif magic == PCAPNG_SHB:
            self.format = "pcapng"
            self._interfaces: list[tuple[int, int, float, int]] = []  # linktype, snaplen, ticks, offset s
            self._order = "<"
        else:
            self.close()
            kind = "gzip data that is not a capture" if len(self._layers) > 1 else "not a pcap or pcapng file"
            raise NotACapture(f"{self.path}: {kind} (starts with {head[:8].hex()})")

    def close(self) -> None:
        for layer in reversed(self._layers):
            if hasattr(layer, "close"):
                layer.close()

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stop(self, why: str) -> None:
        self.stopped = why

    def batches(self) -> Iterator[FrameBatch]:
        walk = self._walk_pcap if self.format == "pcap" else self._walk_pcapng
        start = 24 if self.format == "pcap" else 0
        while True:
            more = self._stream.read(self.chunk_bytes)
            data = self._carry + more
            at_eof = not more
            batch, used = walk(data, start)
            start = 0
            if batch is not None and len(batch.offsets):
                self.frames += len(batch.offsets)
                yield batch
            self._pos += used
            self._carry = data[used:]
            if self.stopped:
                return
            if at_eof:
                gz = next((layer.error for layer in self._layers[1:] if layer.error), None)
                if self._carry:
                    self._stop(f"the file ends inside record {self.frames + 1} at byte {self._pos}"
                               f" ({len(self._carry)} bytes of an incomplete record)" + (f"; {gz}" if gz else ""))
                elif gz:
                    self._stop(f"{gz} after byte {self._pos} (record {self.frames})")
                return

    # -- classic pcap -----------------------------------------------------------------
    def _walk_pcap(self, data: bytes, pos: int) -> tuple[FrameBatch | None, int]:
        limit = max(self._snaplen, MAX_RECORD)
        buf = np.frombuffer(data, np.uint8)
        if loaded():  # compiled: one pass over the headers
            from necoma.collect.wire_jit import pcap_records

            offs, incl, orig, sec, frac, pos, claimed = pcap_records(buf, pos, limit, self._order == ">")
        else:
            offs, incl, orig, sec, frac, pos, claimed = self._records_py(data, pos, limit)
        if claimed > limit:
            self._stop(f"record {self.frames + len(offs) + 1} at byte {self._pos + pos} claims {claimed}"
                       f" captured bytes (more than {limit}): the file is damaged from there on")
        times = sec * 1_000_000 + (frac if self._ticks == 1_000_000 else frac // 1000)
        return FrameBatch(buf, offs, incl, orig, times, self._linktype, self.frames), pos

    def _records_py(self, data: bytes, pos: int, limit: int):
        """`wire_jit.pcap_records` in Python (record lengths) and numpy (the other header fields)."""
        n, recs, claimed = len(data), [], -1
        incl_at = struct.Struct(self._order + "I").unpack_from
        while pos + 16 <= n:
            (incl,) = incl_at(data, pos + 8)
            if incl > limit or pos + 16 + incl > n:
                claimed = incl
                break
            recs.append(pos)
            pos += 16 + incl
        rec = np.array(recs, np.int64)
        # all 16-byte record headers in one gather, then viewed as four 32-bit fields
        hdr = np.frombuffer(data, np.uint8)[rec[:, None] + np.arange(16)].view(self._order + "u4")
        sec, frac, incl_a, orig = (hdr[:, i].astype(np.int64) for i in range(4))
        return rec + 16, incl_a, orig, sec, frac, pos, claimed

    # -- pcapng -----------------------------------------------------------------------
    def _walk_pcapng(self, data: bytes, pos: int) -> tuple[FrameBatch | None, int]:
        n = len(data)
        offs, caps, wires, ticks, ifs = [], [], [], [], []
        while pos + 12 <= n:
            btype = struct.unpack_from(self._order + "I", data, pos)[0]
            if btype == PCAPNG_SHB:
                bom = data[pos + 8 : pos + 12]
                if len(bom) < 4:
                    break
                self._order = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(bom, "")
                if not self._order:
                    self._order = "<"
                    self._stop(f"block at byte {self._pos + pos}: bad section byte-order magic {bom.hex()}")
                    break
            blen = struct.unpack_from(self._order + "I", data, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > (1 << 26):
                self._stop(f"block at byte {self._pos + pos} (after record {self.frames + len(offs)})"
                           f" has an invalid length {blen}: the file is damaged from there on")
                break
            if pos + blen > n:
                break
            if struct.unpack_from(self._order + "I", data, pos + blen - 4)[0] != blen:
                self._stop(f"block at byte {self._pos + pos}: trailing length does not match {blen}")
                break
            o = self._order
            if btype == PCAPNG_SHB:
                self._interfaces = []
            elif btype == 1:  # Interface Description Block
                self._interfaces.append(_idb(data, pos, blen, o))
            elif btype in (6, 2):  # Enhanced / obsolete Packet Block
                if btype == 6:
                    ifid, hi, lo, cap, wire = struct.unpack_from(o + "IIIII", data, pos + 8)
                else:
                    ifid, _, hi, lo, cap, wire = struct.unpack_from(o + "HHIIII", data, pos + 8)
                if 28 + cap > blen - 4:
                    self._stop(f"packet block at byte {self._pos + pos}: captured length {cap} exceeds its block")
                    break
                offs.append(pos + 28); caps.append(cap); wires.append(wire)
                ticks.append((hi << 32) | lo); ifs.append(ifid)
            elif btype == 3:  # Simple Packet Block: no timestamp, interface 0
                wire = struct.unpack_from(o + "I", data, pos + 8)[0]
                snap = self._interfaces[0][1] if self._interfaces else 0
                cap = min(wire, blen - 16, snap or wire)
                offs.append(pos + 12); caps.append(cap); wires.append(wire); ticks.append(-1); ifs.append(0)
            pos += blen
        if not offs:
            return None, pos
        return self._pcapng_batch(data, offs, caps, wires, ticks, ifs), pos

    def _pcapng_batch(self, data, offs, caps, wires, ticks, ifs) -> FrameBatch:
        ifs_a = np.array(ifs, np.int64)
        known = ifs_a < len(self._interfaces)
        lts = np.array([i[0] for i in self._interfaces] + [-1], np.int64)
        res = np.array([i[2] for i in self._interfaces] + [1e6], np.float64)
        tso = np.array([i[3] for i in self._interfaces] + [0], np.int64)
        ifs_a = np.where(known, ifs_a, len(self._interfaces))  # unknown interface -> link type -1
        t = np.array(ticks, np.int64)
        per = res[ifs_a]
        times = np.where(per == 1e6, t, np.where(per == 1e9, t // 1000, (t * (1e6 / per)).astype(np.int64)))
        times = times + tso[ifs_a] * 1_000_000
        # Simple Packet Blocks carry no time: they take the previous packet's
        times = np.where(t < 0, 0, times)
        if (t < 0).any():
            idx = np.where(t >= 0, np.arange(len(t)), 0)
            np.maximum.accumulate(idx, out=idx)
            times = times[idx]
        return FrameBatch(np.frombuffer(data, np.uint8), np.array(offs, np.int64), np.array(caps, np.int64),
                          np.array(wires, np.int64), times, lts[ifs_a], self.frames)


def _idb(data: bytes, pos: int, blen: int, o: str) -> tuple[int, int, float, int]:
    """(link type, snaplen, timestamp ticks per second, offset seconds) of an interface."""
    linktype, _, snaplen = struct.unpack_from(o + "HHI", data, pos + 8)
    ticks, offset = 1e6, 0
    p, end = pos + 16, pos + blen - 4
    while p + 4 <= end:
        code, ln = struct.unpack_from(o + "HH", data, p)
        if code == 0:
            break
        val = data[p + 4 : p + 4 + ln]
        if code == 9 and ln >= 1:  # if_tsresol: 10^-v, or 2^-v when the top bit is set
            v = val[0]
            ticks = float(2 ** (v & 0x7F)) if v & 0x80 else float(10**v)
        elif code == 14 and ln == 8:  # if_tsoffset, seconds
            offset = struct.unpack(o + "q", val)[0]
        p += 4 + ((ln + 3) & ~3)
    return linktype, snaplen, ticks, offset
