"""The BLAS thread count, read and pinned through OpenBLAS's own C entry points (ctypes).

Why: OpenBLAS splits a GEMM differently with 1 and 2 threads, and the float32 forward's last
bits follow (measured: 4e-5 in the final hidden state of a 512-token window, PPL in the 3rd
decimal after 30 quantized blocks). Accuracy results are cached, so the thread count is part of
a result's identity; :func:`sim.accuracy.run_quant` pins one thread, which also avoids
OpenBLAS's spinning worker threads on a machine shared with other jobs (measured on this
2-core machine at load 6: a 512-token forward 11 s with 1 thread, 18-23 s with 2).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

__all__ = ["blas_threads", "pinned_blas_threads"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


@lru_cache(maxsize=1)
def _openblas() -> tuple[Any, Any] | None:
    """(get, set) of the OpenBLAS numpy links, or None when it cannot be found."""
    import numpy as np

    paths = []
    try:
        with open("/proc/self/maps") as fh:  # the copy numpy actually loaded
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln and ".so" in ln})
    except OSError:
        pass
    paths += glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                    "*openblas*"))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre in _PREFIXES:
            for suf in _SUFFIXES:
                get = getattr(lib, f"{pre}_get_num_threads{suf}", None)
                put = getattr(lib, f"{pre}_set_num_threads{suf}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None


def blas_threads() -> int | None:
    """OpenBLAS's current thread count (None if this numpy's BLAS is not reachable)."""
    fns = _openblas()
    return None if fns is None else int(fns[0]())


@contextmanager
def pinned_blas_threads(n: int) -> Iterator[int | None]:
    """Run the block with ``n`` BLAS threads; yields the count in effect (None: unknown, left
    as it was)."""
    fns = _openblas()
    if fns is None:
        yield None
        return
    before = int(fns[0]())
    fns[1](n)
    try:
        yield int(fns[0]())
    finally:
        fns[1](before)
