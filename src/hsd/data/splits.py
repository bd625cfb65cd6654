"""Split manifests: which sample keys are train, validation and test, reproducibly.

One place decides the split of every run:

* a dataset with an official split keeps it (its test set is the official test set);
* otherwise each class is split ``1 - test_fraction`` / ``test_fraction`` (90/10 by default);
* the validation set is carved per class from the training set (``val_fraction`` of it).

"Seeded permutation" here means: the keys of a class are ordered by
``sha256(f"{seed}/{purpose}/{key}")``. That order depends only on the seed and the key strings,
not on the file-listing order, the numpy version or the platform, so the same dataset and
parameters give a byte-identical manifest on any machine. A class of ``n`` samples gives
``floor(fraction * n + 0.5)`` of them to the smaller part, at least 1 and at most ``n - 1``
(none for a fraction of 0 or a single-sample class).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from hsd.data.base import EventDataset, _sha256_json
from hsd.errors import ConfigError, DatasetError

__all__ = ["Manifest", "kfold_manifests", "make_manifest"]

Method = Literal["official", "stratified", "kfold"]


@dataclass(frozen=True)
class Manifest:
    """A split of a dataset by sample key. ``hash``: sha256 of the canonical JSON of every other
    field, computed on construction."""

    dataset: str
    fingerprint: str
    method: Method
    seed: int
    val_fraction: float
    test_fraction: float | None
    folds: int | None
    fold: int | None
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "hash", _sha256_json(self._content()))

    def _content(self) -> dict:
        content = asdict(self)
        del content["hash"]
        for name in ("train", "val", "test"):
            content[name] = list(content[name])
        return content

    def to_dict(self) -> dict:
        return {**self._content(), "hash": self.hash}

    def save(self, path: str | Path) -> Path:
        """Write the manifest as JSON (sorted keys, so equal manifests give equal bytes)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", "utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest written by :meth:`save`; a hash that does not match its content
        raises :class:`DatasetError`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text("utf-8"))
            stored = data.pop("hash")
            manifest = cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: not a split manifest ({exc})") from None
        if manifest.hash != stored:
            raise DatasetError(f"{path}: manifest content does not match its hash (edited?)")
        return manifest

    def matches(self, dataset: EventDataset) -> bool:
        """True when ``dataset`` has the name and fingerprint this manifest was made from."""
        return dataset.name == self.dataset and dataset.fingerprint() == self.fingerprint

    def indices(self, dataset: EventDataset) -> dict[str, np.ndarray]:
        """Positions in ``dataset.samples`` of each split, ``int64`` arrays keyed
        ``train``/``val``/``test``. Keys missing from the dataset raise :class:`DatasetError`."""
        position = {s.key: i for i, s in enumerate(dataset.samples)}
        result = {}
        for name in ("train", "val", "test"):
            keys = getattr(self, name)
            missing = [k for k in keys if k not in position]
            if missing:
                raise DatasetError(
                    f"{dataset.name}: {len(missing)} {name} keys of the manifest are not in "
                    f"the dataset at {dataset.root} (first: {missing[0]!r})"
                )
            result[name] = np.array([position[k] for k in keys], dtype=np.int64)
        return result


def _portion(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(max(math.floor(fraction * n + 0.5), 1), n - 1)


def _seeded_order(keys: list[str], seed: int, purpose: str) -> list[str]:
    def rank(key: str) -> str:
        return hashlib.sha256(f"{seed}/{purpose}/{key}".encode()).hexdigest()

    return sorted(keys, key=lambda k: (rank(k), k))


def _by_class(dataset: EventDataset, keys: set[str] | None = None) -> list[list[str]]:
    """Sorted keys of each class (restricted to ``keys`` when given)."""
    groups: list[list[str]] = [[] for _ in dataset.classes]
    for s in dataset.samples:
        if keys is None or s.key in keys:
            groups[s.label].append(s.key)
    return [sorted(g) for g in groups]


def _carve(groups: list[list[str]], fraction: float, seed: int, purpose: str):
    """Split every class: ``(rest, taken)``, ``taken`` being ``_portion`` of each class."""
    rest, taken = [], []
    for keys in groups:
        order = _seeded_order(keys, seed, purpose)
        k = _portion(len(order), fraction)
        taken += order[:k]
        rest += order[k:]
    return sorted(rest), sorted(taken)


def _check_fraction(name: str, value: float, allow_zero: bool) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        raise ConfigError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1), got {value}")


def make_manifest(
    dataset: EventDataset, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> Manifest:
    """The train/val/test split of ``dataset`` (see the module docstring).

    ``test_fraction`` is used only when the dataset has no official split.
    """
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    if dataset.has_official_split:
        train_keys = {s.key for s in dataset.samples if s.split == "train"}
        test = sorted(s.key for s in dataset.samples if s.split == "test")
        method: Method = "official"
        test_fraction_used = None
        pool = _by_class(dataset, train_keys)
    else:
        _check_fraction("test_fraction", test_fraction, allow_zero=False)
        rest, test = _carve(_by_class(dataset), test_fraction, seed, "test")
        method = "stratified"
        test_fraction_used = float(test_fraction)
        pool = _by_class(dataset, set(rest))
    train, val = _carve(pool, val_fraction, seed, "val")
    if not train or not test:
        raise DatasetError(
            f"{dataset.name}: the split of {len(dataset)} samples leaves an empty "
            f"{'train' if not train else 'test'} set"
        )
    return Manifest(
        dataset.name,
        dataset.fingerprint(),
        method,
        int(seed),
        float(val_fraction),
        test_fraction_used,
        None,
        None,
        train,
        val,
        test,
    )


def kfold_manifests(
    dataset: EventDataset,
    k: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    pool: Literal["all", "train"] = "all",
) -> list[Manifest]:
    """``k`` stratified folds: manifest ``i`` tests on fold ``i`` and trains on the others, its
    validation set carved per class from its training set.

    ``pool="all"`` folds every sample (an official split is ignored); ``pool="train"`` folds only
    the official training samples. Within each class, keys in seeded order are dealt to folds
    ``0, 1, ..., k-1, 0, ...`` continuing from class to class, so every class is spread evenly
    (fold sizes per class differ by at most one) and the folds' totals too.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")
    _check_fraction("val_fraction", val_fraction, allow_zero=True)
    if pool == "all":
        groups = _by_class(dataset)
    elif pool == "train":
        if not dataset.has_official_split:
            raise ConfigError(f"pool='train' needs an official split; {dataset.name} has none")
        groups = _by_class(dataset, {s.key for s in dataset.samples if s.split == "train"})
    else:
        raise ConfigError(f"pool must be 'all' or 'train', got {pool!r}")
    if sum(map(len, groups)) < k:
        raise DatasetError(f"{dataset.name}: {len(dataset)} samples cannot make {k} folds")
    folds: list[list[str]] = [[] for _ in range(k)]
    dealt = 0
    for keys in groups:
        for key in _seeded_order(keys, seed, "kfold"):
            folds[dealt % k].append(key)
            dealt += 1
    fingerprint = dataset.fingerprint()
    manifests = []
    for i in range(k):
        test = set(folds[i])
        rest = {key for j, fold in enumerate(folds) if j != i for key in fold}
        train, val = _carve(_by_class(dataset, rest), val_fraction, seed, f"val{i}")
        manifests.append(
            Manifest(
                dataset.name,
                fingerprint,
                "kfold",
                int(seed),
                float(val_fraction),
                None,
                k,
                i,
                train,
                val,
                sorted(test),
            )
        )
    return manifests
