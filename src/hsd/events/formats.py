"""Event file readers and writers (numpy only; optional packages are imported lazily).

Every reader returns :class:`hsd.events.core.Events` (``t`` int64 microseconds, ``x``/``y``
int16, ``p`` uint8 0/1, ``sensor_size=(width, height)``) built by
:func:`hsd.events.core.validate_events`, and every fault raises
:class:`hsd.errors.EventFileError` naming the file and the fault.

Supported files (see :data:`SUPPORTED_EXTENSIONS`):

* ``.bin`` / ``.bs2``: ATIS 5-byte events (N-MNIST, N-Caltech101, SLAYER ``.bs2``).
* ``.aedat``: AEDAT 2.0 (DVS128 addresses, CIFAR10-DVS) or AEDAT 3.1 polarity packets
  (DVS128 Gesture), told apart by the first header line.
* ``.aedat4``: AEDAT 4 through the optional ``aedat`` package (``pip install hsd[aedat4]``).
* ``.raw`` (Prophesee EVT 2.0 / EVT 3.0) and ``.dat`` (Prophesee DAT) through the optional
  ``expelliarmus`` package (``pip install hsd[prophesee]``).
* ``.es``: Event Stream 2.x files of DVS type.
* ``.npz``: SpikingJelly frame files, read with :func:`read_frames_npz` (frames, not events).
"""

from __future__ import annotations

import re
import struct
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy, validate_events

__all__ = [
    "FORMAT_NAMES",
    "SUPPORTED_EXTENSIONS",
    "detect_format",
    "read_events",
    "read_frames_npz",
    "read_gesture_labels",
    "split_gesture_recording",
    "write_aedat2",
    "write_aedat31",
    "write_atis_bin",
]

SUPPORTED_EXTENSIONS: dict[str, tuple[str, ...]] = {
    ".bin": ("atis-bin",),
    ".bs2": ("atis-bin",),
    ".aedat": ("aedat2", "aedat3.1"),
    ".aedat4": ("aedat4",),
    ".raw": ("evt2", "evt3"),
    ".dat": ("prophesee-dat",),
    ".es": ("event-stream",),
    ".npz": ("frames-npz",),
}
"""File extension -> the formats :func:`detect_format` may return for it."""

FORMAT_NAMES: dict[str, str] = {
    "atis-bin": "ATIS 5-byte events (N-MNIST / N-Caltech101 .bin, SLAYER .bs2)",
    "aedat2": "AEDAT 2.0 (DVS128 addresses)",
    "aedat3.1": "AEDAT 3.1 polarity packets",
    "aedat4": "AEDAT 4",
    "evt2": "Prophesee EVT 2.0 raw",
    "evt3": "Prophesee EVT 3.0 raw",
    "prophesee-dat": "Prophesee DAT",
    "event-stream": "Event Stream (.es), DVS events",
    "frames-npz": "SpikingJelly frames (.npz)",
}
"""Format id -> human-readable name."""

_DVS128 = (128, 128)
_AEDAT2_MAGIC = b"#!AER-DAT2.0"
_AEDAT31_MAGIC = b"#!AER-DAT3.1"
_AEDAT4_MAGIC = b"#!AER-DAT4.0"
_ES_MAGIC = b"Event Stream"
_ZIP_MAGIC = b"PK\x03\x04"
_FOREIGN_MAGICS = (b"#!AER-DAT", _ES_MAGIC, _ZIP_MAGIC, b"% evt", b"% Date", b"% Data file")

# ATIS .bin: an event with y == 240 marks a timestamp overflow (tonic / Orchard's reader).
_ATIS_OVERFLOW_Y = 240
_ATIS_OVERFLOW_US = 1 << 13
_ATIS_T_LIMIT = 1 << 23

# AEDAT 3.1 packet header: eventType, eventSource, eventSize, eventTSOffset, eventTSOverflow,
# eventCapacity, eventNumber, eventValid (little-endian).
_AEDAT31_PACKET = struct.Struct("<HHIIIIII")
_AEDAT31_POLARITY = 1
_AEDAT31_WRITE_PACKET = 4096

# Sensor geometry of Prophesee camera plugins named in ``% plugin_name`` header lines.
_PROPHESEE_PLUGINS = {"gen3": (640, 480), "gen31": (640, 480), "gen41": (1280, 720)}
_PROPHESEE_IMX636 = (1280, 720)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def _head(path: Path, n: int = 4096) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise EventFileError(path, "no such file")
    if not path.is_file():
        raise EventFileError(path, "not a regular file")


