"""Helpers every format module shares: reading a file with errors that name it, and the final
validation of decoded arrays. Lower than every format module; imports none of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy, validate_events

DVS128 = (128, 128)
"""Sensor size ``(width, height)`` of the DVS128 (AEDAT 2.0 / 3.1 without a size)."""

FOREIGN_MAGICS = (b"#!AER-DAT", b"Event Stream", b"PK\x03\x04", b"% evt", b"% Date", b"% Data file")
"""Headers of the formats with a magic; a headerless ``.bin`` must not start with one."""


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def head(path: Path, n: int = 4096) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def check_exists(path: Path) -> None:
    if not path.exists():
        raise EventFileError(path, "no such file")
    if not path.is_file():
        raise EventFileError(path, "not a regular file")


def finish(
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


# --- streaming helpers (chunked readers) -------------------------------------------------------

BLOCK_BYTES = 8 << 20
"""Bytes a streaming decoder reads from the file at a time (memory per block, not per file)."""

MAX_SENSOR_SIDE = 8192
"""Largest width or height a file header may claim (the largest real event sensors are
1280x720 / 1280x960; 8192 leaves room while refusing corrupt sizes before any allocation)."""

MAX_TIMESTAMP_US = 1 << 53
"""Timestamps at or beyond 2**53 us (~285 years) are refused as corrupt: int64 arithmetic on
them (differences, windows) would overflow near 9.2e18."""

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Decoded arrays ``(t, x, y, p)`` of one block (any integer dtypes)."""


def check_header_size(path: Path, width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` from a header, refused when 0 or above :data:`MAX_SENSOR_SIDE`."""
    if not (0 < width <= MAX_SENSOR_SIDE and 0 < height <= MAX_SENSOR_SIDE):
        raise EventFileError(
            path,
            f"the header claims a {width}x{height} sensor (each side must be in "
            f"1..{MAX_SENSOR_SIDE})",
        )
    return int(width), int(height)


def open_file(path: Path):
    try:
        return path.open("rb")
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def read_at(fh, path: Path, n: int) -> bytes:
    try:
        return fh.read(n)
    except OSError as exc:
        raise EventFileError(path, f"cannot read the file ({exc.strerror})") from exc


def _validated(path: Path, raw: Raw, sensor_size: tuple[int, int]) -> Events:
    t, x, y, p = raw
    if len(t) and int(t.max()) >= MAX_TIMESTAMP_US:
        raise EventFileError(
            path, f"timestamp {int(t.max())} us is beyond {MAX_TIMESTAMP_US} us (corrupt file)"
        )
    return validate_events(t, x, y, p, sensor_size, path=path, on_unsorted="keep", allow_empty=True)


def infer_size(path: Path, blocks) -> tuple[int, int] | None:
    """``(max x + 1, max y + 1)`` over decoded blocks (one streaming pass); None if no events."""
    mx = my = -1
    for t, x, y, _ in blocks:
        if len(t):
            mx, my = max(mx, int(x.max())), max(my, int(y.max()))
    return None if mx < 0 else (mx + 1, my + 1)


def collect(
    path: Path,
    blocks,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
    capacity: int | None = None,
) -> Events:
    """The whole file from decoded blocks: each block is validated and narrowed to the final
    dtypes (13 bytes an event). With ``capacity`` (an upper bound on the event count, from the
    file size) the blocks are written into preallocated arrays, so the peak stays below twice
    the returned arrays; otherwise they are joined at the end. ``sensor_size=None``:
    (max x + 1, max y + 1)."""
    bound = sensor_size or (MAX_SENSOR_SIDE, MAX_SENSOR_SIDE)
    if capacity is not None:
        out = (
            np.empty(capacity, np.int64),
            np.empty(capacity, np.int16),
            np.empty(capacity, np.int16),
            np.empty(capacity, np.uint8),
        )
        n = 0
        ordered, last = True, None
        for raw in blocks:
            ev = _validated(path, raw, bound)
            k = len(ev)
            if k and ordered:
                ordered = (last is None or int(ev.t[0]) >= last) and bool(
                    np.all(ev.t[1:] >= ev.t[:-1])
                )
                last = int(ev.t[-1])
            if n + k > capacity:
                raise EventFileError(path, "the file changed while it was read")
            for dst, src in zip(out, (ev.t, ev.x, ev.y, ev.p), strict=True):
                dst[n : n + k] = src
            n += k
        if n < capacity:
            out = tuple(a[:n].copy() if n < capacity * 0.9 else a[:n] for a in out)
        parts = [Events(*out, bound)] if n else []
    else:
        ordered = False
        parts = [e for e in (_validated(path, raw, bound) for raw in blocks) if len(e)]
    if not parts:
        if sensor_size is None:
            if allow_empty:
                raise EventFileError(
                    path, "the stream holds zero events and no sensor_size was given to size it"
                )
            raise EventFileError(path, "the stream holds zero events")
        return validate_events(
            *(np.zeros(0, np.int64),) * 4, sensor_size, path=path, allow_empty=allow_empty
        )
    events = parts[0] if len(parts) == 1 else Events.concatenate(parts)
    del parts
    if sensor_size is None:
        sensor_size = (int(events.x.max()) + 1, int(events.y.max()) + 1)
    return validate_events(
        events.t,
        events.x,
        events.y,
        events.p,
        sensor_size,
        path=path,
        # blocks checked in order above: skip the whole-array order check (8 bytes an event)
        on_unsorted="keep" if ordered else on_unsorted,
        allow_empty=allow_empty,
    )


def rechunk(path: Path, blocks, sensor_size: tuple[int, int], chunk_events: int):
    """Validated :class:`Events` of exactly ``chunk_events`` events (the last may be shorter)
    from decoded blocks of any lengths, in file order (not sorted)."""
    pending: list[Events] = []
    count = 0
    for raw in blocks:
        ev = _validated(path, raw, sensor_size)
        if not len(ev):
            continue
        pending.append(ev)
        count += len(ev)
        if count < chunk_events:
            continue
        joined = pending[0] if len(pending) == 1 else Events.concatenate(pending)
        stop = count - count % chunk_events
        for start in range(0, stop, chunk_events):
            yield joined.select(slice(start, start + chunk_events))
        rest = joined.select(slice(stop, None))
        pending, count = ([rest], len(rest)) if len(rest) else ([], 0)
    if count:
        yield pending[0] if len(pending) == 1 else Events.concatenate(pending)
