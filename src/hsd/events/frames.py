"""Integration of an event stream into frames of event counts (numpy only).

This module is the one place that decides frame boundaries, channel order and resizing. The
conventions follow SpikingJelly's ``integrate_events_by_fixed_frames_number`` so that frame folders
preprocessed by SpikingJelly and frames made here agree bit for bit:

* ``split_by="count"`` (SpikingJelly's ``split_by='number'``): with ``E`` events and ``N`` frames
  every frame gets ``E // N`` consecutive events and the remainder ``E % N`` goes to the last one.
* ``split_by="time"``: ``dt = (t[-1] - t[0]) // N`` microseconds (integer division); frame ``i``
  holds the events with ``t0 + i*dt <= t < t0 + (i+1)*dt`` and the last frame also takes every
  later event. SpikingJelly crashes on an empty time bin; here it is an empty frame.
* ``split_by="time"`` with ``frame_us = d`` (fixed-duration frames): frame ``i`` holds the events
  with ``t0 + i*d <= t < t0 + (i+1)*d``, from the first event ``t0``, whatever the recording's
  length; events at or after ``t0 + N*d`` are left out and a recording shorter than ``N*d`` ends in
  empty frames. Frame ``i`` is complete ``(i+1)*d`` microseconds after the first event.
* Channel ``c`` of a frame counts the events of polarity ``p == c``: channel 0 = OFF, 1 = ON
  (SpikingJelly puts ``p != 0`` into channel 1).
* Frames are ``[N, 2, H, W]`` ``int32`` with ``H`` the sensor height (rows, ``y``) and ``W`` its
  width (columns, ``x``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hsd.events.core import Events
from hsd.runtime import admit

__all__ = [
    "FrameSpec",
    "frame_bounds",
    "frame_end_times_us",
    "integrate_frames",
    "resize_nearest",
]

SplitBy = Literal["count", "time"]
ResizeMode = Literal["events", "interpolate"]
_SPLITS = ("count", "time")
_ADMIT_ABOVE = 1 << 22  # frame values; smaller requests skip the memory check (it reads /proc)
_RESIZES = ("events", "interpolate")


def _check_split(n_frames: int, split_by: str, frame_us: int | None = None) -> None:
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    if split_by not in _SPLITS:
        raise ValueError(f"split_by must be one of {_SPLITS}, got {split_by!r}")
    if frame_us is not None:
        if isinstance(frame_us, bool) or not isinstance(frame_us, int | np.integer) or frame_us < 1:
            raise ValueError(f"frame_us must be None or a positive integer, got {frame_us!r}")
        if split_by != "time":
            raise ValueError(
                f"frame_us (fixed-duration frames) needs split_by='time', got {split_by!r}"
            )


def _time_step_us(events: Events, n_frames: int) -> int:
    """Width of a time bin in microseconds: ``(t[-1] - t[0]) // n_frames`` (0 if no events)."""
    return events.duration_us // n_frames


