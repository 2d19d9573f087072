"""numba for the per-packet kernels: when to use it, and `njit` with an on-disk cache.

Loading numba and the cached machine code costs about 0.6 s once per process, more
than the kernels save on a small capture. So the compiled kernels are used once
numba is loaded (`loaded()`), and the pcap importer loads it (`load()`) only for
files of COMPILE_FROM_BYTES or more; until then the numpy versions, which give the
same results (tests compare them), do the work.

Kernels compile on first call (not at import) and the machine code is cached next
to the source (or in $NUMBA_CACHE_DIR), so later processes load it in milliseconds.
Where no cache location is writable (a read-only install without a home
directory) numba refuses `cache=True` at decoration time; the kernel is then
compiled in every process instead of failing.
"""
from __future__ import annotations

import sys

# ~40 MB of capture is where 0.6 s of loading is won back (compiled ~500k packets/s
# against ~300k with numpy, measured on bench/bench_pcap_import.py's DNS traffic)
COMPILE_FROM_BYTES = 40 << 20


def loaded() -> bool:
    return "numba" in sys.modules


def load() -> None:
    import numba  # noqa: F401


def njit(func=None, **overrides):
    """`numba.njit` with the on-disk cache where one is writable; `@njit` or `@njit(**options)`."""
    if func is None:
        return lambda f: njit(f, **overrides)
    import numba

    # no Python exception checks on integer division unless a kernel asks for them
    opts = {"nogil": True, "error_model": "numpy", **overrides}
    try:
        return numba.njit(cache=True, **opts)(func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **opts)(func)
