"""``hsd events info``: what an event (or frame) file holds, as a JSON-ready dict or text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hsd.errors import EventFileError
from hsd.events.formats import (
    FORMAT_NAMES,
    detect_format,
    iter_events,
    read_events,
    read_frames_npz,
)

_INFO_CHUNK = 1 << 20
"""Events per chunk ``describe_file`` streams (memory independent of the file's length)."""

__all__ = ["describe_file", "format_description"]


def describe_file(path: str | Path) -> dict[str, Any]:
    """Summary of one file (plain JSON types only).

    Event files: ``path, format, events, sensor_size [w, h], t_first_us, t_last_us,
    duration_ms, sorted`` (timestamps non-decreasing as stored) and
    ``events_per_polarity {"off": n, "on": n}``, computed in one streaming pass
    (:func:`iter_events`, memory independent of the file's length). A valid recording with no
    events reports ``events 0`` and ``null`` times (and ``sensor_size`` when the format gives
    one). SpikingJelly ``.npz`` frames: ``path, format,
    shape [N, P, H, W], dtype, total`` (the sum of all frame values).
    Raises :class:`hsd.errors.EventFileError` for a bad file.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "frames-npz":
        frames = read_frames_npz(path)
        total = frames.sum(dtype=np.float64 if frames.dtype.kind == "f" else np.int64)
        return {
            "path": str(path),
            "format": fmt,
            "shape": [int(n) for n in frames.shape],
            "dtype": str(frames.dtype),
            "total": total.item(),
        }
    n = on = 0
    t_first = t_last = None
    ordered = True
    size: list[int] | None = None
    for chunk in iter_events(path, chunk_events=_INFO_CHUNK, on_unsorted="keep"):
        if not len(chunk):
            continue
        if t_first is None:
            t_first, size = int(chunk.t[0]), [chunk.width, chunk.height]
        elif int(chunk.t[0]) < t_last:
            ordered = False
        ordered = ordered and bool(np.all(np.diff(chunk.t) >= 0))
        t_last = int(chunk.t[-1])
        n += len(chunk)
        on += int(np.count_nonzero(chunk.p))
    if n == 0:
        try:
            empty = read_events(path, allow_empty=True, on_unsorted="keep")
            size = [empty.width, empty.height]
        except EventFileError:
            size = None  # nothing in the file gives a size (e.g. an empty headerless .bin)
    return {
        "path": str(path),
        "format": fmt,
        "events": n,
        "sensor_size": size,
        "t_first_us": t_first,
        "t_last_us": t_last,
        "duration_ms": None if n == 0 else (t_last - t_first) / 1000.0,
        "sorted": ordered,
        "events_per_polarity": {"off": n - on, "on": on},
    }


def format_description(d: dict[str, Any]) -> str:
    """Human-readable lines for a :func:`describe_file` result."""
    lines = [f"file:        {d['path']}", f"format:      {FORMAT_NAMES[d['format']]}"]
    if d["format"] == "frames-npz":
        n, p, h, w = d["shape"]
        lines += [
            f"frames:      {n} x {p} polarities x {h} x {w} (N, P, H, W), {d['dtype']}",
            f"total:       {d['total']}",
        ]
        return "\n".join(lines)
    pol = d["events_per_polarity"]
    if d["events"] == 0:
        size = d["sensor_size"]
        lines += [
            "events:      0 (the recording holds no events)",
            f"sensor:      {size[0]} x {size[1]} (width x height)"
            if size
            else "sensor:      unknown (no header size and no events)",
        ]
        return "\n".join(lines)
    lines += [
        f"events:      {d['events']} ({pol['on']} on, {pol['off']} off)",
        f"sensor:      {d['sensor_size'][0]} x {d['sensor_size'][1]} (width x height)",
        f"time:        {d['t_first_us']} .. {d['t_last_us']} us ({d['duration_ms']:.3f} ms)",
        f"sorted:      {'yes' if d['sorted'] else 'no (timestamps decrease as stored)'}",
    ]
    return "\n".join(lines)
