"""Event file readers and writers (numpy only; optional packages are imported lazily).

One module per format family, readers and writers side by side; each registers its formats in
:mod:`hsd.events.formats.registry`, which :func:`detect_format`, :func:`read_events` and
:func:`iter_events` consult.

Every reader returns :class:`hsd.events.core.Events` (``t`` int64 microseconds, ``x``/``y``
int16, ``p`` uint8 0/1, ``sensor_size=(width, height)``) built by
:func:`hsd.events.core.validate_events`, and every fault raises
:class:`hsd.errors.EventFileError` naming the file and the fault.

Supported files (see :data:`SUPPORTED_EXTENSIONS`):

* ``.bin`` / ``.bs2``: ATIS 5-byte events (N-MNIST, N-Caltech101, SLAYER ``.bs2``):
  :mod:`~hsd.events.formats.atis`.
* ``.aedat``: AEDAT 2.0 (DVS128 addresses, CIFAR10-DVS) or AEDAT 3.1 polarity packets
  (DVS128 Gesture), told apart by the first header line; ``.aedat4``: AEDAT 4 through the
  optional ``aedat`` package: :mod:`~hsd.events.formats.aedat`.
* ``.raw`` (Prophesee EVT 2.0 / EVT 3.0) and ``.dat`` (Prophesee DAT):
  :mod:`~hsd.events.formats.prophesee`.
* ``.es``: Event Stream 2.x files of DVS type (y flipped as faery does):
  :mod:`~hsd.events.formats.eventstream`.
* ``.npz``: SpikingJelly frame files, read with :func:`read_frames_npz` (frames, not events).
"""

from __future__ import annotations

# Importing a format module registers its formats.
from hsd.events.formats import aedat, atis, eventstream, npz, prophesee  # noqa: F401
from hsd.events.formats.aedat import write_aedat2, write_aedat31
from hsd.events.formats.atis import write_atis_bin
from hsd.events.formats.eventstream import write_event_stream
from hsd.events.formats.gesture import read_gesture_labels, split_gesture_recording
from hsd.events.formats.npz import read_frames_npz
from hsd.events.formats.prophesee import write_dat, write_evt2, write_evt3
from hsd.events.formats.registry import (
    FORMAT_NAMES,
    FORMATS,
    SUPPORTED_EXTENSIONS,
    FileFormat,
    detect_format,
    iter_events,
    read_events,
    register,
)

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "SUPPORTED_EXTENSIONS",
    "FileFormat",
    "detect_format",
    "iter_events",
    "read_events",
    "read_frames_npz",
    "read_gesture_labels",
    "register",
    "split_gesture_recording",
    "write_aedat2",
    "write_aedat31",
    "write_atis_bin",
    "write_dat",
    "write_event_stream",
    "write_evt2",
    "write_evt3",
]
