"""Event streams: the representation, file readers, frame integration and the DVS emulator.

Pure numpy: nothing under ``hsd.events`` imports torch.
"""

from hsd.events.core import Events, UnsortedEventsWarning, validate_events
from hsd.events.emulator import DVSEmulator
from hsd.events.formats import (
    SUPPORTED_EXTENSIONS,
    detect_format,
    iter_events,
    read_events,
    read_frames_npz,
)
from hsd.events.frames import FrameSpec, frame_bounds, frame_end_times_us, integrate_frames

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DVSEmulator",
    "Events",
    "FrameSpec",
    "UnsortedEventsWarning",
    "detect_format",
    "frame_bounds",
    "frame_end_times_us",
    "integrate_frames",
    "iter_events",
    "read_events",
    "read_frames_npz",
    "validate_events",
]
