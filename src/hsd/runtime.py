"""Process-level settings and resource checks, shared by the ``hsd`` command and benchmarks.

* :func:`keep_freed_memory`: glibc settings for fast CPU training.
* :func:`admit`: memory admission. Before allocating what a file header, a config or a command
  asks for, estimate the bytes and call ``admit(nbytes, what)``; it raises
  :class:`~hsd.errors.ResourceError` with the estimate when the request cannot fit, instead of
  letting the process be killed or swap for minutes.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from pathlib import Path

from hsd.errors import ResourceError

__all__ = ["admit", "available_memory", "format_bytes", "keep_freed_memory"]


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


def _read_int(path: str | Path) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) -> None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1), None when unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    best: int | None = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, rel = parts
        if hierarchy == "0" and controllers == "":
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            limit, usage = base / "memory.max", base / "memory.current"
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
            if not base.is_dir():
                base = Path("/sys/fs/cgroup/memory")
            limit, usage = base / "memory.limit_in_bytes", base / "memory.usage_in_bytes"
        else:
            continue
        lim, used = _read_int(limit), _read_int(usage)
        if lim is None or lim >= 1 << 60 or used is None:
            continue
        free = max(0, lim - used)
        best = free if best is None else min(best, free)
    return best


def _address_space_available() -> int | None:
    """RLIMIT_AS (``ulimit -v``) minus this process's current virtual size."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        return None
    return soft


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of MemAvailable, the memory cgroup's
    limit minus its usage and ``ulimit -v`` minus the current size; None when unknown."""
    values = (_meminfo_available(), _cgroup_available(), _address_space_available())
    known = [v for v in values if v is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def admit(nbytes: float, what: str, *, hint: str = "") -> None:
    """Refuse, before allocating, a request of about ``nbytes`` that cannot fit in memory.

    ``what`` names the request and where it comes from (``"data.batch_size=100000: activations"``,
    ``"rec.dat: header sensor size 10^6 x 10^6"``); ``hint`` says what to do. A request is
    refused when it exceeds 90% of :func:`available_memory`. ``HSD_MEMORY_LIMIT`` (bytes, with an
    optional K/M/G suffix) caps the memory considered available, e.g. to test a small machine.
    Raises :class:`~hsd.errors.ResourceError`.
    """
    if not nbytes or nbytes <= 0:
        return
    free = available_memory()
    cap = os.environ.get("HSD_MEMORY_LIMIT", "").strip()
    if cap:
        try:
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
            value = float(cap[:-1]) * scale[cap[-1].upper()] if cap[-1].isalpha() else float(cap)
        except (KeyError, ValueError):
            raise ResourceError(
                f"HSD_MEMORY_LIMIT: {cap!r} is not a byte count like 4G or 512M"
            ) from None
        free = int(value) if free is None else min(free, int(value))
    if free is None:
        return
    if nbytes > 0.9 * free:
        raise ResourceError(
            f"{what}: needs about {format_bytes(nbytes)} of memory but only "
            f"{format_bytes(free)} is available" + (f"; {hint}" if hint else "; ask for less")
        )
