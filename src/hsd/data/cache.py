"""The frame cache: every sample of a dataset integrated into frames once, then memory-mapped.

A cache entry is a folder ``<cache dir>/frames/<dataset>/<fingerprint>-<spec key>-v<format>/``
holding ``frames.npy`` ``[S, N, P, H, W]`` (``uint16`` when every count fits, else ``int32``),
``labels.npy`` ``int64 [S]``, ``end_times_us.npy`` ``int64 [S, N]`` and ``keys.json``. The name
contains the dataset fingerprint (keys, labels, file sizes), every frame parameter
(:meth:`FrameSpec.key`) and the cache format version, so a changed parameter or dataset never
serves stale frames. Entries are written into a temporary folder and renamed into place, so an
interrupted build leaves no half entry behind.

**Integrity.** Every entry also holds ``manifest.json``: the SHA-256 of each of its files and the
fingerprint ``[size, mtime_ns]`` of every source file it was made from. Loading an entry checks
both (hashing costs about 2 s per GB of frames): a rewritten source file (even of the same
size), a flipped byte, a reshaped ``.npy`` header, altered labels, a missing or zero-byte file or
an entry folder replaced by a file is reported as an :class:`~hsd.errors.HSDWarning` naming the
entry and the fault, and the entry is rebuilt. Frame values are checked when they enter the
cache: negative, non-finite, fractional or above ``2**31 - 1`` counts are a
:class:`~hsd.errors.DatasetError` naming the sample.

**Parallel build.** ``workers`` processes (``data.workers``; ``None`` = the cores this process
may run on, :func:`os.sched_getaffinity`) integrate the samples; the parent receives each
sample's frames in sample order (``Pool.imap``, chunks of a few samples) and writes them straight
into the memory-mapped ``frames.npy``, so memory stays bounded by the chunks in flight, not by
the dataset. Every file of the entry, the manifest included, is byte for byte the one a
single-process build writes (same order, same dtype decision, same first error). Workers are
forked where the platform can (Linux), else spawned (the dataset must then pickle).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hsd.data.base import EventDataset
from hsd.data.datasets import check_counts
from hsd.data.paths import cache_dir as default_cache_dir
from hsd.errors import DatasetError, HSDError, HSDWarning, ResourceError
from hsd.events.frames import FrameSpec, resize_nearest
from hsd.progress import bars_enabled
from hsd.runtime import admit, format_bytes

__all__ = [
    "FORMAT_VERSION",
    "FrameArrays",
    "FrameCache",
    "available_cores",
    "load_frames",
    "resolve_workers",
]

FORMAT_VERSION = 2
_UINT16_MAX = int(np.iinfo(np.uint16).max)
_ARRAY_FILES = ("frames.npy", "labels.npy", "end_times_us.npy", "keys.json")


@dataclass(frozen=True, eq=False)
class FrameArrays:
    """Frames of every sample of a dataset, in the dataset's sample order.

    ``frames``: ``[S, N, P, H, W]`` event counts, ``uint16`` or ``int32`` (memory-mapped when
    read from the cache); ``labels``: ``int64 [S]``; ``end_times_us``: ``int64 [S, N]``, event
    time (microseconds since the sample's first event) consumed when each frame is complete, -1
    where unknown (frames stored by SpikingJelly); ``keys``: the sample keys.
    """

    frames: np.ndarray
    labels: np.ndarray
    end_times_us: np.ndarray
    keys: list[str]
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])


class FrameCache:
    """Frame arrays of (dataset, spec) pairs under ``<cache_dir>/frames``."""

    def __init__(self, cache_dir: str | Path | None = None, workers: int | None = 1) -> None:
        self.root = default_cache_dir(cache_dir) / "frames"
        self.workers = resolve_workers(workers)

    def path(self, dataset: EventDataset, spec: FrameSpec) -> Path:
        """The entry folder of ``dataset`` integrated with ``spec``."""
        name = f"{dataset.fingerprint()[:20]}-{spec.key()}-v{FORMAT_VERSION}"
        return self.root / dataset.name / name

    def load(self, dataset: EventDataset, spec: FrameSpec, progress: bool = True) -> FrameArrays:
        """Read the entry, building it first if it does not exist (reads every raw sample); a
        damaged or stale entry is rebuilt with a warning."""
        path = self.path(dataset, spec)
        _check_folder(path.parent)
        _remove_leftovers(path)
        if path.exists() or path.is_symlink():
            arrays, fault = _read_entry(path, dataset)
            if arrays is not None:
                return arrays
            warnings.warn(f"frame cache {path}: {fault}; rebuilding it", HSDWarning, stacklevel=2)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self._build(dataset, spec, path, progress)
        arrays, fault = _read_entry(path, dataset)
        if arrays is None:
            raise DatasetError(f"{dataset.name}: frame cache {path} cannot be read back: {fault}")
        return arrays

    def _build(self, dataset: EventDataset, spec: FrameSpec, path: Path, progress: bool) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _admit_build(dataset, spec, path.parent, self.workers)
            tmp.mkdir()
        except OSError as exc:
            raise DatasetError(
                f"data.cache_dir: cannot create {tmp} ({exc.strerror or exc}); set "
                "data.cache_dir (or HSD_CACHE_DIR) to a folder you can write"
            ) from None
        try:
            _integrate_all(dataset, spec, tmp, progress, self.workers)
            try:
                os.replace(tmp, path)
            except OSError:
                if not path.is_dir():  # another process finished first otherwise
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def load_frames(
    dataset: EventDataset,
    spec: FrameSpec,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    workers: int | None = 1,
) -> FrameArrays:
    """Frames of every sample of ``dataset`` made with ``spec``, from the cache (built on first
    use by ``workers`` processes, ``None`` = the cores available (``data.workers``'s default; the
    function's default is one process), with a progress bar over the
    samples when ``progress``)."""
    return FrameCache(cache_dir, workers=workers).load(dataset, spec, progress=progress)


def available_cores() -> int:
    """The cores this process may run on (:func:`os.sched_getaffinity` where the platform has
    it, else :func:`os.cpu_count`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None) -> int:
    """The number of build processes: ``None`` = :func:`available_cores`, else ``workers``
    (``0`` and ``1`` both build in this process)."""
    if workers is None:
        return available_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DatasetError(f"data.workers: must be a whole number >= 0 or null, got {workers!r}")
    return max(1, workers)


def _sample_frames(dataset: EventDataset, spec: FrameSpec, index: int):
    """``(frames [N, P, H, W] integer, end_times_us int64 [N])`` of one sample."""
    if dataset.kind == "events":
        events = dataset.load_events(index)
        return spec.apply(events), spec.end_times_us(events)
    frames = dataset.load_frames(index)
    path = dataset.samples[index].path
    if spec.frame_us is not None:
        raise DatasetError(
            f"{dataset.name}: {path} stores frames; fixed-duration frames (data.frame_us) "
            "need a dataset of events"
        )
    stored_by = getattr(dataset, "split_by", None)
    if frames.shape[0] != spec.n_frames:
        raise DatasetError(
            f"{dataset.name}: {path} stores {frames.shape[0]} frames, the spec asks for "
            f"{spec.n_frames}; preprocess with frames_number={spec.n_frames} or set N to match"
        )
    if stored_by is not None and stored_by != spec.split_by:
        raise DatasetError(
            f"{dataset.name}: {path} was split by {stored_by}, the spec asks for {spec.split_by}"
        )
    if frames.dtype.kind == "f":
        if not np.all(frames == np.round(frames)) or frames.min() < 0:
            raise DatasetError(f"{dataset.name}: {path} holds frames that are not event counts")
    elif frames.dtype.kind not in "iu":
        raise DatasetError(f"{dataset.name}: {path} holds frames of dtype {frames.dtype}")
    _check_counts(dataset, index, frames)
    frames = frames.astype(np.int64)
    if spec.size is not None and tuple(frames.shape[-2:]) != spec.size:
        frames = resize_nearest(frames, spec.size, spec.resize)
    if spec.clip is not None:
        frames = np.minimum(frames, spec.clip)
    return frames, np.full(spec.n_frames, -1, dtype=np.int64)


_WORKER_STATE: tuple[EventDataset, FrameSpec] | None = None


def _worker_init(dataset: EventDataset, spec: FrameSpec) -> None:
    global _WORKER_STATE
    _WORKER_STATE = (dataset, spec)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _one_sample(dataset: EventDataset, spec: FrameSpec, index: int):
    """``(frames, end_times_us)`` of sample ``index``, checked; frames in the narrowest of
    ``uint16``/``int32`` that holds them (values unchanged, less to send between processes)."""
    frames, end_times = _sample_frames(dataset, spec, index)
    _check_counts(dataset, index, frames)
    frames = np.asarray(frames)
    high = int(frames.max(initial=0))
    frames = frames.astype(np.uint16 if high <= _UINT16_MAX else np.int32, copy=False)
    return frames, np.asarray(end_times, dtype=np.int64)


def _worker_sample(index: int):
    """Worker side: the sample's result, or ``(None, (exception class, message))`` for an
    :class:`~hsd.errors.HSDError` (re-raised by the parent with the same class and message:
    some HSDError classes take several constructor arguments and do not unpickle)."""
    assert _WORKER_STATE is not None
    dataset, spec = _WORKER_STATE
    try:
        return _one_sample(dataset, spec, index)
    except HSDError as exc:
        return None, (type(exc), str(exc))


def _reraise(fault: tuple[type, str]) -> None:
    cls, message = fault
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    raise exc


def _pool_shape(workers: int, n: int) -> tuple[int, int]:
    """``(processes, samples per task)`` of a build of ``n`` samples by ``workers`` processes
    (what :func:`_sample_results` runs and :func:`_admit_build` admits)."""
    processes = max(1, min(workers, n))
    return processes, max(1, min(8, n // (processes * 8)))


def _sample_results(dataset: EventDataset, spec: FrameSpec, workers: int, n: int):
    """Yield ``(frames, end_times)`` of samples ``0..n-1`` in order, from ``workers``
    processes (this process when ``workers <= 1`` or there is a single sample)."""
    if workers <= 1 or n < 2:
        for i in range(n):
            yield _one_sample(dataset, spec, i)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    processes, chunk = _pool_shape(workers, n)
    with context.Pool(processes, initializer=_worker_init, initargs=(dataset, spec)) as pool:
        for frames, extra in pool.imap(_worker_sample, range(n), chunksize=chunk):
            if frames is None:
                _reraise(extra)
            yield frames, extra


def _integrate_all(
    dataset: EventDataset, spec: FrameSpec, folder: Path, progress: bool, workers: int = 1
) -> None:
    dataset.prepare(progress)
    n = len(dataset)
    frames_path = folder / "frames.npy"
    out: np.ndarray | None = None
    end_times = np.zeros((n, spec.n_frames), dtype=np.int64)
    bar = tqdm(
        total=n,
        desc=f"{dataset.name} -> frames ({spec.key()}, {min(workers, max(n, 1))} proc)",
        unit="sample",
        disable=not bars_enabled(progress),
    )
    for i, (frames, end_times[i]) in enumerate(_sample_results(dataset, spec, workers, n)):
        if out is None:
            out = np.lib.format.open_memmap(
                frames_path, mode="w+", dtype=np.uint16, shape=(n, *frames.shape)
            )
        elif frames.shape != out.shape[1:]:
            raise DatasetError(
                f"{dataset.name}: sample {dataset.samples[i].key} gives frames of shape "
                f"{frames.shape}, earlier samples {out.shape[1:]}"
            )
        if out.dtype == np.uint16 and frames.dtype != np.uint16:
            out = _widen(out, folder, i)
        out[i] = frames
        bar.update(1)
    bar.close()
    if out is None:
        raise DatasetError(f"{dataset.name}: no samples to integrate")
    out.flush()
    del out
    np.save(folder / "labels.npy", dataset.labels)
    np.save(folder / "end_times_us.npy", end_times)
    (folder / "keys.json").write_text(json.dumps(dataset.keys), "utf-8")
    manifest = {
        "format": FORMAT_VERSION,
        "sha256": {name: _file_sha256(folder / name) for name in _ARRAY_FILES},
        "sources": _source_fingerprints(dataset),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def _check_counts(dataset: EventDataset, index: int, frames: np.ndarray) -> None:
    """Refuse frames that are not event counts storable in the cache, naming the sample
    (:func:`hsd.data.datasets.check_counts`, the one rule for what a count may be)."""
    sample = dataset.samples[index]
    check_counts(frames, f"{dataset.name}: sample {sample.key} ({sample.path})")


def _check_folder(root: Path) -> None:
    """Refuse a cache folder (or one of its parents) that exists as something else."""
    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise DatasetError(
                    f"data.cache_dir: {folder} is a file, not a folder; remove it or set "
                    "data.cache_dir (or HSD_CACHE_DIR) to a folder"
                )
            return


def _admit_build(dataset: EventDataset, spec: FrameSpec, folder: Path, workers: int) -> None:
    """Refuse, before integrating anything, a cache build that cannot fit in memory or on disk.

    Memory: every build process integrates one sample at a time (``np.bincount``'s ``int64``
    counts, their ``int32`` copy and the ``uint16`` sample sent on: 14 bytes per value at
    integration resolution), and the parent holds the samples in flight plus the end times
    (:func:`hsd.runtime.admit`). Disk: ``frames.npy`` at 2 bytes per value (``uint16``; a widening
    to ``int32`` is checked again when it happens). Raises :class:`~hsd.errors.ResourceError`.
    """
    n = len(dataset)
    width, height = dataset.sensor_size
    out_h, out_w = spec.size if spec.size is not None else (height, width)
    out = spec.n_frames * 2 * out_h * out_w
    native = spec.size is None or spec.resize == "interpolate" or dataset.kind == "frames"
    work = spec.n_frames * 2 * (height * width if native else out_h * out_w)
    processes, chunk = _pool_shape(workers, n)
    memory = processes * 14 * work + (chunk * processes + 1) * 4 * out + n * spec.n_frames * 8
    what = (
        f"{dataset.name}: building its frame cache ({n} samples x {spec.n_frames} frames x 2 x "
        f"{out_h} x {out_w}, {processes} process{'es' if processes > 1 else ''})"
    )
    admit(memory, what, hint="lower data.frames or data.size, or data.workers")
    disk = 2 * n * out + 16 * n * (spec.n_frames + 1) + (1 << 20)
    _admit_disk(disk, folder, what)


def _admit_disk(nbytes: int, folder: Path, what: str) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        raise ResourceError(
            f"{what}: needs about {format_bytes(nbytes)} on disk in {folder} but only "
            f"{format_bytes(free)} is free; free space there, or set data.cache_dir (or "
            "HSD_CACHE_DIR) to a larger disk, or lower data.frames or data.size"
        )


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary folders ``.<entry>.tmp-<pid>-<id>`` of builds of this entry whose
    process is gone (killed before its ``finally`` ran); a live build's folder is left alone."""
    try:
        leftovers = list(path.parent.glob(f".{path.name}.tmp-*"))
    except OSError:
        return
    for folder in leftovers:
        pid_text = folder.name[len(path.name) + 6 :].split("-", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _source_fingerprints(dataset: EventDataset) -> dict[str, list[int]]:
    """``{source path: [size in bytes, mtime in ns]}`` of every file the samples are read from."""
    out: dict[str, list[int]] = {}
    for sample in dataset.samples:
        key = str(sample.path)
        if key not in out:
            try:
                stat = sample.path.stat()
            except OSError as exc:
                raise DatasetError(
                    f"{dataset.name}: {sample.path}: cannot read ({exc.strerror or exc})"
                ) from None
            out[key] = [int(stat.st_size), int(stat.st_mtime_ns)]
    return out


def _widen(out: np.ndarray, folder: Path, done: int) -> np.ndarray:
    """Copy a ``uint16`` memmap whose first ``done`` samples are filled into an ``int32`` one."""
    wide_path = folder / "frames-int32.npy"
    _admit_disk(4 * out.size, folder, f"widening the frame cache {folder.name} to int32")
    wide = np.lib.format.open_memmap(wide_path, mode="w+", dtype=np.int32, shape=out.shape)
    wide[:done] = out[:done]
    narrow_path = Path(out.filename)
    del out
    os.replace(wide_path, narrow_path)
    return wide


def _read_entry(path: Path, dataset: EventDataset) -> tuple[FrameArrays | None, str]:
    """``(arrays, "")`` of a complete, intact and current entry, else ``(None, the fault)``."""
    if not path.is_dir():
        return None, "the entry is a file, not a folder"
    for name in ("manifest.json", *_ARRAY_FILES):  # a FIFO or device would block the read
        if (path / name).exists() and not (path / name).is_file():
            return None, f"{name} is not a regular file"
    try:
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        sums, sources = manifest["sha256"], manifest["sources"]
        if manifest.get("format") != FORMAT_VERSION or not isinstance(sums, dict):
            return None, "manifest.json is of another format"
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None, "manifest.json is missing or unreadable"
    if sources != _source_fingerprints(dataset):
        return None, "source files changed since the entry was built (size or modification time)"
    for name in _ARRAY_FILES:
        try:
            actual = _file_sha256(path / name)
        except OSError:
            return None, f"{name} is missing or unreadable"
        if actual != sums.get(name):
            return None, f"{name} does not match its checksum (damaged)"
    try:
        frames = np.load(path / "frames.npy", mmap_mode="r")
        labels = np.load(path / "labels.npy")
        end_times = np.load(path / "end_times_us.npy")
        keys = json.loads((path / "keys.json").read_text("utf-8"))
    except (OSError, ValueError, EOFError, RecursionError):
        return None, "an array file cannot be read"
    if frames.dtype not in (np.uint16, np.int32) or labels.dtype != np.int64 or frames.ndim != 5:
        return None, "an array has the wrong type or shape"
    if not (frames.shape[0] == labels.shape[0] == end_times.shape[0] == len(keys)):
        return None, "its arrays disagree on the number of samples"
    if keys != dataset.keys or not np.array_equal(labels, dataset.labels):
        return None, "its samples or labels differ from the dataset's"
    return FrameArrays(frames, labels, end_times, keys, path), ""
