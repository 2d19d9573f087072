"""Text columns built straight into Arrow buffers, without a Python string per row.

Addresses are stored as text (see necoma.schemas). Formatting them one by one
in Python would cost more than all the rest of decoding, so IPv4 dotted quads
are assembled with numpy: O(n) whatever the number of distinct addresses (a
spoofed-source flood has millions). Each 16-bit half comes from a 65,536-row
table; digits are never zero bytes, so the padding drops out with one boolean
mask. IPv6 is rarer and harder to vectorise: distinct values go through
`socket.inet_ntop` (RFC 5952 compressed form) once each.
"""
from __future__ import annotations

import socket

import numpy as np
import pyarrow as pa

from necoma.collect._jit import loaded


def _half_table() -> tuple[np.ndarray, np.ndarray]:
    """Text of every 16-bit half of an address ("a.b"), left-aligned and zero padded to 7 bytes."""
    octets = np.zeros((256, 3), np.uint8)
    for i in range(256):
        digits = str(i).encode()
        octets[i, :len(digits)] = list(digits)
    i = np.arange(65536)
    m = np.concatenate([octets[i >> 8], np.full((65536, 1), ord("."), np.uint8), octets[i & 255]], axis=1)
    table = np.take_along_axis(m, np.argsort(m == 0, axis=1, kind="stable"), axis=1)  # squeeze out the padding
    return table, (table != 0).sum(axis=1)


_HALF, _HALF_LEN = _half_table()


def ipv4_text_fast(values: np.ndarray) -> pa.Array:
    """uint32 addresses -> dotted-quad strings: compiled (~10x faster, the pcap importer's
    kernel) once numba is loaded — the batch path loads it —, else `ipv4_text`."""
    n = len(values)
    if not loaded() or n * 15 >= 2**31 - 1:
        return ipv4_text(values)
    from necoma.collect.wire_jit import ipv4_text_buffers

    offsets, data = ipv4_text_buffers(np.ascontiguousarray(values, np.uint32))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def ipv4_text(values: np.ndarray) -> pa.Array:
    """uint32 addresses -> dotted-quad strings: two table rows per address, then drop the zero padding."""
    a = values.astype(np.uint32)
    n = len(a)
    hi = (a >> np.uint32(16)).astype(np.intp)
    lo = (a & np.uint32(0xFFFF)).astype(np.intp)
    m = np.empty((n, 15), np.uint8)
    m[:, :7] = _HALF[hi]
    m[:, 7] = ord(".")
    m[:, 8:] = _HALF[lo]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(_HALF_LEN[hi] + _HALF_LEN[lo] + 1, out=offsets[1:])
    return _strings(n, offsets, m[m != 0])  # row-major: each address's characters, in order


def ipv6_text(values: np.ndarray) -> pa.Array:
    """16-byte (V16) addresses -> compressed IPv6 text."""
    uniq, inverse = np.unique(values, return_inverse=True)
    text = pa.array([socket.inet_ntop(socket.AF_INET6, x.tobytes()) for x in uniq], pa.string())
    return text.take(pa.array(inverse.reshape(-1).astype(np.int32)))


def repeated(value: str, n: int) -> pa.Array:
    """The same string n times."""
    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    return _strings(n, offsets, np.frombuffer(raw * n, np.uint8))


def _strings(n: int, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    if offsets[-1] >= 2**31 - 1:  # beyond 32-bit offsets: let Arrow pick the layout
        return pa.array([bytes(data[offsets[i]:offsets[i + 1]]).decode() for i in range(n)], pa.string())
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
