"""Event Stream 2.x (``.es``) files of DVS type."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy, validate_events
from hsd.events.formats._base import read_bytes
from hsd.events.formats.registry import FileFormat, register

_ES_MAGIC = b"Event Stream"


def _sniff(path: Path, head: bytes) -> str:
    if not head.startswith(_ES_MAGIC):
        raise EventFileError(path, "missing Event Stream header 'Event Stream'")
    return "event-stream"


def _read_event_stream(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """Event Stream 2.x (github.com/neuromorphic-paris/event_stream), DVS type only.

    Header: ``Event Stream``, version major/minor/patch bytes, type byte (1 = DVS), width and
    height uint16 little-endian. Then, in the idle state, 0xFF = overflow (+127 us), 0xFE = reset,
    any other byte starts a 5-byte event: byte 0 = time since the previous event (bits 1..7,
    us) and is_increase (bit 0), then x and y as uint16 little-endian. Timestamps start at 0.
    """
    data = read_bytes(path)
    if len(data) < 16:
        raise EventFileError(path, f"truncated Event Stream header ({len(data)} bytes)")
    major, minor, patch, stream_type = data[12], data[13], data[14], data[15]
    if major != 2:
        raise EventFileError(
            path, f"Event Stream version {major}.{minor}.{patch} is not supported (only 2.x)"
        )
    if stream_type != 1:
        names = {0: "generic", 2: "ATIS", 3: "display", 4: "color"}
        name = names.get(stream_type, f"unknown ({stream_type})")
        raise EventFileError(path, f"Event Stream type {name} is not supported (only DVS)")
    if len(data) < 20:
        raise EventFileError(path, "truncated Event Stream header (no width and height)")
    header_size = struct.unpack_from("<HH", data, 16)
    starts, times = _scan_es_dvs(path, data, 20)
    raw = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    t = np.asarray(times, dtype=np.int64)
    return validate_events(
        t,
        raw[starts + 1] | (raw[starts + 2] << 8),
        raw[starts + 3] | (raw[starts + 4] << 8),
        raw[starts] & 1,
        sensor_size or header_size,
        path=path,
        on_unsorted=on_unsorted,
        allow_empty=allow_empty,
    )


def _scan_es_dvs(path: Path, data: bytes, pos: int) -> tuple[np.ndarray, list[int]]:
    """Run the DVS state machine: byte offsets of the events and their timestamps (us)."""
    n = len(data)
    starts: list[int] = []
    times: list[int] = []
    t = 0
    while pos < n:
        byte = data[pos]
        if byte == 0xFF:
            t += 127
            pos += 1
        elif byte == 0xFE:
            pos += 1
        else:
            if pos + 5 > n:
                raise EventFileError(path, f"truncated: the event at byte {pos} is incomplete")
            t += byte >> 1
            starts.append(pos)
            times.append(t)
            pos += 5
    return np.asarray(starts, dtype=np.int64), times


register(
    FileFormat("event-stream", "Event Stream (.es), DVS events", (".es",), _read_event_stream),
    sniff=_sniff,
)
