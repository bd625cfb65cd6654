"""ATIS 5-byte events: N-MNIST / N-Caltech101 ``.bin`` and SLAYER ``.bs2``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import (
    BLOCK_BYTES,
    FOREIGN_MAGICS,
    collect,
    infer_size,
    open_file,
    read_at,
    rechunk,
    size_of,
)
from hsd.events.formats.registry import FileFormat, register

# ATIS .bin: an event with y == 240 marks a timestamp overflow (tonic / Orchard's reader).
_ATIS_OVERFLOW_Y = 240
_ATIS_OVERFLOW_US = 1 << 13
_ATIS_T_LIMIT = 1 << 23


def _sniff(path: Path, head: bytes) -> str:
    if head.startswith(FOREIGN_MAGICS):
        raise EventFileError(
            path, f"starts with {head[:12]!r}, the header of another format, not ATIS events"
        )
    size = size_of(path)
    if size % 5:
        raise EventFileError(path, f"truncated: {size} bytes is not a multiple of 5")
    return "atis-bin"


def _atis_blocks(path: Path):
    """Decoded ``(t, x, y, p)`` blocks of an ATIS file, read :data:`BLOCK_BYTES` at a time; the
    overflow count is carried from block to block."""
    size = size_of(path)
    if size % 5:
        raise EventFileError(path, f"truncated: {size} bytes is not a multiple of 5")
    step = max(5, BLOCK_BYTES // 4 - BLOCK_BYTES // 4 % 5)  # ~2 MiB: int64 temporaries per event
    overflows = 0
    with open_file(path) as fh:
        while True:
            data = read_at(fh, path, step)
            if not data:
                return
            if len(data) % 5:
                raise EventFileError(path, "the file changed while it was read")
            raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5)
            overflow = raw[:, 1] == _ATIS_OVERFLOW_Y
            keep = ~overflow
            t = (
                ((raw[:, 2].astype(np.int64) & 0x7F) << 16)
                | (raw[:, 3].astype(np.int64) << 8)
                | raw[:, 4]
            )
            t += _ATIS_OVERFLOW_US * (overflows + np.cumsum(overflow))
            overflows += int(np.count_nonzero(overflow))
            yield t[keep], raw[keep, 0], raw[keep, 1], raw[keep, 2] >> 7


def _read_atis_bin(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """ATIS 5-byte events: x = byte 0, y = byte 1, polarity = bit 7 of byte 2, timestamp (us) =
    low 23 bits of bytes 2..4 big-endian. As in tonic (after G. Orchard's reader), an event with
    y == 240 is a timestamp-overflow marker: it is dropped and adds 2**13 us to every later
    timestamp."""
    return collect(
        path, _atis_blocks(path), sensor_size, on_unsorted, allow_empty, size_of(path) // 5
    )


def _atis_chunks(path: Path, *, sensor_size=None, chunk_events: int):
    """Chunks of ``chunk_events`` events; without ``sensor_size`` a first streaming pass finds
    (max x + 1, max y + 1), as the whole read does."""
    path = Path(path)
    if sensor_size is None:
        sensor_size = infer_size(path, _atis_blocks(path))
        if sensor_size is None:
            return
    yield from rechunk(path, _atis_blocks(path), sensor_size, chunk_events)


def write_atis_bin(path: str | Path, events: Events) -> None:
    """Write ``events`` in the ATIS 5-byte layout read by ``read_events`` for ``.bin``.

    Needs x, y in [0, 255], y != 240 and t >= 0. Timestamps of 2**23 us or more are encoded with
    y == 240 overflow markers (2**13 us each), so any non-negative ``t`` reads back exactly.
    """
    path = Path(path)
    if len(events) == 0:
        raise EventFileError(path, "refusing to write zero events")
    t = events.t.astype(np.int64)
    x = events.x.astype(np.int64)
    y = events.y.astype(np.int64)
    if t.min() < 0:
        raise EventFileError(path, "ATIS .bin cannot store negative timestamps")
    if x.max() > 255 or y.max() > 255:
        raise EventFileError(path, "ATIS .bin stores x and y in one byte each (at most 255)")
    if np.any(y == _ATIS_OVERFLOW_Y):
        raise EventFileError(path, "ATIS .bin reserves y == 240 for timestamp-overflow markers")
    needed = np.maximum.accumulate(np.maximum(0, -((_ATIS_T_LIMIT - 1 - t) // _ATIS_OVERFLOW_US)))
    local = t - needed * _ATIS_OVERFLOW_US
    if local.min() < 0:
        raise EventFileError(path, "timestamps beyond 2**23 us can only be written in time order")
    rows = np.zeros((len(t) + int(needed[-1]), 5), dtype=np.uint8)
    event_rows = np.arange(len(t)) + needed
    marker_rows = np.setdiff1d(np.arange(rows.shape[0]), event_rows, assume_unique=True)
    rows[marker_rows, 1] = _ATIS_OVERFLOW_Y
    rows[event_rows, 0] = x
    rows[event_rows, 1] = y
    rows[event_rows, 2] = (events.p.astype(np.int64) << 7) | (local >> 16)
    rows[event_rows, 3] = (local >> 8) & 0xFF
    rows[event_rows, 4] = local & 0xFF
    path.write_bytes(rows.tobytes())


register(
    FileFormat(
        "atis-bin",
        "ATIS 5-byte events (N-MNIST / N-Caltech101 .bin, SLAYER .bs2)",
        (".bin", ".bs2"),
        _read_atis_bin,
        _atis_chunks,
    ),
    sniff=_sniff,
)
