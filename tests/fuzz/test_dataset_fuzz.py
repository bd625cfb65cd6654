"""Dataset roots under ``hsd data info`` and a tiny training run: missing and misplaced folders,
empty and unreadable folders, files where folders belong, names that are not UTF-8, damaged and
out-of-range SpikingJelly frames (negative counts, counts >= 2^33, NaN, fractions). Each case is
refused naming the path, or summarised exactly as the reference computed from what was written.
"""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hsd.events.core import validate_events
from hsd.events.formats import write_atis_bin

from .conftest import SEEDS, assert_no_crash, assert_refused, run_hsd

NON_UTF8 = os.fsdecode(b"bad-\xff\xfe")  # a name whose bytes are not UTF-8


def _events(rng: np.random.Generator, n: int):
    return validate_events(
        np.sort(rng.integers(0, 300_000, n)),
        rng.integers(0, 34, n),
        rng.integers(0, 34, n),
        rng.integers(0, 2, n),
        (34, 34),
    )


def make_nmnist(root: Path, rng: np.random.Generator, per_class: int = 1) -> dict[str, int]:
    """A tiny N-MNIST root; returns the event count of every file (key -> count)."""
    counts = {}
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(per_class):
                n = int(rng.integers(5, 60))
                write_atis_bin(folder / f"{j:05d}.bin", _events(rng, n))
                counts[f"{split}/{digit}/{j:05d}.bin"] = n
    return counts


def make_sj(root: Path, rng: np.random.Generator, dtype=np.uint8, classes=("a", "b")) -> Path:
    """A tiny SpikingJelly frame folder ``frames_number_4_split_by_number/<class>/*.npz``."""
    folder = root / "frames_number_4_split_by_number"
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for j in range(6):
            frames = rng.integers(0, 5, (4, 2, 8, 8)).astype(dtype)
            np.savez(folder / c / f"s{j}.npz", frames=frames)
    return folder


def _info(name: str, root: Path):
    return run_hsd(["data", "info", name, "--root", root, "--json"])


@pytest.mark.parametrize("seed", SEEDS)
def test_nmnist_roots(seed, tmp_path, monkeypatch):
    rng = np.random.default_rng(seed)
    good = tmp_path / "good"
    counts = make_nmnist(good, rng)
    result = _info("nmnist", good)
    assert result.rc == 0, result
    summary = json.loads(result.out)
    assert summary["samples_per_split"] == {"train": 10, "test": 10}
    values = sorted(counts.values())
    assert summary["events_per_sample"]["min"] == values[0]
    assert summary["events_per_sample"]["max"] == values[-1]
    assert summary["events_per_sample"]["median"] == float(np.median(values))

    pick = random.Random(seed)
    digit = str(pick.randrange(10))
    faults = []

    def case(label, mutate, named):
        faults.append((label, mutate, named))

    case("missing root", lambda r: None, lambda r: r / "nope")
    case("root is a file", lambda r: (r / "f").write_text("x"), lambda r: r / "f")
    case("no Train/", lambda r: _rmtree(r / "Train"), lambda r: r)
    case("a missing class", lambda r: _rmtree(r / "Test" / digit), lambda r: r / "Test" / digit)
    case("an empty class", lambda r: _empty(r / "Train" / digit), lambda r: r / "Train" / digit)
    case(
        "a class that is a file",
        lambda r: (_rmtree(r / "Train" / digit), (r / "Train" / digit).write_text("x")),
        lambda r: r / "Train" / digit,
    )
    case(
        "a name that is not UTF-8",
        lambda r: (r / "Train" / digit / f"{NON_UTF8}.bin").write_bytes(b""),
        lambda r: "bad-\\xff\\xfe",
    )
    case(
        "a truncated recording",
        lambda r: _truncate(r / "Test" / digit / "00000.bin"),
        lambda r: r / "Test" / digit / "00000.bin",
    )
    for label, mutate, named in faults:
        root = tmp_path / label.replace(" ", "-")
        make_nmnist(root, np.random.default_rng(seed))
        mutate(root)
        target = root / "nope" if label == "missing root" else root
        target = root / "f" if label == "root is a file" else target
        message = assert_refused(_info("nmnist", target), named(root))
        assert message, label


def test_an_unreadable_folder_is_named(tmp_path, monkeypatch):
    root = tmp_path / "root"
    make_nmnist(root, np.random.default_rng(0))
    locked = root / "Train" / "3"
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    message = assert_refused(_info("nmnist", root), locked)
    assert "cannot list the folder" in message


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def _empty(path: Path) -> None:
    for f in path.iterdir():
        f.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2])


