"""The one event representation of hsd (numpy only, no torch).

An event stream is four equal-length arrays plus the sensor size:

* ``t``: timestamps, ``int64`` microseconds (absolute as recorded; not shifted to zero),
* ``x``: column, ``int16`` in ``[0, width)``,
* ``y``: row, ``int16`` in ``[0, height)``,
* ``p``: polarity, ``uint8``, 0 = OFF (darker), 1 = ON (brighter),
* ``sensor_size``: ``(width, height)`` in pixels.

Every reader returns :class:`Events` through :func:`validate_events`, the one place that decides
what a valid stream is: equal lengths, finite integer timestamps, coordinates inside the sensor,
polarity 0/1, at least one event (unless explicitly allowed), and timestamps in non-decreasing
order. Out-of-order timestamps (seen in real recordings after USB packet reordering) are by
default **sorted stably** with an :class:`UnsortedEventsWarning` naming the file and the number of
inversions; ``on_unsorted="error"`` refuses them instead, and ``on_unsorted="keep"`` returns them
in the stored order (for inspection tools that report whether a file is sorted).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hsd.errors import EventFileError

__all__ = ["Events", "UnsortedEventsWarning", "validate_events"]

UnsortedPolicy = Literal["sort", "error", "keep"]


class UnsortedEventsWarning(UserWarning):
    """Timestamps were not in non-decreasing order and the events were sorted stably."""


@dataclass(frozen=True, eq=False)
class Events:
    """A stream of DVS events; see the module docstring for units and dtypes."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    sensor_size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def width(self) -> int:
        return int(self.sensor_size[0])

    @property
    def height(self) -> int:
        return int(self.sensor_size[1])

    @property
    def duration_us(self) -> int:
        """Time from the first to the last event, in microseconds (0 for fewer than 2 events)."""
        return int(self.t[-1] - self.t[0]) if len(self) > 1 else 0

    def select(self, index: np.ndarray | slice) -> Events:
        """Events at ``index`` (a slice, an integer index array or a boolean mask)."""
        return Events(self.t[index], self.x[index], self.y[index], self.p[index], self.sensor_size)

    def with_sensor_size(self, sensor_size: tuple[int, int]) -> Events:
        return Events(self.t, self.x, self.y, self.p, (int(sensor_size[0]), int(sensor_size[1])))

    @staticmethod
    def empty(sensor_size: tuple[int, int]) -> Events:
        return Events(
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, np.int16),
            np.zeros(0, np.uint8),
            (int(sensor_size[0]), int(sensor_size[1])),
        )

    @staticmethod
    def concatenate(parts: list[Events]) -> Events:
        """Join streams of the same sensor in the given order (no re-sorting)."""
        if not parts:
            raise ValueError("Events.concatenate needs at least one part")
        size = parts[0].sensor_size
        if any(e.sensor_size != size for e in parts):
            raise ValueError("Events.concatenate: parts have different sensor sizes")
        return Events(
            np.concatenate([e.t for e in parts]),
            np.concatenate([e.x for e in parts]),
            np.concatenate([e.y for e in parts]),
            np.concatenate([e.p for e in parts]),
            size,
        )


def validate_events(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    sensor_size: tuple[int, int],
    *,
    path: str | Path | None = None,
    on_unsorted: UnsortedPolicy = "sort",
    allow_empty: bool = False,
) -> Events:
    """Check raw decoded arrays and return them as a canonical :class:`Events`.

    Raises :class:`~hsd.errors.EventFileError` naming ``path`` for: unequal lengths, no events
    (unless ``allow_empty``), non-finite or non-integer timestamps, negative or out-of-sensor
    coordinates, polarity other than 0/1, and (with ``on_unsorted="error"``) decreasing
    timestamps. With ``on_unsorted="sort"`` decreasing timestamps are sorted stably and an
    :class:`UnsortedEventsWarning` is issued; ``on_unsorted="keep"`` leaves them as stored.
    """
    if on_unsorted not in ("sort", "error", "keep"):
        raise ValueError(f"on_unsorted must be 'sort', 'error' or 'keep', not {on_unsorted!r}")
    width, height = int(sensor_size[0]), int(sensor_size[1])
    if width <= 0 or height <= 0:
        raise EventFileError(path, f"invalid sensor size {width}x{height}")
    t, x, y, p = (np.asarray(a) for a in (t, x, y, p))
    lengths = {a.shape[0] if a.ndim == 1 else -1 for a in (t, x, y, p)}
    if len(lengths) != 1 or -1 in lengths:
        raise EventFileError(path, "t, x, y and p must be 1-D arrays of equal length")
    n = int(t.shape[0])
    if n == 0:
        if allow_empty:
            return Events.empty((width, height))
        raise EventFileError(path, "the stream holds zero events")

    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)):
            bad = int(np.count_nonzero(~np.isfinite(t)))
            raise EventFileError(path, f"{bad} timestamps are NaN or infinite")
        if np.any(t != np.round(t)):
            raise EventFileError(path, "timestamps must be whole microseconds")
    elif t.dtype.kind not in "iu":
        raise EventFileError(path, f"timestamps have non-numeric dtype {t.dtype}")
    for name, coord in (("x", x), ("y", y), ("p", p)):
        if coord.dtype.kind == "f" and not np.all(np.isfinite(coord)):
            raise EventFileError(path, f"{name} holds NaN or infinite values")
        if coord.dtype.kind not in "iuf":
            raise EventFileError(path, f"{name} has non-numeric dtype {coord.dtype}")

    x_min, x_max = int(x.min()), int(x.max())
    y_min, y_max = int(y.min()), int(y.max())
    if x_min < 0 or x_max >= width or y_min < 0 or y_max >= height:
        outside = int(np.count_nonzero((x < 0) | (x >= width) | (y < 0) | (y >= height)))
        raise EventFileError(
            path,
            f"{outside} events lie outside the {width}x{height} sensor "
            f"(x in [{x_min}, {x_max}], y in [{y_min}, {y_max}])",
        )
    if not np.all((p == 0) | (p == 1)):
        values = np.unique(p)[:5].tolist()
        raise EventFileError(path, f"polarity must be 0 or 1, found values {values}")

    t = t.astype(np.int64, copy=False)
    x = x.astype(np.int16, copy=False)
    y = y.astype(np.int16, copy=False)
    p = p.astype(np.uint8, copy=False)

    inversions = 0 if on_unsorted == "keep" else int(np.count_nonzero(np.diff(t) < 0))
    if inversions:
        if on_unsorted == "error":
            raise EventFileError(
                path, f"timestamps decrease {inversions} times (events are not in time order)"
            )
        where = "<in-memory events>" if path is None else str(path)
        warnings.warn(
            f"{where}: timestamps decrease {inversions} times; events were sorted stably by time",
            UnsortedEventsWarning,
            stacklevel=2,
        )
        order = np.argsort(t, kind="stable")
        t, x, y, p = t[order], x[order], y[order], p[order]
    return Events(t, x, y, p, (width, height))