def detect_format(path: str | Path) -> str:
    """Format id of ``path`` (a key of :data:`FORMAT_NAMES`) from its extension and content.

    The extension picks the candidates (:data:`SUPPORTED_EXTENSIONS`); the magic bytes or header
    confirm one. Raises :class:`EventFileError` for a missing file, an unknown extension or
    content that does not match the extension.
    """
    path = Path(path)
    _check_exists(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise EventFileError(
            path, f"unknown extension {ext or '(none)'!r}; supported extensions: {supported}"
        )
    head = _head(path)
    if ext in (".bin", ".bs2"):
        if head.startswith(_FOREIGN_MAGICS):
            raise EventFileError(
                path, f"starts with {head[:12]!r}, the header of another format, not ATIS events"
            )
        size = _size_of(path)
        if size % 5:
            raise EventFileError(path, f"truncated: {size} bytes is not a multiple of 5")
        return "atis-bin"
    if ext == ".aedat":
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        if first == _AEDAT2_MAGIC:
            return "aedat2"
        if first == _AEDAT31_MAGIC:
            return "aedat3.1"
        if first.startswith(b"#!AER-DAT"):
            version = first[len(b"#!AER-DAT") :].decode("ascii", "replace")
            raise EventFileError(
                path, f"AEDAT version {version} is not supported (only 2.0 and 3.1 in .aedat)"
            )
        raise EventFileError(
            path, "missing AEDAT header: the first line must be #!AER-DAT2.0 or #!AER-DAT3.1"
        )
    if ext == ".aedat4":
        if not head.startswith(_AEDAT4_MAGIC):
            raise EventFileError(path, "missing AEDAT 4 header: the file must start #!AER-DAT4.0")
        return "aedat4"
    if ext == ".raw":
        header, _ = _prophesee_header(_head(path, 1 << 16))
        encoding = _prophesee_encoding(header)
        if encoding is None:
            raise EventFileError(
                path, "missing Prophesee header line '% evt 2.0' or '% evt 3.0' (or '% format')"
            )
        if encoding not in ("evt2", "evt3"):
            raise EventFileError(path, f"Prophesee encoding {encoding!r} is not supported")
        return encoding
    if ext == ".dat":
        if not head.startswith(b"%"):
            raise EventFileError(path, "missing Prophesee DAT header (lines starting with '%')")
        return "prophesee-dat"
    if ext == ".es":
        if not head.startswith(_ES_MAGIC):
            raise EventFileError(path, "missing Event Stream header 'Event Stream'")
        return "event-stream"
    if not head.startswith(_ZIP_MAGIC):
        raise EventFileError(path, "not an .npz archive (no zip header)")
    return "frames-npz"


def read_events(
    path: str | Path,
    *,
    sensor_size: tuple[int, int] | None = None,
    on_unsorted: UnsortedPolicy = "sort",
    allow_empty: bool = False,
) -> Events:
    """Read an event file of any supported format (see :func:`detect_format`).

    ``sensor_size=(width, height)`` overrides the size the file gives or implies; events outside
    it raise. Without it: ATIS ``.bin``/``.bs2`` infer ``(max x + 1, max y + 1)`` (which can be
    smaller than the sensor: pass ``(34, 34)`` for N-MNIST); AEDAT 2.0 and
    3.1 use the DVS128's 128x128; AEDAT 4, Event Stream and Prophesee files use their header
    (Prophesee files without one fall back to ``(max x + 1, max y + 1)``).
    ``on_unsorted`` and ``allow_empty`` are passed to :func:`validate_events`.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "frames-npz":
        raise EventFileError(path, "holds frames, not events; read it with read_frames_npz")
    reader = _READERS[fmt]
    return reader(path, sensor_size, on_unsorted, allow_empty)


def _finish(
    path: Path,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """Validate decoded arrays; ``sensor_size=None`` means (max x + 1, max y + 1)."""
    if sensor_size is None:
        if len(x) == 0:
            if allow_empty:
                raise EventFileError(
                    path, "the stream holds zero events and no sensor_size was given to size it"
                )
            raise EventFileError(path, "the stream holds zero events")
        sensor_size = (int(np.max(x)) + 1, int(np.max(y)) + 1)
    return validate_events(
        t, x, y, p, sensor_size, path=path, on_unsorted=on_unsorted, allow_empty=allow_empty
    )


# --- ATIS .bin / .bs2 --------------------------------------------------------------------------


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
    data = _read_bytes(path)
    if len(data) % 5:
        raise EventFileError(path, f"truncated: {len(data)} bytes is not a multiple of 5")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    overflow = raw[:, 1] == _ATIS_OVERFLOW_Y
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    t = t + _ATIS_OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    return _finish(
        path,
        t[keep],
        raw[keep, 0],
        raw[keep, 1],
        raw[keep, 2] >> 7,
        sensor_size,
        on_unsorted,
        allow_empty,
    )


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


# --- AEDAT 2.0 ---------------------------------------------------------------------------------


def _aedat_header_end(data: bytes) -> tuple[int, list[str]]:
    """Byte offset where the ``#`` header lines end, and those lines (decoded, stripped)."""
    pos = 0
    lines = []
    while pos < len(data) and data[pos : pos + 1] == b"#":
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        lines.append(data[pos:end].decode("latin-1").rstrip("\r\n"))
        pos = end
        if lines[-1] == "#!END-HEADER":
            break
    return pos, lines


def _read_aedat2(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """AEDAT 2.0 with DVS128 addresses, decoded like SpikingJelly's CIFAR10-DVS loader.

    Big-endian uint32 address + uint32 timestamp (us). Raw x = bits 1..7, raw y = bits 8..14,
    raw polarity = bit 0; returned as ``x = 127 - raw y``, ``y = 127 - raw x``,
    ``p = 1 - raw polarity`` (SpikingJelly's orientation). No valid-bit filter (SpikingJelly
    applies none). DAVIS address layouts are refused.
    """
    data = _read_bytes(path)
    start, lines = _aedat_header_end(data)
    body = data[start:]
    if len(body) % 8:
        raise EventFileError(
            path, f"truncated: {len(body)} data bytes after the header is not a multiple of 8"
        )
    words = np.frombuffer(body, dtype=">u4").astype(np.int64)
    addr, t = words[0::2], words[1::2]
    if len(addr):
        chip = next((ln.split(":", 1)[1].strip() for ln in lines if "AEChip:" in ln), "")
        if "davis" in chip.lower():
            raise EventFileError(
                path,
                f"AEDAT 2.0 from {chip}: only the DVS128 address layout "
                "(CIFAR10-DVS, DVS128) is supported",
            )
    raw_x = (addr & 0xFE) >> 1
    raw_y = (addr & 0x7F00) >> 8
    raw_p = addr & 1
    return validate_events(
        t,
        127 - raw_y,
        127 - raw_x,
        1 - raw_p,
        sensor_size or _DVS128,
        path=path,
        on_unsorted=on_unsorted,
        allow_empty=allow_empty,
    )


def _check_dvs128(path: Path, events: Events, fmt: str) -> None:
    if len(events) == 0:
        raise EventFileError(path, "refusing to write zero events")
    if int(events.x.max()) > 127 or int(events.y.max()) > 127:
        raise EventFileError(path, f"{fmt} stores DVS128 coordinates (x and y at most 127)")
    if int(events.t.min()) < 0:
        raise EventFileError(path, f"{fmt} cannot store negative timestamps")


def write_aedat2(path: str | Path, events: Events) -> None:
    """Write ``events`` (x, y < 128, 0 <= t < 2**32 us) as AEDAT 2.0, the exact inverse of the
    reader: ``read_events`` on the result gives back the same t, x, y, p."""
    path = Path(path)
    _check_dvs128(path, events, "AEDAT 2.0")
    if int(events.t.max()) >= 1 << 32:
        raise EventFileError(path, "AEDAT 2.0 timestamps are uint32 (below 2**32 us)")
    raw_x = 127 - events.y.astype(np.uint32)
    raw_y = 127 - events.x.astype(np.uint32)
    raw_p = 1 - events.p.astype(np.uint32)
    words = np.empty(2 * len(events), dtype=">u4")
    words[0::2] = (raw_y << 8) | (raw_x << 1) | raw_p
    words[1::2] = events.t.astype(np.uint32)
    header = (
        b"#!AER-DAT2.0\r\n"
        b"# This is a raw AE data file written by hsd\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total), "
        b"repeated for each event\r\n"
        b"# Timestamps tick is 1 us\r\n"
        b"# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"
    )
    path.write_bytes(header + words.tobytes())


# --- AEDAT 3.1 ---------------------------------------------------------------------------------


def _read_aedat31(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """AEDAT 3.1 polarity packets, decoded like SpikingJelly's ``load_aedat_v3`` (DVS128 Gesture).

    After the header (ending ``#!END-HEADER``), 28-byte packet headers each followed by
    ``eventCapacity * eventSize`` bytes. Packets of type 1 (polarity, 8-byte events): data
    uint32 with polarity bit 1, y bits 2..16, x bits 17..31; timestamp = uint32 |
    eventTSOverflow << 31. Other packet types are skipped. As in SpikingJelly and tonic, all
    ``eventCapacity`` events are kept and the validity bit is not filtered; x and y are not
    flipped.
    """
    data = _read_bytes(path)
    start, lines = _aedat_header_end(data)
    if not lines or lines[-1] != "#!END-HEADER":
        raise EventFileError(path, "AEDAT 3.1 header does not end with #!END-HEADER")
    chunks: list[tuple[np.ndarray, int]] = []
    pos = start
    while pos < len(data):
        if pos + _AEDAT31_PACKET.size > len(data):
            raise EventFileError(path, f"truncated packet header at byte {pos}")
        e_type, _, e_size, _, e_overflow, e_capacity, _, _ = _AEDAT31_PACKET.unpack_from(data, pos)
        pos += _AEDAT31_PACKET.size
        length = e_capacity * e_size
        if pos + length > len(data):
            raise EventFileError(
                path,
                f"truncated packet at byte {pos}: {e_capacity} events of {e_size} bytes announced, "
                f"{len(data) - pos} bytes left",
            )
        if e_type == _AEDAT31_POLARITY:
            if e_size != 8:
                raise EventFileError(
                    path, f"polarity packet at byte {pos} has {e_size}-byte events, not 8"
                )
            chunks.append(
                (np.frombuffer(data, dtype="<u4", count=2 * e_capacity, offset=pos), e_overflow)
            )
        pos += length
    if chunks:
        words = np.concatenate([w for w, _ in chunks]).astype(np.int64)
        overflow = np.concatenate([np.full(len(w) // 2, o, np.int64) for w, o in chunks])
    else:
        words = np.zeros(0, np.int64)
        overflow = np.zeros(0, np.int64)
    aer, ts = words[0::2], words[1::2]
    return validate_events(
        ts | (overflow << 31),
        (aer >> 17) & 0x7FFF,
        (aer >> 2) & 0x7FFF,
        (aer >> 1) & 1,
        sensor_size or _DVS128,
        path=path,
        on_unsorted=on_unsorted,
        allow_empty=allow_empty,
    )


def write_aedat31(path: str | Path, events: Events) -> None:
    """Write ``events`` (x, y < 128, t >= 0) as AEDAT 3.1 polarity packets (valid bit set,
    up to 4096 events per packet), read back exactly by ``read_events``."""
    path = Path(path)
    _check_dvs128(path, events, "AEDAT 3.1")
    t = events.t.astype(np.int64)
    overflow = t >> 31
    data = (
        (events.x.astype(np.uint32) << 17)
        | (events.y.astype(np.uint32) << 2)
        | (events.p.astype(np.uint32) << 1)
        | np.uint32(1)
    )
    parts = [
        b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Written-By: hsd\r\n#!END-HEADER\r\n"
    ]
    boundaries = np.flatnonzero(np.diff(overflow)) + 1
    for group in np.split(np.arange(len(t)), boundaries):
        for start in range(0, len(group), _AEDAT31_WRITE_PACKET):
            idx = group[start : start + _AEDAT31_WRITE_PACKET]
            n = len(idx)
            body = np.empty(2 * n, dtype="<u4")
            body[0::2] = data[idx]
            body[1::2] = (t[idx] & 0x7FFFFFFF).astype(np.uint32)
            parts.append(
                _AEDAT31_PACKET.pack(_AEDAT31_POLARITY, 1, 8, 4, int(overflow[idx[0]]), n, n, n)
            )
            parts.append(body.tobytes())
    path.write_bytes(b"".join(parts))


# --- DVS128 Gesture labels ---------------------------------------------------------------------


def read_gesture_labels(csv_path: str | Path) -> list[tuple[int, int, int]]:
    """Read a DVS128 Gesture ``*_labels.csv`` (``class,startTime_usec,endTime_usec``, classes
    1..11) as ``[(class 0..10, start_us, end_us), ...]`` in file order."""
    csv_path = Path(csv_path)
    _check_exists(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(csv_path, f"cannot read the label file ({exc})") from exc
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or [c.strip() for c in lines[0].split(",")] != [
        "class",
        "startTime_usec",
        "endTime_usec",
    ]:
        raise EventFileError(
            csv_path, "the first line must be the header class,startTime_usec,endTime_usec"
        )
    labels = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        try:
            cls, start, end = (int(f) for f in fields)
        except ValueError:
            raise EventFileError(
                csv_path, f"line {number}: expected three integers, got {line!r}"
            ) from None
        if not 1 <= cls <= 11:
            raise EventFileError(csv_path, f"line {number}: class {cls} is not in 1..11")
        if start < 0 or end < start:
            raise EventFileError(csv_path, f"line {number}: bad time range [{start}, {end})")
        labels.append((cls - 1, start, end))
    if not labels:
        raise EventFileError(csv_path, "holds no labelled clips")
    return labels


def split_gesture_recording(
    events: Events, labels: list[tuple[int, int, int]]
) -> list[tuple[int, Events]]:
    """Cut one recording into labelled clips like SpikingJelly: for each ``(class, start, end)``
    in order, the events with ``start <= t < end`` (a clip may be empty; overlaps are allowed)."""
    return [
        (cls, events.select((events.t >= start) & (events.t < end))) for cls, start, end in labels
    ]


# --- AEDAT 4 -----------------------------------------------------------------------------------


def _read_aedat4(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """AEDAT 4 via the ``aedat`` package: the events stream with the lowest id (as tonic does);
    sensor size from that stream's width and height."""
    try:
        import aedat
    except ImportError:
        raise EventFileError(
            path, "reading AEDAT 4 needs the aedat package: pip install hsd[aedat4]"
        ) from None
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
        ids = [sid for sid, s in streams.items() if s.get("type") == "events"]
        if not ids:
            raise EventFileError(path, "the AEDAT 4 file has no events stream")
        sid = min(ids)
        packets = [pk["events"] for pk in decoder if pk["stream_id"] == sid and "events" in pk]
    except RuntimeError as exc:
        raise EventFileError(path, f"corrupt AEDAT 4 file ({exc})") from None
    header_size = (int(streams[sid]["width"]), int(streams[sid]["height"]))
    if packets:
        ev = np.concatenate(packets)
        t, x, y, p = ev["t"], ev["x"], ev["y"], ev["on"]
    else:
        t = x = y = p = np.zeros(0, np.int64)
    return validate_events(
        t.astype(np.int64),
        x,
        y,
        p.astype(np.uint8),
        sensor_size or header_size,
        path=path,
        on_unsorted=on_unsorted,
        allow_empty=allow_empty,
    )


# --- Prophesee EVT 2.0 / EVT 3.0 / DAT ---------------------------------------------------------


def _prophesee_header(data: bytes) -> tuple[list[str], int]:
    """The ``%`` header lines at the start of ``data`` (decoded, without ``%`` and newline, up to
    an optional ``% end``) and the header's length in bytes."""
    lines = []
    pos = 0
    while data[pos : pos + 1] == b"%":
        end = data.find(b"\n", pos)
        end = len(data) - 1 if end < 0 else end
        line = data[pos + 1 : end].decode("latin-1").strip()
        pos = end + 1
        if line == "end":
            break
        lines.append(line)
    return lines, pos


def _prophesee_encoding(header: list[str]) -> str | None:
    for line in header:
        key, _, value = line.partition(" ")
        if key == "evt":
            return "evt" + value.strip().replace(".0", "")
        if key == "format":
            return value.split(";")[0].strip().lower()
    return None


def _prophesee_sensor_size(header: list[str]) -> tuple[int, int] | None:
    """Sensor size from ``% geometry WxH``, ``% format ...;height=H;width=W``,
    ``% Width``/``% Height`` lines or a known ``% plugin_name``; None when absent."""
    values: dict[str, str] = {}
    for line in header:
        key, _, value = line.partition(" ")
        values[key.lower()] = value.strip()
    match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", values.get("geometry", ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    fields = dict(f.split("=", 1) for f in values.get("format", "").split(";") if f.count("=") == 1)
    if "width" in fields and "height" in fields:
        return int(fields["width"]), int(fields["height"])
    if values.get("width", "").isdigit() and values.get("height", "").isdigit():
        return int(values["width"]), int(values["height"])
    plugin = values.get("plugin_name", "").lower()
    if "imx636" in plugin:
        return _PROPHESEE_IMX636
    match = re.search(r"gen(\d+)", plugin)
    if match and "gen" + match.group(1) in _PROPHESEE_PLUGINS:
        return _PROPHESEE_PLUGINS["gen" + match.group(1)]
    return None


def _read_prophesee(
    fmt: str,
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """Prophesee EVT 2.0 / EVT 3.0 ``.raw`` and DAT ``.dat`` through ``expelliarmus``; sensor
    size from the header when it gives one, else ``(max x + 1, max y + 1)``."""
    try:
        import expelliarmus
    except ImportError:
        raise EventFileError(
            path, "reading Prophesee files needs expelliarmus: pip install hsd[prophesee]"
        ) from None
    data = _head(path, 1 << 16)
    header, header_length = _prophesee_header(data)
    body = _size_of(path) - header_length
    if fmt == "prophesee-dat":
        if body < 2:
            raise EventFileError(path, "truncated: no event type/size bytes after the header")
        ev_size = data[header_length + 1]
        if ev_size != 8:
            raise EventFileError(path, f"DAT event size is {ev_size} bytes, expected 8")
        if (body - 2) % 8:
            raise EventFileError(path, f"truncated: {body - 2} event bytes is not a multiple of 8")
        encoding, empty = "DAT", body == 2
    else:
        word = 4 if fmt == "evt2" else 2
        if body % word:
            raise EventFileError(
                path, f"truncated: {body} data bytes is not a multiple of {word} ({fmt})"
            )
        encoding, empty = fmt.upper(), body == 0
    if empty:
        t = x = y = p = np.zeros(0, np.int64)
    else:
        arr = expelliarmus.Wizard(encoding=encoding, fpath=str(path)).read()
        if arr is None:
            raise EventFileError(path, f"expelliarmus could not decode the {encoding} data")
        t, x, y, p = arr["t"], arr["x"], arr["y"], arr["p"]
    size = sensor_size or _prophesee_sensor_size(header)
    return _finish(path, t, x, y, p, size, on_unsorted, allow_empty)


# --- Event Stream (.es) ------------------------------------------------------------------------


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
    data = _read_bytes(path)
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


# --- SpikingJelly frames (.npz) ----------------------------------------------------------------


def read_frames_npz(path: str | Path) -> np.ndarray:
    """Frames ``[N, P, H, W]`` stored under key ``frames`` in a SpikingJelly ``.npz`` (dtype as
    stored). Raises for a missing key, ``ndim != 4`` or NaN/inf values."""
    path = Path(path)
    if detect_format(path) != "frames-npz":
        raise EventFileError(path, "not an .npz frame file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            frames = archive["frames"] if "frames" in keys else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EventFileError(path, f"corrupt .npz archive ({exc})") from None
    if frames is None:
        raise EventFileError(path, f"no 'frames' array (keys: {', '.join(keys) or 'none'})")
    if frames.ndim != 4:
        raise EventFileError(
            path, f"'frames' has shape {tuple(frames.shape)}; expected 4-D [N, P, H, W]"
        )
    if frames.dtype.kind not in "iufb":
        raise EventFileError(path, f"'frames' has non-numeric dtype {frames.dtype}")
    if frames.dtype.kind == "f" and not np.all(np.isfinite(frames)):
        bad = int(np.count_nonzero(~np.isfinite(frames)))
        raise EventFileError(path, f"'frames' holds {bad} NaN or infinite values")
    return frames


_READERS = {
    "atis-bin": _read_atis_bin,
    "aedat2": _read_aedat2,
    "aedat3.1": _read_aedat31,
    "aedat4": _read_aedat4,
    "evt2": partial(_read_prophesee, "evt2"),
    "evt3": partial(_read_prophesee, "evt3"),
    "prophesee-dat": partial(_read_prophesee, "prophesee-dat"),
    "event-stream": _read_event_stream,
}
