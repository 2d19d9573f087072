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


def u8(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return buf.take(idx, mode="clip")


def u16(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (u8(buf, idx).astype(np.uint16) << 8) | u8(buf, idx + 1)


def u32(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (u16(buf, idx).astype(np.uint32) << 16) | u16(buf, idx + 2)


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


def ipv4_text(addr: np.ndarray) -> pa.StringArray:
    """Dotted quads for uint32 addresses; each distinct address is formatted once, by Arrow kernels."""
    a = np.asarray(addr, np.uint32)
    if len(a) == 0:
        return pa.array([], pa.string())
    uniq, inverse = np.unique(a, return_inverse=True)
    octets = [pc.cast(pa.array(((uniq >> s) & 0xFF).astype(np.uint8)), pa.string()) for s in (24, 16, 8, 0)]
    text = pc.binary_join_element_wise(*octets, ".")
    return text if len(uniq) == len(a) and (uniq == a).all() else text.take(pa.array(inverse.ravel()))


def ipv6_text(addr16: np.ndarray) -> pa.StringArray:
    """Compressed IPv6 text for an (n, 16) uint8 array; each distinct address is formatted once."""
    if len(addr16) == 0:
        return pa.array([], pa.string())
    flat = np.ascontiguousarray(addr16, np.uint8).view("V16").ravel()
    uniq, inverse = np.unique(flat, return_inverse=True)
    texts = pa.array([socket.inet_ntop(socket.AF_INET6, u.tobytes()) for u in uniq], pa.string())
    return texts.take(pa.array(inverse.ravel()))


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
