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


_WINDOW_READ_EVENTS = 1 << 16
"""Events per chunk the ``chunk_us`` path reads from a chunked reader to cut windows from."""


def _ordered(path: Path, chunks: Iterator[Events], on_unsorted: str) -> Iterator[Events]:
    """Pass ``chunks`` through, refusing (``"error"``) a timestamp that decreases within or
    across chunks; ``"keep"`` passes them as stored."""
    last = None
    seen = 0
    for chunk in chunks:
        if on_unsorted == "error" and len(chunk):
            bad = np.flatnonzero(np.diff(chunk.t) < 0)
            if last is not None and int(chunk.t[0]) < last:
                bad = np.array([-1])
            if len(bad):
                raise EventFileError(
                    path,
                    f"timestamps decrease at event {seen + int(bad[0]) + 1}: a chunked read "
                    "needs events in time order (read_events reads the whole file and sorts)",
                )
            last = int(chunk.t[-1])
        seen += len(chunk)
        yield chunk


def iter_events(
    path: str | Path,
    *,
    chunk_events: int | None = None,
    chunk_us: int | None = None,
    sensor_size: tuple[int, int] | None = None,
    on_unsorted: str = "error",
) -> Iterator[Events]:
    """Chunks of a recording: at most ``chunk_events`` events each, or ``chunk_us`` microseconds
    of events (``[t0 + i*W, t0 + (i+1)*W)``, empty windows skipped); exactly one of the two.
    The chunks concatenate to ``read_events(path, sensor_size=sensor_size)``.

    Formats with a chunked reader (:attr:`FileFormat.chunks`) stream the file with memory
    independent of its length, in both modes; the others are read whole and sliced.

    Unsorted input: a stream cannot be sorted without reading it whole, so with
    ``on_unsorted="error"`` (the default) a streamed file whose timestamps decrease raises
    :class:`EventFileError` at the first decrease (chunks before it have been yielded);
    ``"keep"`` (``chunk_events`` only) yields the events as stored. Formats read whole are
    sorted (with a warning) as :func:`read_events` does. A file with zero events yields
    nothing.
    """
    check_chunking(chunk_events, chunk_us)
    if on_unsorted not in ("error", "keep"):
        raise ValueError(f"on_unsorted must be 'error' or 'keep', not {on_unsorted!r}")
    if chunk_us is not None and on_unsorted == "keep":
        raise ValueError("chunk_us windows need time order: on_unsorted='keep' is refused")
    path = Path(path)
    fmt = _event_format(path)
    if fmt.chunks is not None:
        size = int(chunk_events) if chunk_events is not None else _WINDOW_READ_EVENTS
        stream = _ordered(
            path, fmt.chunks(path, sensor_size=sensor_size, chunk_events=size), on_unsorted
        )
        if chunk_events is not None:
            yield from stream
        else:
            yield from _windows(stream, int(chunk_us))
        return
    events = fmt.read(path, sensor_size, "keep" if on_unsorted == "keep" else "sort", True)
    if chunk_events is not None:
        for start in range(0, len(events), int(chunk_events)):
            yield events.select(slice(start, start + int(chunk_events)))
        return
    yield from _windows(iter([events]), int(chunk_us))


def _windows(chunks: Iterator[Events], width: int) -> Iterator[Events]:
    """Cut time-ordered chunks into windows ``[t0 + i*W, t0 + (i+1)*W)`` (empty ones skipped);
    a window is yielded once an event of a later window arrives (or the stream ends)."""
    t0 = None
    pending: list[Events] = []
    for chunk in chunks:
        if not len(chunk):
            continue
        if t0 is None:
            t0 = int(chunk.t[0])
        windows = (chunk.t - t0) // width
        cuts = np.flatnonzero(np.diff(windows)) + 1
        bounds = [0, *cuts.tolist(), len(chunk)]
        if pending and int(windows[0]) != int((pending[-1].t[-1] - t0) // width):
            yield _join(pending)
            pending = []
        for a, b in itertools.pairwise(bounds[:-1]):
            pending.append(chunk.select(slice(a, b)))
            yield _join(pending)
            pending = []
        pending.append(chunk.select(slice(bounds[-2], bounds[-1])))
    if pending:
        yield _join(pending)


def _join(parts: list[Events]) -> Events:
    return parts[0] if len(parts) == 1 else Events.concatenate(parts)
