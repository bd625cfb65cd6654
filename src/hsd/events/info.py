"""``hsd events info``: what an event (or frame) file holds, as a JSON-ready dict or text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hsd.events.formats import FORMAT_NAMES, detect_format, read_events, read_frames_npz

__all__ = ["describe_file", "format_description"]


def describe_file(path: str | Path) -> dict[str, Any]:
    """Summary of one file (plain JSON types only).

    Event files: ``path, format, events, sensor_size [w, h], t_first_us, t_last_us,
    duration_ms, sorted`` (timestamps non-decreasing as stored) and
    ``events_per_polarity {"off": n, "on": n}``. SpikingJelly ``.npz`` frames: ``path, format,
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
    events = read_events(path, on_unsorted="keep")
    t_first, t_last = int(events.t[0]), int(events.t[-1])
    on = int(np.count_nonzero(events.p))
    return {
        "path": str(path),
        "format": fmt,
        "events": len(events),
        "sensor_size": [events.width, events.height],
        "t_first_us": t_first,
        "t_last_us": t_last,
        "duration_ms": (t_last - t_first) / 1000.0,
        "sorted": bool(np.all(np.diff(events.t) >= 0)),
        "events_per_polarity": {"off": len(events) - on, "on": on},
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
    lines += [
        f"events:      {d['events']} ({pol['on']} on, {pol['off']} off)",
        f"sensor:      {d['sensor_size'][0]} x {d['sensor_size'][1]} (width x height)",
        f"time:        {d['t_first_us']} .. {d['t_last_us']} us ({d['duration_ms']:.3f} ms)",
        f"sorted:      {'yes' if d['sorted'] else 'no (timestamps decrease as stored)'}",
    ]
    return "\n".join(lines)
