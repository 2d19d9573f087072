"""`njit`: numba's compiler with an on-disk cache, for the per-packet kernels.

Kernels are compiled on first call (not at import), and the machine code is cached
next to the source (or in $NUMBA_CACHE_DIR) so later processes load it in
milliseconds. Where no cache location is writable (a read-only install without a
home directory) numba refuses `cache=True` at decoration time; the kernel is then
compiled in every process instead of failing.
"""
from __future__ import annotations

import numba


def njit(func):
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(cache=False, nogil=True, error_model="numpy")(func)
