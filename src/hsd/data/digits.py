"""``digits-dvs``, the embedded default dataset: emulated by hsd's DVS emulator from scikit-learn
digits, not recorded.

scikit-learn's 1,797 handwritten digits (8x8, 16 grey levels, ``sklearn.datasets.load_digits``)
are turned into 34x34 N-MNIST-like event streams by :class:`hsd.events.emulator.DVSEmulator`,
sample ``i`` with seed ``seed * 1_000_003 + i``. The streams are generated once and stored as
one ``.npz`` (all events concatenated plus offsets) named after the emulator parameters, the seed
and a format version, under ``<cache dir>/digits-dvs/`` (or ``root`` when given). The same
parameters give the same events on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hsd.data.base import EventDataset, Sample, _sha256_json
from hsd.data.paths import cache_dir
from hsd.data.registry import register
from hsd.errors import DatasetError
from hsd.events.core import Events
from hsd.events.emulator import DVSEmulator
from hsd.progress import bars_enabled

__all__ = ["DigitsDVS"]

FORMAT_VERSION = 1
_SEED_STRIDE = 1_000_003
_BATCH = 256


@register("digits-dvs")
class DigitsDVS(EventDataset):
    """scikit-learn's 1,797 digits as event streams, emulated by hsd's DVS emulator from
    scikit-learn digits, not recorded. 34x34, 10 classes, no official split.

    ``root``: folder of the generated events file (default ``<cache dir>/digits-dvs``);
    ``seed``: base seed of the per-sample emulator seeds; ``emulator``: its parameters.
    """

    emulated = True
    needs_root = False
    published_at = "scikit-learn (sklearn.datasets.load_digits), emulated locally by hsd"
    layout = "nothing to download: generated into <cache dir>/digits-dvs/ on first use\n"
    description = "emulated by hsd's DVS emulator from scikit-learn digits, not recorded"

    def __init__(
        self, root: Path | None = None, seed: int = 0, emulator: DVSEmulator | None = None
    ) -> None:
        from sklearn.datasets import load_digits

        self.emulator = DVSEmulator() if emulator is None else emulator
        self.seed = int(seed)
        folder = cache_dir() / "digits-dvs" if root is None else root
        params = {"emulator": asdict(self.emulator), "seed": self.seed, "format": FORMAT_VERSION}
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        self.params = params
        self.events_path = folder / f"events-v{FORMAT_VERSION}-{digest}.npz"
        digits = load_digits()
        self._images = np.asarray(digits.images, dtype=np.float64) / 16.0
        targets = np.asarray(digits.target, dtype=np.int64)
        samples = [
            Sample(f"digits/{i:04d}", int(label), None, self.events_path)
            for i, label in enumerate(targets)
        ]
        self._store: dict[str, np.ndarray] | None = None
        width, height = self.emulator.sensor_size
        classes = [str(d) for d in range(10)]
        super().__init__(folder, classes, (width, height), samples, has_official_split=False)

    def prepare(self, progress: bool = True) -> None:
        """Generate (or read) the events file now."""
        self._events_store(progress)

    def fingerprint(self) -> str:
        """sha256 of the name, emulator parameters, seed, format version, keys and labels
        (the events follow from them; no file is needed)."""
        return _sha256_json([self.name, self.params, self.keys, self.labels.tolist()])

    def load_events(self, index: int) -> Events:
        store = self._events_store()
        lo, hi = store["offsets"][index], store["offsets"][index + 1]
        return Events(
            store["t"][lo:hi],
            store["x"][lo:hi],
            store["y"][lo:hi],
            store["p"][lo:hi],
            self.sensor_size,
        )

    def event_counts(self) -> np.ndarray:
        """Events per sample, ``int64 [S]``."""
        return np.diff(self._events_store()["offsets"])

    def _events_store(self, progress: bool = True) -> dict[str, np.ndarray]:
        """The concatenated events (``t, x, y, p``) and ``offsets [S+1]``, generated if needed."""
        if self._store is None:
            if not self.events_path.is_file():
                self._generate(progress)
            try:
                with np.load(self.events_path) as npz:
                    store = {k: npz[k] for k in ("t", "x", "y", "p", "offsets")}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                raise DatasetError(
                    f"{self.name}: {self.events_path} is unreadable ({exc}); delete it to "
                    "regenerate"
                ) from None
            if store["offsets"].shape != (len(self) + 1,):
                raise DatasetError(
                    f"{self.name}: {self.events_path} does not hold {len(self)} samples"
                )
            self._store = store
        return self._store

    def _generate(self, progress: bool) -> None:
        parts: list[Events] = []
        n = len(self._images)
        with tqdm(
            total=n, desc="emulating digits-dvs", unit="sample", disable=not bars_enabled(progress)
        ) as bar:
            for start in range(0, n, _BATCH):
                stop = min(start + _BATCH, n)
                seeds = [self.seed * _SEED_STRIDE + i for i in range(start, stop)]
                parts += self.emulator.emulate_batch(self._images[start:stop], seeds)
                bar.update(stop - start)
        offsets = np.zeros(n + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(e) for e in parts])
        joined = Events.concatenate(parts)
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.events_path.with_name(f".{self.events_path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, t=joined.t, x=joined.x, y=joined.y, p=joined.p, offsets=offsets)
        os.replace(tmp, self.events_path)
