"""The one registry of event-file formats: :func:`detect_format`, :func:`read_events` and
:func:`iter_events` consult it, and every format module registers itself here on import.

A format is a :class:`FileFormat` (id, human-readable name, extensions, whole-file reader and,
optionally, a chunked reader). Each extension has one *sniffer*: given the path and the first
4 KiB it returns the id of the format the content shows, or raises
:class:`~hsd.errors.EventFileError` saying why the file is not what its extension claims.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import check_exists, head

Reader = Callable[[Path, "tuple[int, int] | None", UnsortedPolicy, bool], Events]
"""``reader(path, sensor_size, on_unsorted, allow_empty) -> Events`` (the whole file)."""

ChunkReader = Callable[..., Iterator[Events]]
"""``chunks(path, sensor_size=..., chunk_events=K) -> Iterator[Events]``: consecutive chunks of
at most K events each (memory independent of the file's length), concatenating to the reader's
output for the same file."""

Sniffer = Callable[[Path, bytes], str]


@dataclass(frozen=True)
class FileFormat:
    """One event-file format. ``read=None``: the file holds no events (frames)."""

    id: str
    name: str
    extensions: tuple[str, ...]
    read: Reader | None
    chunks: ChunkReader | None = None


FORMATS: dict[str, FileFormat] = {}
"""Format id -> :class:`FileFormat`, in registration order."""

SUPPORTED_EXTENSIONS: dict[str, tuple[str, ...]] = {}
"""File extension (lower case, with the dot) -> the formats :func:`detect_format` may return."""

FORMAT_NAMES: dict[str, str] = {}
"""Format id -> human-readable name."""

_SNIFFERS: dict[str, Sniffer] = {}


def register(fmt: FileFormat, *, sniff: Sniffer | None = None) -> FileFormat:
    """Add ``fmt`` (replacing a format of the same id); ``sniff`` becomes the sniffer of each of
    its extensions. Formats sharing an extension register the shared sniffer once."""
    FORMATS[fmt.id] = fmt
    FORMAT_NAMES[fmt.id] = fmt.name
    for ext in fmt.extensions:
        ids = SUPPORTED_EXTENSIONS.get(ext, ())
        if fmt.id not in ids:
            SUPPORTED_EXTENSIONS[ext] = (*ids, fmt.id)
        if sniff is not None:
            _SNIFFERS[ext] = sniff
    return fmt


def detect_format(path: str | Path) -> str:
    """Format id of ``path`` (a key of :data:`FORMAT_NAMES`) from its extension and content.

    The extension (case-insensitive) picks the candidates (:data:`SUPPORTED_EXTENSIONS`); the
    magic bytes or header confirm one. Raises :class:`EventFileError` for a missing file, an
    unknown extension or content that does not match the extension.
    """
    path = Path(path)
    check_exists(path)
    ext = path.suffix.lower()
    sniff = _SNIFFERS.get(ext)
    if sniff is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        raise EventFileError(
            path, f"unknown extension {ext or '(none)'!r}; supported extensions: {supported}"
        )
    return sniff(path, head(path))


def _event_format(path: Path) -> FileFormat:
    fmt = FORMATS[detect_format(path)]
    if fmt.read is None:
        raise EventFileError(path, "holds frames, not events; read it with read_frames_npz")
    return fmt


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
    fmt = _event_format(path)
    return fmt.read(path, sensor_size, on_unsorted, allow_empty)


def check_chunking(chunk_events: int | None, chunk_us: int | None) -> None:
    """Exactly one of ``chunk_events`` / ``chunk_us``, a positive integer."""
    if (chunk_events is None) == (chunk_us is None):
        raise ValueError("give exactly one of chunk_events or chunk_us")
    value = chunk_events if chunk_us is None else chunk_us
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"chunk size must be a positive integer, got {value!r}")


def iter_events(
    path: str | Path,
    *,
    chunk_events: int | None = None,
    chunk_us: int | None = None,
    sensor_size: tuple[int, int] | None = None,
) -> Iterator[Events]:
    """Chunks of a recording: at most ``chunk_events`` events each, or ``chunk_us`` microseconds
    of events (``[t0 + i*W, t0 + (i+1)*W)``, empty windows skipped); exactly one of the two.
    The chunks concatenate to ``read_events(path, sensor_size=sensor_size)``.

    Formats with a chunked reader (:attr:`FileFormat.chunks`) stream the file with memory
    independent of its length; the others are read whole and sliced.
    """
    check_chunking(chunk_events, chunk_us)
    path = Path(path)
    fmt = _event_format(path)
    if chunk_events is not None:
        if fmt.chunks is not None:
            yield from fmt.chunks(path, sensor_size=sensor_size, chunk_events=int(chunk_events))
            return
        events = fmt.read(path, sensor_size, "sort", False)
        for start in range(0, len(events), int(chunk_events)):
            yield events.select(slice(start, start + int(chunk_events)))
        return
    events = fmt.read(path, sensor_size, "sort", False)
    if len(events) == 0:
        return
    windows = (events.t - events.t[0]) // int(chunk_us)
    cuts = np.flatnonzero(np.diff(windows)) + 1
    bounds = [0, *cuts.tolist(), len(events)]
    for a, b in itertools.pairwise(bounds):
        yield events.select(slice(a, b))
