"""The recorded datasets, each read from a local folder in the layout its users already have.

None of them downloads anything. A missing root or a wrong layout raises
:class:`~hsd.errors.DatasetError` with the expected layout and where the dataset is published.
Sample keys are paths relative to the dataset folder (``/`` separators), so they are the same on
every machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from hsd.data.base import EventDataset, Sample, SplitName
from hsd.data.registry import register
from hsd.errors import DatasetError
from hsd.events.core import Events

__all__ = ["CIFAR10DVS", "NMNIST", "DVSGesture", "NCaltech101", "SJFrames"]


def _require_dir(cls: type[EventDataset], root: Path | None) -> Path:
    if root is None:
        raise cls.layout_error(None, "this dataset needs a root folder (--root / data.root)")
    try:
        exists, is_dir = root.exists(), root.is_dir()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long
        raise DatasetError(f"{cls.name}: {root!r}: not a usable path ({exc})") from None
    if not exists:
        raise cls.layout_error(root, "folder not found")
    if not is_dir:
        raise cls.layout_error(root, "not a folder")
    return root


def _shown(path: Path) -> str:
    """``path`` printable whatever its bytes (undecodable bytes as ``\\xNN`` escapes)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _listing(cls_name: str, folder: Path) -> list[Path]:
    """The entries of ``folder``; an unreadable folder or a name that is not UTF-8 (sample keys
    and class names must be the same text on every machine) raises :class:`DatasetError`."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DatasetError(
            f"{cls_name}: {_shown(folder)}: cannot list the folder "
            f"({exc.strerror or exc}); check its access rights"
        ) from None
    for entry in entries:
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise DatasetError(
                f"{cls_name}: {_shown(entry)}: the name is not valid UTF-8; rename it"
            ) from None
    return entries


def _files(folder: Path, suffixes: tuple[str, ...], cls_name: str = "dataset") -> list[Path]:
    return [
        f
        for f in _listing(cls_name, folder)
        if f.suffix.lower() in suffixes and not f.name.startswith(".") and f.is_file()
    ]


def _class_samples(
    cls: type[EventDataset],
    root: Path,
    folder: Path,
    classes: list[str],
    suffixes: tuple[str, ...],
    split: SplitName | None,
) -> list[Sample]:
    """Samples of ``folder/<class>/*<suffix>`` for every class, keys relative to ``root``."""
    samples = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise cls.layout_error(root, f"class folder {class_dir} is missing")
        files = _files(class_dir, suffixes, cls.name)
        if not files:
            raise DatasetError(
                f"{cls.name}: class folder {class_dir} holds no {'/'.join(suffixes)} files"
            )
        samples += [Sample(f.relative_to(root).as_posix(), label, split, f) for f in files]
    return samples


def _subdirs(folder: Path, cls_name: str = "dataset") -> list[str]:
    return sorted(
        d.name for d in _listing(cls_name, folder) if d.is_dir() and not d.name.startswith(".")
    )


def _class_order(names: list[str]) -> list[str]:
    """Class folder names in class-index order: by number when every name is a non-negative
    integer (SpikingJelly names DVS128 Gesture classes ``0``..``10``, so ``10`` comes after
    ``9``, not after ``1``, and a clip gets the same index as in ``dvsgesture``), else by name."""
    if names and all(n.isdecimal() for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return names


def _read_events(path: Path, sensor_size: tuple[int, int] | None) -> Events:
    from hsd.events.formats import read_events

    return read_events(path, sensor_size=sensor_size)


@register("nmnist")
class NMNIST(EventDataset):
    """N-MNIST (Orchard et al. 2015): recorded ATIS ``.bin`` files, 34x34, official split."""

    published_at = "https://www.garrickorchard.com/datasets/n-mnist (Train.zip, Test.zip)"
    layout = """
<root>/
+-- Train/
|   +-- 0/ 00002.bin 00022.bin ...
|   +-- ...
|   +-- 9/
+-- Test/
    +-- 0/ ... 9/
"""
    description = "N-MNIST, recorded by an ATIS camera from MNIST digits on a screen (saccades)"
    SENSOR_SIZE = (34, 34)

    def __init__(self, root: Path | None) -> None:
        root = _require_dir(type(self), root)
        classes = [str(d) for d in range(10)]
        samples = []
        for folder, split in (("Train", "train"), ("Test", "test")):
            if not (root / folder).is_dir():
                raise self.layout_error(root, f"no {folder}/ folder")
            samples += _class_samples(type(self), root, root / folder, classes, (".bin",), split)
        super().__init__(root, classes, self.SENSOR_SIZE, samples, has_official_split=True)

    def load_events(self, index: int) -> Events:
        return _read_events(self.samples[index].path, self.SENSOR_SIZE)


@register("cifar10dvs")
class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS (Li et al. 2017): 10,000 recorded AEDAT 2.0 (or tonic's AEDAT4) files, 128x128,
    no official split."""

    published_at = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
    layout = """
<root>/
+-- airplane/ cifar10_airplane_0.aedat ... (AEDAT 2.0 .aedat or AEDAT4 .aedat4)
+-- automobile/
+-- ... bird cat deer dog frog horse ship
+-- truck/
"""
    description = "CIFAR10-DVS, recorded by a DVS128 from CIFAR-10 images moving on a screen"
    CLASSES: ClassVar[list[str]] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    SENSOR_SIZE = (128, 128)

    def __init__(self, root: Path | None) -> None:
        root = _require_dir(type(self), root)
        samples = _class_samples(type(self), root, root, self.CLASSES, (".aedat", ".aedat4"), None)
        super().__init__(root, self.CLASSES, self.SENSOR_SIZE, samples, has_official_split=False)

    def load_events(self, index: int) -> Events:
        return _read_events(self.samples[index].path, self.SENSOR_SIZE)


@register("ncaltech101")
class NCaltech101(EventDataset):
    """N-Caltech101 (Orchard et al. 2015): recorded ATIS ``.bin`` files, no official split.

    Classes are the sorted folder names. ``BACKGROUND_Google`` is kept by default: with it the
    dataset has the 101 classes and 8,709 samples that SpikingJelly and the published results
    (HSD included) use; ``include_background=False`` drops it (100 classes). Recordings have
    different sizes (up to about 233x173), so all are placed on one fixed 240x180 canvas
    (``sensor_size = (240, 180)``, events keep their coordinates, top-left aligned).
    """

    published_at = "https://www.garrickorchard.com/datasets/n-caltech101 (Caltech101.zip)"
    layout = """
Caltech101/            (pass this folder, or its parent, as the root)
+-- accordion/ image_0001.bin ...
+-- airplanes/
+-- ... (101 class folders, BACKGROUND_Google included)
+-- yin_yang/
"""
    description = "N-Caltech101, recorded by an ATIS camera from Caltech101 images (saccades)"
    SENSOR_SIZE = (240, 180)
    BACKGROUND = "BACKGROUND_Google"

    def __init__(self, root: Path | None, include_background: bool = True) -> None:
        root = _require_dir(type(self), root)
        if (root / "Caltech101").is_dir():
            root = root / "Caltech101"
        classes = [c for c in _subdirs(root) if include_background or c != self.BACKGROUND]
        if not classes:
            raise self.layout_error(root, "no class folders")
        samples = _class_samples(type(self), root, root, classes, (".bin",), None)
        super().__init__(root, classes, self.SENSOR_SIZE, samples, has_official_split=False)

    def load_events(self, index: int) -> Events:
        return _read_events(self.samples[index].path, self.SENSOR_SIZE)


@register("dvsgesture")
class DVSGesture(EventDataset):
    """DVS128 Gesture (Amir et al. 2017): 122 AEDAT 3.1 recordings cut into labelled clips.

    The paper counts 1,342 gesture instances; hsd, like SpikingJelly, makes one clip per data
    row of the labels csv files, so the number of samples is the number of csv rows in your
    copy (tonic's preprocessed copy has 1,341). Each row of a recording's
    ``<name>_labels.csv`` is one sample, keyed ``<name>#c<row>``
    (``row`` counts the csv's data rows from 0) and holding the events with
    ``start <= t < end`` (as SpikingJelly cuts them; a clip may be empty). The official split
    comes from ``trials_to_train.txt`` and ``trials_to_test.txt``; every recording must be in
    exactly one of them. Indexing reads only
    the csv and text files; a recording is decoded when one of its clips is loaded (the last
    decoded recording is kept, so loading clips in key order decodes each file once).
    """

    published_at = "https://research.ibm.com/interactive/dvsgesture/ (DvsGesture.tar.gz)"
    layout = """
DvsGesture/            (pass this folder, or its parent, as the root)
+-- trials_to_train.txt    user01_fluorescent.aedat ... (one recording per line)
+-- trials_to_test.txt
+-- user01_fluorescent.aedat
+-- user01_fluorescent_labels.csv   class,startTime_usec,endTime_usec
+-- ...
"""
    description = "DVS128 Gesture, recorded by a DVS128 camera (11 hand and arm gestures)"
    CLASSES: ClassVar[list[str]] = [
        "hand_clapping",
        "right_hand_wave",
        "left_hand_wave",
        "right_arm_clockwise",
        "right_arm_counter_clockwise",
        "left_arm_clockwise",
        "left_arm_counter_clockwise",
        "arm_roll",
        "air_drums",
        "air_guitar",
        "other_gestures",
    ]
    SENSOR_SIZE = (128, 128)

    def __init__(self, root: Path | None) -> None:
        from hsd.events.formats import read_gesture_labels

        root = _require_dir(type(self), root)
        if (root / "DvsGesture").is_dir():
            root = root / "DvsGesture"
        split_of: dict[str, SplitName] = {}
        for split in ("train", "test"):
            listing = root / f"trials_to_{split}.txt"
            if not listing.is_file():
                raise self.layout_error(root, f"no {listing.name}")
            try:
                text = listing.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"{self.name}: {listing}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                ) from None
            except OSError as exc:
                raise DatasetError(
                    f"{self.name}: {listing}: cannot read ({exc.strerror})"
                ) from None
            for line in text.splitlines():
                name = line.strip()
                if not name:
                    continue
                if name in split_of:
                    raise DatasetError(f"{self.name}: {name} is listed twice in {root}")
                split_of[name] = split
        recordings = sorted(
            f.name
            for f in _listing(self.name, root)
            if f.name.startswith("user") and f.suffix == ".aedat" and f.is_file()
        )
        for name in recordings:
            if name not in split_of:
                raise DatasetError(
                    f"{self.name}: {root / name} is in neither trials_to_train.txt nor "
                    "trials_to_test.txt"
                )
        samples = []
        for name, split in sorted(split_of.items()):
            path = root / name
            labels_csv = path.with_name(f"{path.stem}_labels.csv")
            if not path.is_file():
                raise DatasetError(f"{self.name}: {path} is listed but missing")
            if not labels_csv.is_file():
                raise DatasetError(f"{self.name}: {labels_csv} (labels of {name}) is missing")
            for row, (label, start, end) in enumerate(read_gesture_labels(labels_csv)):
                key = f"{path.stem}#c{row}"
                samples.append(Sample(key, int(label), split, path, (int(start), int(end))))
        self._recording: tuple[Path, Events] | None = None
        super().__init__(root, self.CLASSES, self.SENSOR_SIZE, samples, has_official_split=True)

    def load_events(self, index: int) -> Events:
        sample = self.samples[index]
        if self._recording is None or self._recording[0] != sample.path:
            self._recording = (sample.path, _read_events(sample.path, self.SENSOR_SIZE))
        events = self._recording[1]
        start, end = sample.t_range_us or (0, 0)
        lo, hi = np.searchsorted(events.t, [start, end], side="left")
        return events.select(slice(int(lo), int(max(lo, hi))))


_SJ_FOLDER = re.compile(r"^frames_number_(\d+)_split_by_(number|time)$")


@register("sj-frames")
class SJFrames(EventDataset):
    """Frames preprocessed by SpikingJelly: ``<class>/<sample>.npz`` with key ``frames``
    ``[N, P, H, W]`` (optionally under ``train/`` and ``test/``, the official split).

    ``kind == "frames"``: :meth:`load_frames` returns the stored frames. ``n_frames`` and
    ``split_by`` ("count" or "time") come from a ``frames_number_<N>_split_by_<how>`` folder
    name when the folder has one (else ``n_frames`` from the first file, ``split_by`` None).
    """

    kind = "frames"
    published_at = "your SpikingJelly preprocessing (spikingjelly.datasets, frames_number=N)"
    layout = """
<root>/                (or a folder holding exactly one frames_number_* folder)
+-- frames_number_10_split_by_number/
    +-- <class>/ <sample>.npz ...      (key "frames", [N, P, H, W])
    or
    +-- train/<class>/*.npz  and  test/<class>/*.npz
"""
    description = "frames integrated by SpikingJelly from an event dataset"

    def __init__(self, root: Path | None) -> None:
        from hsd.events.formats import read_frames_npz

        root = _require_dir(type(self), root)
        match = _SJ_FOLDER.match(root.name)
        if match is None:
            found = [d for d in _subdirs(root) if _SJ_FOLDER.match(d)]
            if len(found) > 1:
                raise self.layout_error(
                    root, f"several frame folders ({', '.join(found)}); pass one as the root"
                )
            if found:
                root = root / found[0]
                match = _SJ_FOLDER.match(root.name)
        subdirs = _subdirs(root)
        if "train" in subdirs and "test" in subdirs:
            classes = _class_order(_subdirs(root / "train"))
            if _class_order(_subdirs(root / "test")) != classes:
                raise self.layout_error(root, "train/ and test/ have different class folders")
            samples = _class_samples(type(self), root, root / "train", classes, (".npz",), "train")
            samples += _class_samples(type(self), root, root / "test", classes, (".npz",), "test")
            official = True
        else:
            classes = _class_order(subdirs)
            if not classes:
                raise self.layout_error(root, "no class folders")
            samples = _class_samples(type(self), root, root, classes, (".npz",), None)
            official = False
        first = read_frames_npz(samples[0].path)
        self.frame_shape: tuple[int, ...] = tuple(int(s) for s in first.shape)
        self.n_frames = int(match.group(1)) if match else self.frame_shape[0]
        self.split_by = (
            None if match is None else {"number": "count", "time": "time"}[match.group(2)]
        )
        height, width = self.frame_shape[-2:]
        super().__init__(root, classes, (width, height), samples, has_official_split=official)

    def load_frames(self, index: int) -> np.ndarray:
        from hsd.events.formats import read_frames_npz

        path = self.samples[index].path
        frames = read_frames_npz(path)
        if tuple(frames.shape) != self.frame_shape:
            raise DatasetError(
                f"{self.name}: {path} holds frames of shape {tuple(frames.shape)}, "
                f"the others {self.frame_shape}"
            )
        return check_counts(frames, f"{self.name}: {path}")


MAX_COUNT = 2**31 - 1  # the widest count hsd's frame store holds (int32)


def check_counts(frames: np.ndarray, where: str) -> np.ndarray:
    """``frames`` if they are event counts (whole, finite, in ``[0, MAX_COUNT]``), else
    :class:`DatasetError` naming ``where``: negative or huge counts are refused, never wrapped."""
    if frames.size == 0 or frames.dtype.kind == "b":
        return frames
    if frames.dtype.kind == "f":
        if not np.all(np.isfinite(frames)):
            raise DatasetError(f"{where}: frames hold NaN or infinite values, not event counts")
        if not np.all(frames == np.floor(frames)):
            raise DatasetError(f"{where}: frames hold fractional values, not event counts")
    elif frames.dtype.kind not in "iu":
        raise DatasetError(f"{where}: frames of dtype {frames.dtype} are not event counts")
    low, high = frames.min(), frames.max()
    if low < 0:
        raise DatasetError(f"{where}: frames hold negative counts (down to {low}); refused")
    if high > MAX_COUNT:
        raise DatasetError(
            f"{where}: frames hold counts up to {high}, above {MAX_COUNT}; refused, never wrapped"
        )
    return frames