def frame_bounds(
    events: Events, n_frames: int, split_by: SplitBy = "count", frame_us: int | None = None
) -> np.ndarray:
    """Event index ranges ``[start, end)`` of each frame, ``int64 [n_frames, 2]``.

    The ranges are consecutive: ``bounds[0, 0] == 0``, ``bounds[i, 1] == bounds[i + 1, 0]``;
    they cover all events (``bounds[-1, 1] == len(events)``) except with ``frame_us``, where the
    last frame ends at the first event at or after ``t0 + n_frames * frame_us``.

    ``count``: frame ``i`` is ``[i * (E // N), (i + 1) * (E // N))`` and the last frame ends at
    ``E``. With fewer events than frames (``E < N``) every frame is empty except the last, which
    holds all ``E`` events (as in SpikingJelly).

    ``time``: frame ``i`` starts at the first event with ``t >= t0 + i * dt``, where
    ``dt = (t[-1] - t0) // N``; the last frame extends to the end. Empty bins give empty frames;
    a stream shorter than ``N`` microseconds (``dt == 0``) puts every event into the last frame.
    With ``frame_us = d`` (``time`` only), ``dt = d`` whatever the stream's length.
    """
    _check_split(n_frames, split_by, frame_us)
    n_events = len(events)
    end = n_events
    if split_by == "count":
        starts = np.arange(n_frames, dtype=np.int64) * (n_events // n_frames)
    elif n_events == 0:
        starts = np.zeros(n_frames, dtype=np.int64)
    else:
        dt = _time_step_us(events, n_frames) if frame_us is None else int(frame_us)
        edges = events.t[0] + dt * np.arange(n_frames + 1, dtype=np.int64)
        cuts = np.searchsorted(events.t, edges, side="left").astype(np.int64)
        starts = cuts[:-1]
        if frame_us is not None:
            end = int(cuts[-1])
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = end
    return np.stack([starts, ends], axis=1)


def frame_end_times_us(
    events: Events, n_frames: int, split_by: SplitBy = "count", frame_us: int | None = None
) -> np.ndarray:
    """Event time consumed when frame ``i`` is complete, ``int64 [n_frames]`` microseconds.

    Times are relative to the first event. ``count``: the timestamp of the last event in frames
    ``0..i`` minus ``t0`` (0 while no event has been consumed). ``time``: the right edge of bin
    ``i``, ``(i + 1) * dt``, clipped to the stream's duration; the last frame ends at the duration.
    Non-decreasing; the last entry equals ``events.duration_us``. With ``frame_us = d``:
    ``(i + 1) * d``, the end of the frame's time window, not clipped (a decision after frame ``i``
    waits for its window to pass, even when the recording has ended).
    """
    _check_split(n_frames, split_by, frame_us)
    if frame_us is not None:
        return int(frame_us) * np.arange(1, n_frames + 1, dtype=np.int64)
    if len(events) == 0:
        return np.zeros(n_frames, dtype=np.int64)
    if split_by == "count":
        ends = frame_bounds(events, n_frames, "count")[:, 1]
        last = events.t[np.maximum(ends - 1, 0)] - events.t[0]
        return np.where(ends > 0, last, 0).astype(np.int64)
    dt = _time_step_us(events, n_frames)
    times = dt * np.arange(1, n_frames + 1, dtype=np.int64)
    times[-1] = events.duration_us
    return np.minimum(times, events.duration_us)


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise ValueError(f"size must be (height, width) with two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output index for nearest resizing, as PyTorch computes it.

    ``floor(i * (n_in / n_out))`` with the scale and product in float32, clipped to ``n_in - 1``
    (this matches ``F.interpolate(mode='nearest')`` exactly, where exact integer arithmetic would
    differ for some sizes).
    """
    scale = np.float32(n_in) / np.float32(n_out)
    index = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, n_in - 1)


def resize_nearest(
    frames: np.ndarray, size: tuple[int, int], mode: ResizeMode = "interpolate"
) -> np.ndarray:
    """Resize count frames ``[..., H, W]`` to ``[..., H', W']`` with ``size = (H', W')``.

    ``mode="interpolate"`` reproduces ``torch.nn.functional.interpolate(mode='nearest')``: output
    pixel ``(i, j)`` copies input pixel ``(floor(i * H / H'), floor(j * W / W'))``. It samples
    pixels, so the total count is NOT preserved (downsampling drops pixels, upsampling repeats
    them).

    ``mode="events"`` moves every input pixel's count to ``(i * H' // H, j * W' // W)`` and sums
    them, which is what integrating the events on the target grid gives: totals are preserved.
    The result has the input's dtype.
    """
    size = _check_size(size)
    if size is None:
        raise ValueError("resize_nearest needs a size")
    if mode not in _RESIZES:
        raise ValueError(f"resize mode must be one of {_RESIZES}, got {mode!r}")
    frames = np.asarray(frames)
    if frames.ndim < 2:
        raise ValueError(f"frames must have at least 2 dimensions [..., H, W], got {frames.shape}")
    height, width = frames.shape[-2:]
    out_h, out_w = size
    if mode == "interpolate":
        rows = _nearest_index(height, out_h)
        cols = _nearest_index(width, out_w)
        return frames[..., rows[:, None], cols[None, :]]
    lead = frames.shape[:-2]
    flat = frames.reshape(-1, height * width)
    target = (np.arange(height) * out_h // height)[:, None] * out_w + (
        np.arange(width) * out_w // width
    )[None, :]
    out = np.zeros((flat.shape[0], out_h * out_w), dtype=frames.dtype)
    np.add.at(out, (slice(None), target.ravel()), flat)
    return out.reshape(*lead, out_h, out_w)


def integrate_frames(
    events: Events,
    n_frames: int,
    split_by: SplitBy = "count",
    *,
    size: tuple[int, int] | None = None,
    resize: ResizeMode = "events",
    clip: int | None = None,
    frame_us: int | None = None,
) -> np.ndarray:
    """Count events per frame, polarity and pixel: ``int32 [n_frames, 2, H, W]``.

    Frame boundaries come from :func:`frame_bounds`; channel = polarity (0 = OFF, 1 = ON);
    ``H, W`` = sensor height and width, or ``size = (H', W')`` when given:

    * ``resize="events"`` (default) maps event coordinates onto the target grid
      (``x' = x * W' // W``, ``y' = y * H' // H``) before counting, so
      ``frames.sum() == len(events)`` still holds;
    * ``resize="interpolate"`` counts at sensor resolution and then samples pixels like the
      HSD authors' ``F.interpolate(mode='nearest')`` (see :func:`resize_nearest`); totals are
      not preserved.

    ``clip`` caps every per-pixel count at ``clip`` (``None`` = no cap). Without ``clip`` and
    with ``resize="events"``, ``frames.sum() == len(events)``, except with ``frame_us``
    (fixed-duration frames, ``split_by="time"``), which leaves out the events after the last
    frame's window.
    """
    bounds = frame_bounds(events, n_frames, split_by, frame_us)
    size = _check_size(size)
    if resize not in _RESIZES:
        raise ValueError(f"resize must be one of {_RESIZES}, got {resize!r}")
    _check_clip(clip)
    width, height = events.sensor_size
    used = int(bounds[-1, 1])  # fewer than len(events) only with frame_us
    x, y, p = events.x[:used], events.y[:used], events.p[:used]
    if size is not None and resize == "events":
        out_h, out_w = size
        if out_w != width:
            x = x.astype(np.intp) * out_w // width
        if out_h != height:
            y = y.astype(np.intp) * out_h // height
        height, width = out_h, out_w
    plane = height * width
    values = n_frames * 2 * plane
    if values > _ADMIT_ABOVE:  # np.bincount's int64 counts and their int32 copy
        admit(
            12 * values,
            f"frames of {n_frames} x 2 x {height} x {width} (sensor {events.sensor_size[0]} x "
            f"{events.sensor_size[1]})",
            hint="ask for fewer frames or a smaller size",
        )
    # flat index ((frame * 2 + p) * H + y) * W + x, built in place
    index = p.astype(np.intp)
    index *= height
    index += y
    index *= width
    index += x
    for i, (start, end) in enumerate(bounds.tolist()):
        if i:
            index[start:end] += i * 2 * plane
    counts = np.bincount(index, minlength=n_frames * 2 * plane)
    frames = counts.astype(np.int32).reshape(n_frames, 2, height, width)
    if size is not None and resize == "interpolate":
        frames = resize_nearest(frames, size, "interpolate")
    if clip is not None:
        np.minimum(frames, clip, out=frames)
    return frames


def _check_clip(clip: int | None) -> None:
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, int | np.integer) or clip < 1
    ):
        raise ValueError(f"clip must be None or a positive integer count, got {clip!r}")


@dataclass(frozen=True)
class FrameSpec:
    """How a sample's events become frames; see :func:`integrate_frames` for the meaning.

    ``size`` is ``(height, width)`` of the output frames (``None`` = sensor size). ``frame_us``
    (with ``split_by="time"`` only): every frame lasts that many microseconds from the first
    event (``None`` = the recording divided into ``n_frames`` equal parts).
    """

    n_frames: int = 10
    split_by: SplitBy = "count"
    size: tuple[int, int] | None = None
    resize: ResizeMode = "events"
    clip: int | None = None
    frame_us: int | None = None

    def __post_init__(self) -> None:
        _check_split(self.n_frames, self.split_by, self.frame_us)
        object.__setattr__(self, "size", _check_size(self.size))
        if self.resize not in _RESIZES:
            raise ValueError(f"resize must be one of {_RESIZES}, got {self.resize!r}")
        _check_clip(self.clip)

    def apply(self, events: Events) -> np.ndarray:
        """Frames ``int32 [n_frames, 2, H, W]`` of ``events``."""
        return integrate_frames(
            events,
            self.n_frames,
            self.split_by,
            size=self.size,
            resize=self.resize,
            clip=self.clip,
            frame_us=self.frame_us,
        )

    def end_times_us(self, events: Events) -> np.ndarray:
        """Event time (microseconds since the first event) at which each frame is complete."""
        return frame_end_times_us(events, self.n_frames, self.split_by, self.frame_us)

    def key(self) -> str:
        """Stable short string naming every parameter, e.g. ``n10-count-native-events-clipnone``
        (``n30-time10000us-...`` with fixed-duration frames)."""
        size = "native" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        clip = "none" if self.clip is None else str(self.clip)
        split = self.split_by if self.frame_us is None else f"time{self.frame_us}us"
        return f"n{self.n_frames}-{split}-{size}-{self.resize}-clip{clip}"
