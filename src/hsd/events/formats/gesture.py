"""DVS128 Gesture label files (``*_labels.csv``) and the cutting of a recording into clips."""

from __future__ import annotations

from pathlib import Path

from hsd.errors import EventFileError
from hsd.events.core import Events
from hsd.events.formats._base import check_exists


def read_gesture_labels(csv_path: str | Path) -> list[tuple[int, int, int]]:
    """Read a DVS128 Gesture ``*_labels.csv`` (``class,startTime_usec,endTime_usec``, classes
    1..11) as ``[(class 0..10, start_us, end_us), ...]`` in file order."""
    csv_path = Path(csv_path)
    check_exists(csv_path)
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
