"""The frame cache under damage: flipped bytes anywhere in any file of an entry, truncated,
zero-byte, missing or reshaped arrays, labels shifted or turned to floats, NaN frames, a manifest
of garbage, a source recording rewritten with the same size, an entry folder replaced by a file,
a cache folder that is a file, leftovers of a killed build.

Every case ends in one of two ways, and anything else fails it:

* the damage is detected: an :class:`~hsd.errors.HSDWarning` naming the entry, the entry is
  rebuilt, and the frames, labels and end times served equal the reference integrated directly
  from the events (:meth:`FrameSpec.apply`); a second load is silent and reads no raw file;
* the input cannot be used at all (a cache folder that is a file): a
  :class:`~hsd.errors.DatasetError` naming it.

Seed 0 runs in the default suite (about 30 generated cases); seeds 1..12 are the slow sweep.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from tests.data.conftest import FakeDataset, make_events
from tests.fuzz.conftest import SEEDS

from hsd.data import FrameCache
from hsd.errors import DatasetError, HSDWarning, ResourceError
from hsd.events.frames import FrameSpec, integrate_frames

SPEC = FrameSpec(n_frames=3)
COUNTS = [4, 3]
FILES = ("frames.npy", "labels.npy", "end_times_us.npy", "keys.json", "manifest.json")


def _reference(ds: FakeDataset) -> tuple[np.ndarray, np.ndarray]:
    events = [make_events(i, 20 + i, ds.sensor_size) for i in range(len(ds))]
    return (
        np.stack([SPEC.apply(e) for e in events]),
        np.stack([SPEC.end_times_us(e) for e in events]),
    )


def _flip(path: Path, rng: np.random.Generator) -> str:
    data = bytearray(path.read_bytes())
    at = int(rng.integers(0, len(data)))
    data[at] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(data))
    return f"flip {path.name}@{at}"


def _truncate(path: Path, rng: np.random.Generator) -> str:
    size = path.stat().st_size
    keep = int(rng.integers(0, size))
    with open(path, "r+b") as stream:
        stream.truncate(keep)
    return f"truncate {path.name} to {keep}"


def _reshape(path: Path, rng: np.random.Generator) -> str:
    frames = np.load(path)
    flat = frames.reshape(frames.shape[0], -1)
    choice = int(rng.integers(0, 3))
    if choice == 0:  # same bytes, another 5-d shape
        n, t, p, h, w = frames.shape
        np.save(path, frames.reshape(n, t, p, w, h))
    elif choice == 1:
        np.save(path, flat)
    else:
        np.save(path, frames[: frames.shape[0] - 1])
    return f"reshape frames ({choice})"


def _labels(path: Path, rng: np.random.Generator) -> str:
    labels = np.load(path)
    choice = int(rng.integers(0, 3))
    if choice == 0:
        np.save(path, np.roll(labels, 1))
    elif choice == 1:
        np.save(path, labels.astype(np.float64) + 0.5)
    else:
        np.save(path, (labels + 1) % 2)
    return f"labels ({choice})"


def _nan_frames(path: Path, rng: np.random.Generator) -> str:
    frames = np.load(path).astype(np.float32)
    frames.reshape(-1)[int(rng.integers(0, frames.size))] = np.nan
    np.save(path, frames)
    return "NaN frames"


def _mutations(rng: np.random.Generator):
    """``(label, mutate(entry, dataset root) -> detail)`` of one seed's cases."""
    cases = []
    for name in FILES:
        for _ in range(2):
            cases.append((f"flip {name}", lambda e, r, n=name: _flip(e / n, rng)))
        cases.append((f"truncate {name}", lambda e, r, n=name: _truncate(e / n, rng)))
        cases.append((f"zero-byte {name}", lambda e, r, n=name: (e / n).write_bytes(b"")))
        cases.append((f"missing {name}", lambda e, r, n=name: (e / n).unlink()))
    cases.append(("reshaped frames", lambda e, r: _reshape(e / "frames.npy", rng)))
    cases.append(("altered labels", lambda e, r: _labels(e / "labels.npy", rng)))
    cases.append(("NaN frames", lambda e, r: _nan_frames(e / "frames.npy", rng)))
    cases.append(
        ("manifest of garbage", lambda e, r: (e / "manifest.json").write_bytes(rng.bytes(40)))
    )
    cases.append(
        (
            "manifest of another format",
            lambda e, r: (e / "manifest.json").write_text(json.dumps({"format": 1})),
        )
    )
    cases.append(("entry replaced by a file", lambda e, r: _replace_by_file(e)))
    for name in ("frames.npy", "manifest.json"):  # reading a FIFO blocked forever (a hang)
        cases.append((f"{name} replaced by a FIFO", lambda e, r, n=name: _fifo(e / n)))
    cases.append(  # json.loads: RecursionError, was "input nested too deeply", not rebuilt
        (
            "manifest nested 100000 deep",
            lambda e, r: (e / "manifest.json").write_text("[" * 100_000 + "]" * 100_000),
        )
    )
    cases.append(("source rewritten, same size", lambda e, r: _rewrite_source(r, rng)))
    order = rng.permutation(len(cases))
    return [cases[i] for i in order]


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _replace_by_file(entry: Path) -> None:
    shutil.rmtree(entry)
    entry.write_text("not an entry")


