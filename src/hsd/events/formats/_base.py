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
