"""PyTorch views of cached frame arrays: a ``Dataset`` of samples and a ``DataLoader`` factory.

Samples are ``[N, P, H, W]`` float32 and batches ``[B, N, P, H, W]`` (sample-first), or, with
``make_loader(..., time_first=True)``, time-first ``[N, B, P, H, W]``: what hsd's networks take.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hsd.data.augment import Augment
from hsd.data.cache import FrameArrays

__all__ = ["FrameDataset", "make_loader"]


class FrameDataset(Dataset):
    """Item ``i``: ``(frames float32 [N, P, H, W], label int)`` of sample ``indices[i]``.

    With ``augment``, item ``i`` of epoch ``e`` is augmented with a generator seeded by
    ``(seed, e, i)``: reproducible, and the same with any number of loader workers. Call
    :meth:`set_epoch` to draw new transforms each epoch.
    """

    def __init__(
        self,
        arrays: FrameArrays,
        indices: np.ndarray | list[int] | None = None,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        self.arrays = arrays
        n = len(arrays)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(
                f"indices must lie in [0, {n}), got [{self.indices.min()}, {self.indices.max()}]"
            )
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        position = int(self.indices[i])
        frames = torch.from_numpy(np.array(self.arrays.frames[position], dtype=np.float32))
        if self.augment is not None:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 1_000_003 + int(i)
            )
            frames = self.augment(frames, generator)
        return frames, int(self.arrays.labels[position])


def make_loader(
    arrays: FrameArrays,
    indices: np.ndarray | list[int] | None,
    batch_size: int,
    shuffle: bool = False,
    augment: Augment | None = None,
    seed: int = 0,
    num_workers: int = 0,
    sampler: Sampler | None = None,
    time_first: bool = False,
) -> DataLoader:
    """Batches ``(frames float32 [B, N, P, H, W], labels int64 [B])`` of ``indices``
    (``time_first=True``: frames ``[N, B, P, H, W]``, ready for ``model(frames)``; frames hold
    event counts per pixel and polarity). ``indices=None`` means every sample of ``arrays``.

    ``shuffle`` draws the order from a generator seeded with ``seed`` (ignored when a
    ``sampler``, e.g. a ``DistributedSampler``, decides the order).
    """
    dataset = FrameDataset(arrays, indices, augment=augment, seed=seed)
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=False,
        collate_fn=_time_first_collate if time_first else None,
    )


def _time_first_collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(frames [N, P, H, W], label)] * B`` -> ``(frames [N, B, P, H, W], labels [B])``."""
    frames = torch.stack([f for f, _ in items], dim=1)
    return frames, torch.tensor([int(y) for _, y in items], dtype=torch.int64)