def _rewrite_source(root: Path, rng: np.random.Generator) -> None:
    files = sorted(root.rglob("*.dat"))
    path = files[int(rng.integers(0, len(files)))]
    size = path.stat().st_size
    path.write_bytes(b"y" * size)  # same size, new content and modification time
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_damaged_cache_entry_is_reported_and_rebuilt_never_served(seed, tmp_path):
    rng = np.random.default_rng(seed)
    root, cache_dir = tmp_path / "data", tmp_path / "cache"
    ds = FakeDataset(root, COUNTS)
    first = FrameCache(cache_dir).load(ds, SPEC, progress=False)
    ref_frames, ref_end = _reference(ds)
    np.testing.assert_array_equal(first.frames, ref_frames)
    entry = first.path
    shutil.copytree(root, tmp_path / "pristine-data", copy_function=shutil.copy2)
    shutil.copytree(cache_dir, tmp_path / "pristine-cache", copy_function=shutil.copy2)
    for label, mutate in _mutations(rng):
        for there, pristine in ((root, "pristine-data"), (cache_dir, "pristine-cache")):
            shutil.rmtree(there)
            shutil.copytree(tmp_path / pristine, there, copy_function=shutil.copy2)
        ds = FakeDataset(root, COUNTS)
        assert FrameCache(cache_dir).path(ds, SPEC) == entry
        detail = mutate(entry, root) or label
        with pytest.warns(HSDWarning) as caught:
            arrays = FrameCache(cache_dir).load(ds, SPEC, progress=False)
        messages = [str(w.message) for w in caught if issubclass(w.category, HSDWarning)]
        assert any(str(entry) in m and "rebuilding" in m for m in messages), (detail, messages)
        assert ds.calls == len(ds), detail
        np.testing.assert_array_equal(arrays.frames, ref_frames, err_msg=detail)
        np.testing.assert_array_equal(arrays.end_times_us, ref_end, err_msg=detail)
        assert arrays.labels.dtype == np.int64 and arrays.labels.tolist() == ds.labels.tolist()
        again = FakeDataset(root, COUNTS)
        with warnings.catch_warnings():
            warnings.simplefilter("error", HSDWarning)
            warm = FrameCache(cache_dir).load(again, SPEC, progress=False)
        assert again.calls == 0, detail
        np.testing.assert_array_equal(warm.frames, ref_frames, err_msg=detail)


def test_an_intact_entry_is_served_without_a_warning_or_a_raw_read(tmp_path):
    ds = FakeDataset(tmp_path / "data", COUNTS)
    FrameCache(tmp_path / "cache").load(ds, SPEC, progress=False)
    again = FakeDataset(tmp_path / "data", COUNTS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FrameCache(tmp_path / "cache").load(again, SPEC, progress=False)
    assert again.calls == 0


@pytest.mark.parametrize("where", ["cache_dir", "frames", "dataset folder"])
def test_a_cache_folder_that_is_a_file_is_refused_naming_it(where, tmp_path):
    ds = FakeDataset(tmp_path / "data", COUNTS)
    cache_dir = tmp_path / "cache"
    target = {
        "cache_dir": cache_dir,
        "frames": cache_dir / "frames",
        "dataset folder": cache_dir / "frames" / ds.name,
    }[where]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("a file")
    with pytest.raises(DatasetError, match="is a file") as info:
        FrameCache(cache_dir).load(ds, SPEC, progress=False)
    assert str(target) in str(info.value)
    assert target.read_text() == "a file"  # nothing the user made is removed


def test_leftovers_of_a_killed_build_are_removed_and_a_live_build_is_left_alone(tmp_path):
    ds = FakeDataset(tmp_path / "data", COUNTS)
    cache = FrameCache(tmp_path / "cache")
    entry = cache.path(ds, SPEC)
    entry.parent.mkdir(parents=True)
    dead_pid = _dead_pid()
    dead = entry.with_name(f".{entry.name}.tmp-{dead_pid}-deadbeef")
    live = entry.with_name(f".{entry.name}.tmp-{os.getpid()}-0123abcd")
    for folder in (dead, live):
        folder.mkdir()
        (folder / "frames.npy").write_bytes(b"half")
    cache.load(ds, SPEC, progress=False)
    assert not dead.exists()
    assert live.exists()


def _dead_pid() -> int:
    pid = 2**22 - 7
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_a_cache_build_that_cannot_fit_in_memory_is_refused_before_any_sample(
    tmp_path, monkeypatch
):
    ds = FakeDataset(tmp_path / "data", COUNTS)
    monkeypatch.setenv("HSD_MEMORY_LIMIT", "1M")
    spec = FrameSpec(n_frames=20_000)  # 20,000 x 2 x 6 x 8 values a sample
    with pytest.raises(ResourceError, match="fake: building its frame cache") as info:
        FrameCache(tmp_path / "cache", workers=2).load(ds, spec, progress=False)
    assert "needs about" in str(info.value) and "data.frames" in str(info.value)
    assert ds.calls == 0
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() or ".tmp-" in p.name]


def test_a_cache_build_that_cannot_fit_on_disk_is_refused_naming_the_folder(tmp_path, monkeypatch):
    ds = FakeDataset(tmp_path / "data", COUNTS)
    real = shutil.disk_usage

    def small_disk(path):
        return real(path)._replace(free=1000)

    monkeypatch.setattr("hsd.data.cache.shutil.disk_usage", small_disk)
    with pytest.raises(ResourceError, match="on disk") as info:
        FrameCache(tmp_path / "cache").load(ds, SPEC, progress=False)
    assert str(tmp_path / "cache") in str(info.value)
    assert ds.calls == 0


def test_frames_of_an_absurd_size_are_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("HSD_MEMORY_LIMIT", "64M")
    events = make_events(0, 100, (8, 6))
    with pytest.raises(ResourceError, match="frames of 10 x 2 x 4000 x 4000"):
        integrate_frames(events, 10, size=(4000, 4000))
    small = integrate_frames(events, 10, size=(40, 40))  # below the limit: served
    assert int(small.sum()) == 100
