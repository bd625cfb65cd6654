"""AEDAT 2.0 (DVS128 addresses), AEDAT 3.1 polarity packets and AEDAT 4 (iniVation)."""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError, install_hint
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import (
    BLOCK_BYTES,
    DVS128,
    check_header_size,
    collect,
    open_file,
    read_at,
    rechunk,
    size_of,
)
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


def _aedat_header(fh, path: Path) -> tuple[int, list[str]]:
    """Read the ``#`` header lines from ``fh`` (at offset 0): the offset where they end and the
    lines (decoded, stripped). A header line over 64 KiB is refused (not a header)."""
    pos = 0
    lines: list[str] = []
    while True:
        fh.seek(pos)
        if read_at(fh, path, 1) != b"#":
            break
        fh.seek(pos)
        line = fh.readline(1 << 16)
        if len(line) == 1 << 16 and not line.endswith(b"\n"):
            raise EventFileError(path, f"header line at byte {pos} is longer than 64 KiB")
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        pos += len(line)
        if lines[-1] == "#!END-HEADER":
            break
    fh.seek(pos)
    return pos, lines


def _aedat2_blocks(path: Path):
    """Decoded blocks of an AEDAT 2.0 file (8-byte events, :data:`BLOCK_BYTES` at a time)."""
    size = size_of(path)
    with open_file(path) as fh:
        start, lines = _aedat_header(fh, path)
        if (size - start) % 8:
            raise EventFileError(
                path,
                f"truncated: {size - start} data bytes after the header is not a multiple of 8",
            )
        if size > start:
            chip = next((ln.split(":", 1)[1].strip() for ln in lines if "AEChip:" in ln), "")
            if "davis" in chip.lower():
                raise EventFileError(
                    path,
                    f"AEDAT 2.0 from {chip}: only the DVS128 address layout "
                    "(CIFAR10-DVS, DVS128) is supported",
                )
        while True:
            data = read_at(fh, path, BLOCK_BYTES - BLOCK_BYTES % 8)
            if not data:
                return
            if len(data) % 8:
                raise EventFileError(path, "the file changed while it was read")
            words = np.frombuffer(data, dtype=">u4")
            addr = words[0::2].astype(np.int32)
            raw_x = (addr & 0xFE) >> 1
            raw_y = (addr & 0x7F00) >> 8
            yield words[1::2].astype(np.int64), 127 - raw_y, 127 - raw_x, 1 - (addr & 1)


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
    return collect(
        path,
        _aedat2_blocks(path),
        sensor_size or DVS128,
        on_unsorted,
        allow_empty,
        size_of(path) // 8,
    )


def _aedat2_chunks(path: Path, *, sensor_size=None, chunk_events: int):
    path = Path(path)
    yield from rechunk(path, _aedat2_blocks(path), sensor_size or DVS128, chunk_events)


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


_AEDAT31_MAX_TYPE = 13
"""Highest caer event type (0 special .. 13 matrix 4x4); a larger type is a corrupt header."""


