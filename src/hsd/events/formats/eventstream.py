"""Event Stream 2.x (``.es``) files of DVS type (github.com/neuromorphic-paris/event_stream).

Orientation: Event Stream stores y with the origin at the *bottom* of the sensor, and faery
(the format authors' current library) flips on both reading and writing (``height - 1 - y``).
hsd does the same, so a recording and its faery ``.es`` conversion give the same events and
frames as every other format (origin top-left). :func:`write_event_stream` flips back.

Decoding is vectorised (no Python loop per event) and streams the file in blocks: the byte
state machine (``0xFF`` overflow, ``0xFE`` reset, otherwise a 5-byte event) is resolved per
block by simulating all 512-byte sub-blocks in parallel from each of their 5 possible entry
offsets, chaining the exits, and then marking the visited bytes; the state (time, a partial
event) is carried from block to block.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import (
    BLOCK_BYTES,
    check_header_size,
    collect,
    open_file,
    read_at,
    rechunk,
    size_of,
)
from hsd.events.formats.registry import FileFormat, register

_ES_MAGIC = b"Event Stream"
_HEADER = 20
_SUB = 512
_ES_BLOCK_DIVISOR = 8
"""The state machine works on BLOCK_BYTES / 8 (1 MiB) at a time: its index arrays take ~20
bytes per file byte, so smaller blocks keep the peak near the returned arrays."""
_TYPES = {0: "generic", 1: "DVS", 2: "ATIS", 3: "display", 4: "color"}


def _sniff(path: Path, head: bytes) -> str:
    if not head.startswith(_ES_MAGIC):
        raise EventFileError(path, "missing Event Stream header 'Event Stream'")
    return "event-stream"


def _header(path: Path, data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the 20-byte header; refuses other versions and types."""
    if len(data) < 16:
        raise EventFileError(path, f"truncated Event Stream header ({len(data)} bytes)")
    major, minor, patch, stream_type = data[12], data[13], data[14], data[15]
    if major != 2:
        raise EventFileError(
            path, f"Event Stream version {major}.{minor}.{patch} is not supported (only 2.x)"
        )
    if stream_type != 1:
        name = _TYPES.get(stream_type, f"unknown ({stream_type})")
        raise EventFileError(path, f"Event Stream type {name} is not supported (only DVS, type 1)")
    if len(data) < _HEADER:
        raise EventFileError(path, "truncated Event Stream header (no width and height)")
    return check_header_size(path, *struct.unpack_from("<HH", data, 16))


def _path_mask(b: np.ndarray) -> tuple[np.ndarray, int]:
    """Bytes the DVS state machine visits when it starts at byte 0 of ``b`` (bool mask), and
    the position where it leaves ``b`` (``>= len(b)``; above it: the last event is cut)."""
    n = len(b)
    nxt = np.arange(n + 5, dtype=np.int32)
    nxt[:n] += np.where(b >= 0xFE, np.int32(1), np.int32(5))
    starts = np.arange(0, n, _SUB, dtype=np.int32)
    ends = np.minimum(starts + _SUB, n)
    # exits[k, e]: where the machine leaves sub-block k when it enters at starts[k] + e
    pos = (starts[:, None] + np.arange(5)).ravel()
    lim = np.repeat(ends, 5)
    active = pos < lim
    while active.any():
        pos = np.where(active, nxt[pos], pos)
        active = pos < lim
    exits = (pos - np.repeat(ends, 5)).reshape(-1, 5)
    entry = np.zeros(len(starts), dtype=np.int64)
    e = 0
    for k in range(len(starts) - 1):
        entry[k] = e
        e = int(exits[k, e])
    entry[-1] = e
    end = int(ends[-1] + exits[-1, e])
    on = np.zeros(n, dtype=bool)
    pos = starts + entry
    active = pos < ends
    while active.any():
        on[pos[active]] = True
        pos = np.where(active, nxt[pos], pos)
        active = pos < ends
    return on, end


