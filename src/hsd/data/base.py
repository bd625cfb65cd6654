"""What every dataset is: a list of :class:`Sample` records plus a way to load one sample.

Datasets read a local folder in the layout their users already have and never download. Indexing
(building ``samples``) only lists folders and reads small text files; recordings are decoded by
:meth:`EventDataset.load_events` when a sample is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from hsd.errors import DatasetError
from hsd.events.core import Events

__all__ = ["EventDataset", "Sample", "SplitName"]

SplitName = Literal["train", "test"]


@dataclass(frozen=True)
class Sample:
    """One labelled sample.

    ``key``: unique and stable across machines (the path relative to the dataset root with ``/``
    separators, plus ``#c<clip>`` for a clip of a longer recording); ``label``: class index into
    ``classes``; ``split``: the official split or None; ``path``: the file holding it;
    ``t_range_us``: ``[start, end)`` in the recording's microseconds for clips, else None.
    """

    key: str
    label: int
    split: SplitName | None
    path: Path
    t_range_us: tuple[int, int] | None = None


class EventDataset:
    """Base class of the datasets in :mod:`hsd.data.registry`.

    Subclasses set the class attributes and fill ``classes``, ``sensor_size`` (width, height)
    and ``samples`` (sorted by key) in ``__init__``. ``kind`` is ``"events"`` (samples are event
    streams: :meth:`load_events`) or ``"frames"`` (samples are stored frames: :meth:`load_frames`).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[Literal["events", "frames"]] = "events"
    emulated: ClassVar[bool] = False
    #: False for datasets that need no folder (digits-dvs); others get theirs from the environment
    #: when no root is given (:func:`hsd.data.registry.default_root`)
    needs_root: ClassVar[bool] = True
    published_at: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(
        self,
        root: Path,
        classes: list[str],
        sensor_size: tuple[int, int],
        samples: list[Sample],
        has_official_split: bool,
    ) -> None:
        if not samples:
            raise self.layout_error(root, "no samples found")
        self.root = root
        self.classes = list(classes)
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self.samples = sorted(samples, key=lambda s: s.key)
        self.has_official_split = has_official_split
        keys = [s.key for s in self.samples]
        if len(set(keys)) != len(keys):
            duplicate = next(k for k, n in Counter(keys).items() if n > 1)
            raise DatasetError(f"{self.name}: sample key {duplicate!r} occurs twice under {root}")

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)}, "
            f"classes={len(self.classes)}, sensor_size={self.sensor_size})"
        )

    @property
    def labels(self) -> np.ndarray:
        """Class index of every sample, ``int64 [S]``."""
        return np.array([s.label for s in self.samples], dtype=np.int64)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.samples]

    def prepare(self, progress: bool = True) -> None:
        """Make the samples loadable (datasets that generate their data do it here, with a
        progress bar when ``progress``); a no-op for datasets read from files."""

    def load_events(self, index: int) -> Events:
        """The event stream of sample ``index``."""
        raise DatasetError(f"{self.name} stores frames, not events; use load_frames")

    def load_frames(self, index: int) -> np.ndarray:
        """The stored frames ``[N, P, H, W]`` of sample ``index`` (``kind == "frames"`` only)."""
        raise DatasetError(f"{self.name} stores events; integrate them with a FrameSpec")

    def fingerprint(self) -> str:
        """sha256 (hex) of the name, sensor size, classes and every sample's key, label, split,
        clip range and file size: it changes when the dataset's content visibly changes."""
        sizes: dict[Path, int] = {}
        rows = []
        for s in self.samples:
            if s.path not in sizes:
                try:
                    sizes[s.path] = s.path.stat().st_size
                except OSError as exc:
                    raise DatasetError(
                        f"{self.name}: {s.path}: cannot read ({exc.strerror or exc})"
                    ) from None
            rows.append([s.key, s.label, s.split, sizes[s.path], s.t_range_us])
        rows.sort(key=lambda row: row[0])
        return _sha256_json([self.name, list(self.sensor_size), self.classes, rows])

    @classmethod
    def layout_error(cls, root: Path | str | None, problem: str) -> DatasetError:
        """A :class:`DatasetError` naming the root and the fault on its first line, then the
        expected layout and where the dataset is published."""
        layout = cls.layout.strip("\n")
        return DatasetError(
            f"{cls.name}: {root}: {problem}; hsd never downloads, get the dataset from "
            f"{cls.published_at}\nexpected layout:\n{layout}"
        )


def _sha256_json(obj: object) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