def _aedat31_blocks(path: Path):
    """Decoded polarity packets of an AEDAT 3.1 file, one packet (or :data:`BLOCK_BYTES` of
    it) at a time; the packet headers are checked so a corrupt one is refused, never skipped."""
    size = size_of(path)
    with open_file(path) as fh:
        pos, lines = _aedat_header(fh, path)
        if not lines or lines[-1] != "#!END-HEADER":
            raise EventFileError(path, "AEDAT 3.1 header does not end with #!END-HEADER")
        while pos < size:
            head = read_at(fh, path, _AEDAT31_PACKET.size)
            if len(head) < _AEDAT31_PACKET.size:
                raise EventFileError(path, f"truncated packet header at byte {pos}")
            e_type, _, e_size, e_ts_off, e_overflow, e_capacity, e_number, e_valid = (
                _AEDAT31_PACKET.unpack(head)
            )
            where = f"packet header at byte {pos}"
            if e_type > _AEDAT31_MAX_TYPE:
                raise EventFileError(path, f"corrupt {where}: event type {e_type} is unknown")
            if e_size == 0 or e_ts_off + 4 > e_size:
                raise EventFileError(
                    path, f"corrupt {where}: event size {e_size}, timestamp offset {e_ts_off}"
                )
            if e_number > e_capacity or e_valid > e_number:
                raise EventFileError(
                    path,
                    f"corrupt {where}: {e_valid} valid of {e_number} events in a packet of "
                    f"capacity {e_capacity}",
                )
            pos += _AEDAT31_PACKET.size
            length = e_capacity * e_size
            if pos + length > size:
                raise EventFileError(
                    path,
                    f"truncated packet at byte {pos}: {e_capacity} events of {e_size} bytes "
                    f"announced, {size - pos} bytes left",
                )
            if e_type != _AEDAT31_POLARITY:
                fh.seek(pos + length)
                pos += length
                continue
            if e_size != 8 or e_ts_off != 4:
                raise EventFileError(
                    path, f"polarity packet at byte {pos} has {e_size}-byte events, not 8"
                )
            left = length
            while left:
                data = read_at(fh, path, min(left, BLOCK_BYTES - BLOCK_BYTES % 8))
                if len(data) % 8 or not data:
                    raise EventFileError(path, "the file changed while it was read")
                left -= len(data)
                words = np.frombuffer(data, dtype="<u4")
                aer = words[0::2]
                yield (
                    words[1::2].astype(np.int64) | (e_overflow << 31),
                    (aer >> 17) & 0x7FFF,
                    (aer >> 2) & 0x7FFF,
                    (aer >> 1) & 1,
                )
            pos += length


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
    eventTSOverflow << 31. Other packet types (caer types 0..13) are skipped; a packet header
    with an unknown type, a timestamp offset outside its events, more valid than stored or
    more stored than capacity events is refused as corrupt. As in SpikingJelly and tonic, all
    ``eventCapacity`` events are kept and the validity bit is not filtered; x and y are not
    flipped.
    """
    return collect(
        path,
        _aedat31_blocks(path),
        sensor_size or DVS128,
        on_unsorted,
        allow_empty,
        size_of(path) // 8,
    )


def _aedat31_chunks(path: Path, *, sensor_size=None, chunk_events: int):
    path = Path(path)
    yield from rechunk(path, _aedat31_blocks(path), sensor_size or DVS128, chunk_events)


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


class _DecoderStderr:
    """Holds the ``aedat`` decoder's writes to file descriptor 2 while it runs.

    A Rust panic prints ``thread ... panicked at ...`` (and, with ``RUST_BACKTRACE`` set, a
    whole stack backtrace) straight to fd 2 before pyo3 turns it into an exception; hsd reports
    the panic as one error line instead, so the decoder runs with fd 2 pointed at a temporary
    file. Whatever it wrote is passed on to the real stderr unless the call panicked (then it
    is dropped: the error names the file and the panic message)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = tempfile.TemporaryFile()

    def call(self, fn, *args):
        """``fn(*args)`` with fd 2 captured, other output passed on; the decoder's errors
        (``RuntimeError``, ``OSError``, ``ValueError``) and a Rust panic are raised as
        :class:`~hsd.errors.EventFileError` naming the file."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        panicked = False
        try:
            return fn(*args)
        except (RuntimeError, OSError, ValueError) as exc:
            raise EventFileError(self._path, f"corrupt AEDAT 4 file ({exc})") from None
        except BaseException as exc:
            panicked = _is_rust_panic(exc)
            if not panicked:
                raise
            raise EventFileError(
                self._path, f"corrupt AEDAT 4 file (decoder panic: {exc})"
            ) from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            self._file.flush()
            if self._file.tell():
                if not panicked:
                    self._file.seek(0)
                    data = self._file.read()
                    try:
                        os.write(2, data)
                    except OSError:
                        pass
                self._file.seek(0)
                self._file.truncate()

    def close(self) -> None:
        self._file.close()


def _is_rust_panic(exc: BaseException) -> bool:
    """A Rust panic inside the ``aedat`` decoder reaches Python as pyo3's ``PanicException``,
    a ``BaseException`` (not an ``Exception``): e.g. a header string cut inside a UTF-8
    character."""
    return type(exc).__name__ == "PanicException"


_AEDAT4_HEADER_MAX = 16 << 20


def _aedat4_check_header(path: Path) -> None:
    """Refuse an AEDAT 4 header the ``aedat`` decoder cannot survive. Its header is
    ``#!AER-DAT4.0\\r\\n``, a little-endian u32 size and an ``IOHeader`` flatbuffer whose
    ``infoNode`` string is the XML stream description. An ``infoNode`` that is not UTF-8 makes
    the decoder panic while converting it to Python, and that panic aborts the process (SIGABRT,
    nothing to catch), so the header is read and the string checked here first."""
    with open_file(path) as fh:
        head = read_at(fh, path, len(_AEDAT4_MAGIC) + 6)
        if len(head) < len(_AEDAT4_MAGIC) + 6:
            raise EventFileError(path, "truncated AEDAT 4 header")
        (n,) = struct.unpack_from("<I", head, len(_AEDAT4_MAGIC) + 2)
        if n > _AEDAT4_HEADER_MAX:
            raise EventFileError(path, f"corrupt AEDAT 4 header (declares {n} bytes)")
        buf = read_at(fh, path, n)
    if len(buf) < n:
        raise EventFileError(path, f"truncated AEDAT 4 header ({len(buf)} of {n} bytes)")

    def u32(at: int, fmt: str = "<I") -> int:
        if not 0 <= at <= len(buf) - 4:
            raise EventFileError(path, "corrupt AEDAT 4 header (offset outside the header)")
        return struct.unpack_from(fmt, buf, at)[0]

    root = u32(0)
    vtable = root - u32(root, "<i")
    if not 0 <= vtable <= len(buf) - 4:
        raise EventFileError(path, "corrupt AEDAT 4 header (offset outside the header)")
    (vtable_size,) = struct.unpack_from("<H", buf, vtable)
    if vtable_size < 10 or vtable + 10 > len(buf):  # field 2 (infoNode) absent: decoder's call
        return
    (field,) = struct.unpack_from("<H", buf, vtable + 8)
    if not field:
        return
    at = root + field
    at += u32(at)
    length = u32(at)
    if at + 4 + length > len(buf):
        raise EventFileError(path, "corrupt AEDAT 4 header (description outside the header)")
    try:
        buf[at + 4 : at + 4 + length].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventFileError(
            path, f"corrupt AEDAT 4 header (stream description is not UTF-8 at byte {exc.start})"
        ) from None


def _aedat4_open(path: Path):
    """``(decoder, stream id, header sensor size)`` of the lowest-id events stream."""
    try:
        import aedat
    except ImportError:
        raise EventFileError(
            path, "reading AEDAT 4 needs the aedat package: " + install_hint("aedat4")
        ) from None
    _aedat4_check_header(path)
    quiet = _DecoderStderr(path)
    try:
        decoder = quiet.call(aedat.Decoder, str(path))
        streams = quiet.call(decoder.id_to_stream)
    finally:
        quiet.close()
    ids = [sid for sid, s in streams.items() if s.get("type") == "events"]
    if not ids:
        raise EventFileError(path, "the AEDAT 4 file has no events stream")
    sid = min(ids)
    try:
        size = (int(streams[sid]["width"]), int(streams[sid]["height"]))
    except (KeyError, TypeError, ValueError):
        raise EventFileError(
            path, "the AEDAT 4 events stream has no numeric width and height"
        ) from None
    return decoder, sid, check_header_size(path, *size)


_END = object()


def _aedat4_blocks(path: Path, decoder, sid: int):
    quiet = _DecoderStderr(path)
    try:
        packets = quiet.call(iter, decoder)
        while (packet := quiet.call(next, packets, _END)) is not _END:
            if packet["stream_id"] == sid and "events" in packet:
                ev = packet["events"]
                yield ev["t"].astype(np.int64), ev["x"], ev["y"], ev["on"].astype(np.uint8)
    finally:
        quiet.close()


def _read_aedat4(
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """AEDAT 4 via the ``aedat`` package: the events stream with the lowest id (as tonic does);
    sensor size from that stream's width and height (each at most 8192). Decoded packet by
    packet."""
    decoder, sid, header_size = _aedat4_open(path)
    blocks = _aedat4_blocks(path, decoder, sid)
    return collect(path, blocks, sensor_size or header_size, on_unsorted, allow_empty)


def _aedat4_chunks(path: Path, *, sensor_size=None, chunk_events: int):
    path = Path(path)
    decoder, sid, header_size = _aedat4_open(path)
    blocks = _aedat4_blocks(path, decoder, sid)
    yield from rechunk(path, blocks, sensor_size or header_size, chunk_events)


register(
    FileFormat("aedat2", "AEDAT 2.0 (DVS128 addresses)", (".aedat",), _read_aedat2, _aedat2_chunks)
)
register(
    FileFormat(
        "aedat3.1", "AEDAT 3.1 polarity packets", (".aedat",), _read_aedat31, _aedat31_chunks
    ),
    sniff=_sniff_aedat,
)
register(
    FileFormat("aedat4", "AEDAT 4", (".aedat4",), _read_aedat4, _aedat4_chunks),
    sniff=_sniff_aedat4,
)
