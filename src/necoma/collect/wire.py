"""Vectorized reads from a byte buffer: big-endian integers at many offsets at once,
ragged copies, and address text.

Every reader clips its indices into the buffer, so a bad offset never raises; the
callers decide validity from bounds they compute themselves (a value read past the
end of a frame is garbage that no valid row uses).
"""
from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from necoma.collect._jit import loaded


def u8(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return buf.take(idx, mode="clip")


def u16(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (u8(buf, idx).astype(np.uint16) << 8) | u8(buf, idx + 1)


def u32(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (u16(buf, idx).astype(np.uint32) << 16) | u16(buf, idx + 2)


def words16(buf: np.ndarray, idx: np.ndarray, count: int) -> np.ndarray:
    """(n, count) big-endian 16-bit words starting at each offset: one row copy per
    offset from a sliding-window view, instead of two byte gathers per word.
    Offsets are clipped into the buffer like `u8`'s."""
    width = 2 * count
    if len(buf) < width:
        return np.zeros((len(idx), count), ">u2")
    rows = np.clip(idx, 0, len(buf) - width)
    return np.lib.stride_tricks.sliding_window_view(buf, width)[rows].view(">u2")


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for every (s, n), without a Python loop."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    base = np.repeat(starts.astype(np.int64) - (ends - lengths), lengths)
    return base + np.arange(total, dtype=np.int64)


def strings_from_bytes(data: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """Arrow strings from concatenated UTF-8 `data` and per-row `lengths` (no Python strings)."""
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(len(valid) - valid.sum())
    return pa.StringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data, np.uint8)), validity, null_count
    )


def _octet_words(dot: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per octet value: its digits (plus a dot) as a little-endian, zero-padded uint32, and the length."""
    words = np.zeros(256, np.uint32)
    lens = np.zeros(256, np.int32)
    for i in range(256):
        text = (str(i) + ("." if dot else "")).encode()
        words[i], lens[i] = int.from_bytes(text.ljust(4, b"\0"), "little"), len(text)
    return words, lens


_OCTET_DOT, _OCTET_DOT_LEN = _octet_words(True)
_OCTET, _OCTET_LEN = _octet_words(False)


def ipv4_text(addr: np.ndarray, *, repeats: bool = False) -> pa.StringArray:
    """Dotted quads for uint32 addresses: compiled (`wire_jit`) once numba is loaded,
    else in numpy (see `_jit`); the same text either way."""
    a = np.ascontiguousarray(addr, np.uint32)
    if not loaded():
        return _ipv4_text_numpy(a, repeats=repeats)
    from necoma.collect.wire_jit import ipv4_text_buffers

    if len(a) > 1 << 27:  # 15 bytes each must fit int32 offsets
        return pa.concat_arrays([ipv4_text(a[i : i + (1 << 27)]) for i in range(0, len(a), 1 << 27)])
    offsets, data = ipv4_text_buffers(a)
    return pa.StringArray.from_buffers(len(a), pa.py_buffer(offsets), pa.py_buffer(data))


def _ipv4_text_numpy(a: np.ndarray, *, repeats: bool = False) -> pa.StringArray:
    """Each row is four table words (digits and dot, zero padded) whose zero bytes one
    boolean mask drops; digits are never zero bytes. With `repeats` (client addresses,
    say) each distinct address is formatted once, found by Arrow's hash table."""
    n = len(a)
    if repeats and n > 1024:
        enc = pc.dictionary_encode(pa.array(a))
        if 2 * len(enc.dictionary) < n:
            return _ipv4_text_numpy(enc.dictionary.to_numpy()).take(enc.indices)
    o = [(a >> np.uint32(s)) & np.uint32(0xFF) for s in (24, 16, 8, 0)]
    words = np.empty((n, 4), np.uint32)
    for j in range(3):
        words[:, j] = _OCTET_DOT[o[j]]
    words[:, 3] = _OCTET[o[3]]
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(_OCTET_DOT_LEN[o[0]] + _OCTET_DOT_LEN[o[1]] + _OCTET_DOT_LEN[o[2]] + _OCTET_LEN[o[3]], out=offsets[1:])
    raw = words.view(np.uint8)  # little-endian words: the characters in reading order
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw[raw != 0]))


def ipv6_text(addr16: np.ndarray) -> pa.StringArray:
    """Compressed IPv6 text for an (n, 16) uint8 array; each distinct address is formatted once."""
    if len(addr16) == 0:
        return pa.array([], pa.string())
    flat = np.ascontiguousarray(addr16, np.uint8).view("V16").ravel()
    uniq, inverse = np.unique(flat, return_inverse=True)
    texts = pa.array([socket.inet_ntop(socket.AF_INET6, u.tobytes()) for u in uniq], pa.string())
    return texts.take(pa.array(inverse.ravel()))


def key_text(hi: np.ndarray, lo: np.ndarray, is4: np.ndarray) -> pa.StringArray:
    """Address text from 128-bit keys (two uint64 halves; IPv4 rows hold ::ffff:a.b.c.d).

    `is4` says which rows are IPv4 packets, so an IPv4-mapped address seen in an
    IPv6 header still prints as IPv6."""
    if is4.all():
        return ipv4_text((lo & np.uint64(0xFFFFFFFF)).astype(np.uint32), repeats=True)
    i4, i6 = np.flatnonzero(is4), np.flatnonzero(~is4)
    v6 = np.empty((len(i6), 2), ">u8")
    v6[:, 0], v6[:, 1] = hi[i6], lo[i6]
    return scatter_strings([(i4, ipv4_text((lo[i4] & np.uint64(0xFFFFFFFF)).astype(np.uint32), repeats=True)),
                            (i6, ipv6_text(v6.view(np.uint8).reshape(-1, 16)))], len(is4))


def repeated(value: str, n: int) -> pa.StringArray:
    """The same string n times, built from buffers (pa.repeat of a string scalar is slow)."""
    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    if offsets[-1] >= 2**31:
        return pa.array([value] * n, pa.string())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(raw * n))


def scatter_strings(parts: list[tuple[np.ndarray, pa.Array]], n: int) -> pa.Array:
    """One string array of length n from (row indices, values) parts; rows in no part are null."""
    parts = [p for p in parts if len(p[0])]
    if len(parts) == 1 and len(parts[0][0]) == n and (np.diff(parts[0][0]) > 0).all():
        return parts[0][1].cast(pa.string())  # already every row, in order
    idx = np.concatenate([p[0] for p in parts] + [np.zeros(0, np.int64)]).astype(np.int64)
    vals = pa.concat_arrays([p[1].cast(pa.string()) for p in parts] + [pa.nulls(1, pa.string())])
    pos = np.full(n, len(idx), np.int64)  # default: the trailing null
    pos[idx] = np.arange(len(idx))
    return vals.take(pa.array(pos))
