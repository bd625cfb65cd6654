"""Helpers for the dataset tests: synthetic event streams and a tiny in-memory dataset."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hsd.data.base import EventDataset, Sample
from hsd.events.core import Events, validate_events
from hsd.events.formats import write_atis_bin


def make_events(seed: int, n: int, sensor_size: tuple[int, int] = (34, 34)) -> Events:
    """``n`` random events on ``sensor_size`` with sorted timestamps in [0, 300 ms)."""
    rng = np.random.default_rng(seed)
    width, height = sensor_size
    return validate_events(
        np.sort(rng.integers(0, 300_000, n)),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, 2, n),
        sensor_size,
    )


class FakeDataset(EventDataset):
    """``counts[c]`` samples of class ``c``, each a small file ``c<c>/s<j>.dat``; sample ``j`` of a
    class is official test when ``official`` and ``j % 4 == 0``. ``load_events`` counts its calls
    and returns ``make_events(index, 20 + index)`` on an 8x6 sensor."""

    name = "fake"
    published_at = "nowhere"
    layout = "<root>/c<class>/s<sample>.dat\n"

    def __init__(
        self, root: Path, counts: list[int], official: bool = False, listing_seed: int | None = None
    ) -> None:
        samples = []
        for c, n in enumerate(counts):
            (root / f"c{c}").mkdir(parents=True, exist_ok=True)
            for j in range(n):
                path = root / f"c{c}" / f"s{j:03d}.dat"
                if not path.exists():
                    path.write_bytes(b"x" * (10 + j))
                split = ("test" if j % 4 == 0 else "train") if official else None
                samples.append(Sample(f"c{c}/s{j:03d}.dat", c, split, path))
        if listing_seed is not None:  # as if the file system listed the files in another order
            random.Random(listing_seed).shuffle(samples)
        self.calls = 0
        super().__init__(root, [f"c{c}" for c in range(len(counts))], (8, 6), samples, official)

    def load_events(self, index: int) -> Events:
        self.calls += 1
        return make_events(index, 20 + index, self.sensor_size)


@pytest.fixture
def fake_dataset(tmp_path) -> Callable[..., FakeDataset]:
    def build(
        counts: list[int],
        official: bool = False,
        root: Path | None = None,
        listing_seed: int | None = None,
    ) -> FakeDataset:
        folder = tmp_path / "fake" if root is None else root
        return FakeDataset(folder, counts, official, listing_seed)

    return build


@pytest.fixture
def events_factory() -> Callable[..., Events]:
    return make_events


@pytest.fixture
def nmnist_root(tmp_path) -> tuple[Path, dict[str, Events]]:
    """A fake N-MNIST folder: 2 train and 1 test .bin per digit; returns (root, key -> events)."""
    root = tmp_path / "NMNIST"
    written = {}
    for folder, per_class in (("Train", 2), ("Test", 1)):
        for digit in range(10):
            (root / folder / str(digit)).mkdir(parents=True)
            for j in range(per_class):
                events = make_events(100 * digit + j, 30 + digit)
                key = f"{folder}/{digit}/{j:05d}.bin"
                write_atis_bin(root / key, events)
                written[key] = events
    return root, written
