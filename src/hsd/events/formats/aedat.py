"""AEDAT 2.0 (DVS128 addresses), AEDAT 3.1 polarity packets and AEDAT 4 (iniVation)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError, install_hint
from hsd.events.core import Events, UnsortedPolicy, validate_events
from hsd.events.formats._base import DVS128, read_bytes
from hsd.events.formats.registry import FileFormat, register

_AEDAT2_MAGIC = b"#!AER-DAT2.0"
_AEDAT31_MAGIC = b"#!AER-DAT3.1"
_AEDAT4_MAGIC = b"#!AER-DAT4.0"

# AEDAT 3.1 packet header: eventType, eventSource, eventSize, eventTSOffset, eventTSOverflow,
# eventCapacity, eventNumber, eventValid (little-endian).
_AEDAT31_PACKET = struct.Struct("<HHIIIIII")
_AEDAT31_POLARITY = 1
_AEDAT31_WRITE_PACKET = 4096


def _sniff_aedat(path: Path, head: bytes) -> str:
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


def _sniff_aedat4(path: Path, head: bytes) -> str:
    if not head.startswith(_AEDAT4_MAGIC):
        raise EventFileError(path, "missing AEDAT 4 header: the file must start #!AER-DAT4.0")
    return "aedat4"


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
    data = read_bytes(path)
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
        sensor_size or DVS128,
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
    data = read_bytes(path)
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
        sensor_size or DVS128,
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
            path, "reading AEDAT 4 needs the aedat package: " + install_hint("aedat4")
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


register(FileFormat("aedat2", "AEDAT 2.0 (DVS128 addresses)", (".aedat",), _read_aedat2))
register(
    FileFormat("aedat3.1", "AEDAT 3.1 polarity packets", (".aedat",), _read_aedat31),
    sniff=_sniff_aedat,
)
register(FileFormat("aedat4", "AEDAT 4", (".aedat4",), _read_aedat4), sniff=_sniff_aedat4)