def _es_blocks(path: Path):
    """Decoded ``(t, x, y, p)`` blocks (y still as stored, bottom origin) and, first, the
    header's sensor size."""
    with open_file(path) as fh:
        size = _header(path, read_at(fh, path, _HEADER))
        yield size
        t0 = 0
        carry = b""
        offset = _HEADER  # file offset of carry's first byte
        while True:
            data = read_at(fh, path, max(64, BLOCK_BYTES // _ES_BLOCK_DIVISOR))
            if not data:
                if carry:
                    raise EventFileError(
                        path, f"truncated: the event at byte {offset} is incomplete"
                    )
                return
            buf = carry + data
            b = np.frombuffer(buf, dtype=np.uint8)
            on, end = _path_mask(b)
            idx = np.flatnonzero(on)
            if end > len(b):  # the last event continues in the next block
                cut = int(idx[-1])
                idx = idx[:-1]
                carry = buf[cut:]
            else:
                cut, carry = len(b), b""
            code = b[idx].astype(np.int64)
            marker = code >= 0xFE
            t = t0 + np.cumsum(np.where(code == 0xFF, 127, np.where(marker, 0, code >> 1)))
            if len(t):
                t0 = int(t[-1])
            ev = idx[~marker]
            wide = b.astype(np.uint16) if len(ev) else b
            yield (
                t[~marker],
                wide[ev + 1] | (wide[ev + 2] << 8),
                wide[ev + 3] | (wide[ev + 4] << 8),
                b[ev] & 1,
            )
            offset += cut


def _flipped(blocks, height: int):
    for t, x, y, p in blocks:
        yield t, x, height - 1 - y.astype(np.int32), p


def _read_event_stream(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """Event Stream 2.x, DVS type only.

    Header: ``Event Stream``, version major/minor/patch bytes, type byte (1 = DVS; generic,
    ATIS, display and color types are refused), width and height uint16 little-endian (each
    1..8192). Then, in the idle state, 0xFF = overflow (+127 us), 0xFE = reset, any other byte
    starts a 5-byte event: byte 0 = time since the previous event (bits 1..7, us) and
    is_increase (bit 0), then x and y as uint16 little-endian. Timestamps start at 0. Returned
    y is ``height - 1 - stored y`` (top-left origin, as faery reads it).
    """
    blocks = _es_blocks(path)
    header_size = next(blocks)
    return collect(
        path,
        _flipped(blocks, header_size[1]),
        sensor_size or header_size,
        on_unsorted,
        allow_empty,
        max(0, size_of(path) - _HEADER) // 5,
    )


def _es_chunks(path: Path, *, sensor_size=None, chunk_events: int):
    path = Path(path)
    blocks = _es_blocks(path)
    header_size = next(blocks)
    yield from rechunk(
        path, _flipped(blocks, header_size[1]), sensor_size or header_size, chunk_events
    )


def write_event_stream(path: str | Path, events: Events) -> None:
    """Write ``events`` as an Event Stream 2.0.0 DVS file that :func:`read_events` reads back
    exactly (and faery reads with the same orientation): stored y is ``height - 1 - y``.
    Needs non-decreasing ``t >= 0``; the first event's time is stored relative to 0."""
    path = Path(path)
    if len(events) == 0:
        raise EventFileError(path, "refusing to write zero events")
    t = events.t.astype(np.int64)
    if int(t[0]) < 0 or np.any(np.diff(t) < 0):
        raise EventFileError(path, "Event Stream needs non-negative, non-decreasing timestamps")
    w, h = events.sensor_size
    delta = np.diff(t, prepend=0)
    overflows = delta // 127
    rest = delta - overflows * 127
    lengths = overflows + 5
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = np.full(int(offsets[-1]), 0xFF, dtype=np.uint8)
    at = offsets[:-1] + overflows
    y = (h - 1 - events.y.astype(np.int64)).astype(np.uint16)
    x = events.x.astype(np.uint16)
    out[at] = (rest << 1) | events.p.astype(np.int64)
    out[at + 1] = x & 0xFF
    out[at + 2] = x >> 8
    out[at + 3] = y & 0xFF
    out[at + 4] = y >> 8
    header = _ES_MAGIC + bytes([2, 0, 0, 1]) + struct.pack("<HH", w, h)
    path.write_bytes(header + out.tobytes())


register(
    FileFormat(
        "event-stream",
        "Event Stream (.es), DVS events",
        (".es",),
        _read_event_stream,
        _es_chunks,
    ),
    sniff=_sniff,
)
