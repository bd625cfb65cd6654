"""Process-level settings for fast CPU training, applied by the ``hsd`` command and benchmarks."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory"]


def keep_freed_memory() -> None:
    """Ask glibc to keep freed tensor memory in the process instead of returning every large
    block to the OS.

    Training allocates and frees the same large activation tensors every step; with glibc's
    defaults each one above 32 MiB is a fresh ``mmap`` that page-faults anew (high system time,
    and a per-sample cost that grows with the batch). No effect on other C libraries or systems.
    """
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve blocks < 1 GiB from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of free heap
    except (OSError, AttributeError):
        return