def _zip_entry(path: Path, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("frames.npy", data)


def _npy_with_shape(real: tuple[int, ...], declared: tuple[int, ...]) -> bytes:
    """A ``.npy`` whose header declares ``declared`` but whose data is ``real`` (uint8 zeros)."""
    buf = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": declared}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + bytes(int(np.prod(real)))


@pytest.mark.parametrize("seed", SEEDS)
def test_sj_frames_values_are_refused_never_wrapped(seed, tmp_path):
    rng = np.random.default_rng(seed)
    good = make_sj(tmp_path / "good", rng)
    result = _info("sj-frames", good)
    assert result.rc == 0, result
    totals = sorted(
        int(np.load(f)["frames"].astype(np.int64).sum()) for f in sorted(good.rglob("*.npz"))
    )
    summary = json.loads(result.out)
    assert summary["events_per_sample"]["min"] == totals[0]
    assert summary["events_per_sample"]["max"] == totals[-1]
    shape = (4, 2, 8, 8)
    bad_frames = {
        "negative counts": (-rng.integers(1, 100, shape)).astype(np.int16),
        "counts >= 2^33": np.full(shape, 2**33 + int(rng.integers(0, 9)), dtype=np.int64),
        "counts = 2^32": np.full(shape, 2**32, dtype=np.int64),
        "NaN": np.full(shape, np.nan, dtype=np.float32),
        "inf in float16": np.full(shape, np.inf, dtype=np.float16),
        "fractions": rng.random(shape).astype(np.float32) + 0.25,
        "negative floats": -np.ones(shape, dtype=np.float64),
        "3-D frames": np.zeros((4, 8, 8), dtype=np.uint8),
        "another shape": np.zeros((4, 2, 9, 9), dtype=np.uint8),
        "strings": np.array(["a", "b"]),
    }
    for label, frames in bad_frames.items():
        root = tmp_path / label.replace(" ", "-").replace("^", "")
        folder = make_sj(root, np.random.default_rng(seed))
        victim = folder / "b" / f"s{int(rng.integers(0, 6))}.npz"
        np.savez(victim, frames=frames)
        assert_refused(_info("sj-frames", folder), victim)
    for label, write in {
        "no frames key": lambda p: np.savez(p, other=np.zeros(3)),
        "not a zip": lambda p: p.write_bytes(b"not an npz at all"),
        "empty file": lambda p: p.write_bytes(b""),
        # a zip whose frames.npy is not a .npy (numpy handed back bytes: AttributeError)
        "frames.npy not an array": lambda p: _zip_entry(p, b"hello"),
        # a .npy header declaring far more than the entry holds (numpy allocated it first)
        "forged shape": lambda p: _zip_entry(p, _npy_with_shape((4, 2, 8, 8), (99999999, 2, 8, 8))),
        "negative shape": lambda p: _zip_entry(p, _npy_with_shape((4, 2, 8, 8), (-1, 2, 8, 8))),
    }.items():
        root = tmp_path / label.replace(" ", "-")
        folder = make_sj(root, np.random.default_rng(seed))
        victim = folder / "a" / "s0.npz"
        write(victim)
        assert_refused(_info("sj-frames", folder), victim)
    root = tmp_path / "non-utf8-class"
    folder = make_sj(root, np.random.default_rng(seed), classes=("a", NON_UTF8))
    assert_refused(_info("sj-frames", folder), "bad-\\xff\\xfe")


def test_a_tiny_training_run_refuses_a_bad_sample_and_trains_on_good_ones(tmp_path):
    sets = [
        "data.dataset=sj-frames",
        "data.frames=4",
        "distill.steps=2",
        "baseline.steps=2",
        "model.width=0.125",
        "data.batch_size=4",
        "teacher.optim.epochs=1",
        "progress=false",
        "threads=1",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    good = make_sj(tmp_path / "good", np.random.default_rng(0))
    argv = ["teacher", *[a for s in (*sets, f"data.root={good}") for a in ("--set", s)]]
    result = run_hsd([*argv, "--out", tmp_path / "run"])
    assert_no_crash(result)
    assert result.rc == 0, result
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    for label, frames in {
        "negative": -np.ones((4, 2, 8, 8), dtype=np.int32),
        "2^33": np.full((4, 2, 8, 8), 2**33, dtype=np.int64),
    }.items():
        bad = make_sj(tmp_path / label, np.random.default_rng(0))
        victim = bad / "a" / "s3.npz"
        np.savez(victim, frames=frames)
        argv = ["teacher", *[a for s in (*sets, f"data.root={bad}") for a in ("--set", s)]]
        assert_refused(run_hsd([*argv, "--out", tmp_path / f"run-{label}"]), victim)
