"""Your own recordings: the ``folder`` dataset, one folder of event files per class.

Layout (either form)::

    <root>/                         <root>/
    +-- <class A>/ *.<ext>          +-- train/ <class A>/ ... <class B>/ ...
    +-- <class B>/ *.<ext>          +-- test/  <class A>/ ... <class B>/ ...

``<ext>`` is any event-file format hsd reads (``hsd events info`` names a file's format; AEDAT
2.0/3.1/4, Prophesee EVT 2/3 and DAT, ATIS ``.bin``, eventstream, ``.npz`` events, ...); files of
other extensions and hidden files are ignored. With ``train/`` and ``test/`` those are the
official split (both must hold the same class folders); without them the split is the seeded
per-class split of the datasets without an official one (``data.test_fraction``, ``data.seed``).

Decisions: classes are the sub-folder names, sorted as text, except when every name is an integer
(``0``, ``1``, ..., ``10``): then sorted by number, so the label of folder ``10`` is 10 and not 2.
The sensor size is the one the first file's header gives (for headerless ATIS files, the largest
coordinates + 1 over all files) or
``sensor_size=(width, height)`` (Python: ``get_dataset("folder", root, sensor_size=(W, H))``);
every recording is read at that size (events outside it are refused by the readers).

Use it as ``--set data.dataset=folder --root DIR`` (or ``HSD_FOLDER_ROOT``).
"""

from __future__ import annotations

from pathlib import Path

from hsd.data.base import EventDataset, Sample
from hsd.data.datasets import _class_samples, _read_events, _require_dir, _subdirs
from hsd.data.registry import register
from hsd.errors import DatasetError
from hsd.events.core import Events
from hsd.events.formats import detect_format, iter_events

__all__ = ["EventFolder"]


def _event_extensions() -> tuple[str, ...]:
    """Every extension (lower case, with the dot) of a format that holds events."""
    from hsd.events.formats import FORMATS, SUPPORTED_EXTENSIONS

    return tuple(
        sorted(
            ext
            for ext, ids in SUPPORTED_EXTENSIONS.items()
            if any(FORMATS[i].read is not None for i in ids)
        )
    )


def _class_order(names: list[str]) -> list[str]:
    if names and all(n.isdigit() for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


@register("folder")
class EventFolder(EventDataset):
    """Event files in one folder per class (see the module docstring for the layout)."""

    published_at = "your own recordings (any event-file format hsd reads)"
    layout = """
<root>/
+-- <class>/ rec1.aedat4 rec2.raw ...   (one folder per class), or
+-- train/<class>/...  and  test/<class>/...   (an official split)
"""
    description = "your own recordings, one folder of event files per class"

    def __init__(self, root: Path | None, sensor_size: tuple[int, int] | None = None) -> None:
        root = _require_dir(type(self), root)
        suffixes = _event_extensions()
        split_dirs = [d for d in ("train", "test") if (root / d).is_dir()]
        if len(split_dirs) == 1:
            raise self.layout_error(
                root, f"has {split_dirs[0]}/ but no {({'train', 'test'} - set(split_dirs)).pop()}/"
            )
        samples: list[Sample] = []
        if split_dirs:
            train, test = _subdirs(root / "train", self.name), _subdirs(root / "test", self.name)
            if set(train) != set(test):
                raise DatasetError(
                    f"{self.name}: {root}: train/ and test/ hold different class folders "
                    f"(only in train/: {sorted(set(train) - set(test))}, only in test/: "
                    f"{sorted(set(test) - set(train))})"
                )
            classes = _class_order(train)
            for split in ("train", "test"):
                samples += _class_samples(type(self), root, root / split, classes, suffixes, split)
        else:
            classes = _class_order(_subdirs(root, self.name))
            samples = _class_samples(type(self), root, root, classes, suffixes, None)
        if len(classes) < 2:
            raise self.layout_error(root, f"found {len(classes)} class folder(s), need at least 2")
        if sensor_size is None:
            sensor_size = _infer_sensor(samples)
        self._sensor = (int(sensor_size[0]), int(sensor_size[1]))
        super().__init__(root, classes, self._sensor, samples, has_official_split=bool(split_dirs))

    def load_events(self, index: int) -> Events:
        return _read_events(self.samples[index].path, self._sensor)


def _infer_sensor(samples: list[Sample]) -> tuple[int, int]:
    """The sensor of the first file, from its header; for formats without one (ATIS ``.bin`` /
    ``.bs2``) the largest coordinates + 1 over *every* file, read in chunks (one file's extent
    would cut off the events of the others)."""
    first = min(samples, key=lambda s: s.key)
    if detect_format(first.path) != "atis-bin":
        return _read_events(first.path, None).sensor_size
    width = height = 0
    for sample in samples:
        for chunk in iter_events(sample.path, chunk_events=1 << 20, on_unsorted="keep"):
            if len(chunk):
                width = max(width, int(chunk.x.max()) + 1)
                height = max(height, int(chunk.y.max()) + 1)
    if not width:
        raise DatasetError(f"{first.path.parent.parent}: the recordings hold no events")
    return width, height
