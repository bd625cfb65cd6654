"""Batches for the engine, drawn straight from cached frame arrays (no per-sample collation).

A :class:`FrameFeed` yields :class:`Batch` objects holding **time-first** float tensors: the
transposition from the datasets' ``[B, N, P, H, W]`` to the networks' ``[N, B, P, H, W]`` happens
here, once. It serves the teacher's N frames and the student's T frames of the same samples:

* ``prefix`` protocol: the student's frames are the first T of the teacher's N frames;
* ``rebin`` protocol: the student's frames come from a second array, the same streams re-cut into T
  frames (same samples, same order).

Augmentation (train only) is applied once to the teacher and student frames together, so both
networks see the same flipped/rolled sample.

**Running ahead.** With ``num_workers > 0`` the batches are built by that many background
threads, up to ``2 x num_workers`` batches ahead of the training loop, and yielded in order. A
thread, not a process: building a batch is numpy fancy indexing, a float conversion and the
augmentation's gather, which all release the GIL, and threads share the memory-mapped cache
without pickling (measured by ``hsd bench feed``). Every batch draws its augmentation from its
own generator seeded by ``(seed, epoch, batch)``, so the batches are bit for bit those of the
synchronous path (``num_workers = 0``) whatever the number of workers, and a resumed epoch
(``skip_batches``) yields the same remaining batches. ``pin_memory`` pins each batch's tensors
(for CUDA) in the worker, so :meth:`Batch.to` copies them without blocking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

__all__ = ["Batch", "FrameFeed"]


@dataclass
class Batch:
    """One batch. ``teacher``: ``[N, B, P, H, W]`` or None; ``student``: ``[T, B, P, H, W]`` or
    None; ``labels``: ``[B]`` int64; ``index``: ``[B]`` positions in the frame arrays."""

    teacher: torch.Tensor | None
    student: torch.Tensor | None
    labels: torch.Tensor
    index: np.ndarray

    def to(self, device: torch.device) -> Batch:
        def move(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(device, non_blocking=True)

        return Batch(
            move(self.teacher),
            move(self.student),
            self.labels.to(device, non_blocking=True),
            self.index,
        )

    def pin_memory(self) -> Batch:
        """The same batch with its tensors in page-locked memory (for non-blocking copies)."""

        def pin(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.pin_memory()

        return Batch(pin(self.teacher), pin(self.student), pin(self.labels), self.index)


class FrameFeed:
    """Iterate over ``indices`` of cached frame arrays in batches.

    Args:
        frames: ``[S, N, P, H, W]`` integer counts (numpy, may be memory-mapped): the teacher's
            frames, also the student's under ``prefix``.
        labels: ``[S]`` class indices.
        indices: which samples (positions into ``frames``) this feed serves.
        teacher: yield the N-frame tensor (needed by the teacher and for distillation).
        student_steps: T; yield the student tensor of T steps (0 = no student tensor).
        student_frames: ``[S, T, P, H, W]`` for ``rebin``; None means ``prefix`` (first T frames).
        shuffle: new permutation each epoch, from ``seed`` and the epoch (see :meth:`set_epoch`).
        augment: ``f(x [B, F, P, H, W], generator) -> x``, train only.
        shard: ``(rank, world_size)``: this process serves every ``world_size``-th sample of the
            (shuffled) order, padded by wrapping so every rank has the same number of batches.
        num_workers: background threads building batches ahead (0 = in the loop, synchronous).
        pin_memory: pin every batch's tensors (only useful, and only allowed, with CUDA).
    """

    def __init__(
        self,
        frames: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        *,
        batch_size: int,
        teacher: bool = True,
        student_steps: int = 0,
        student_frames: np.ndarray | None = None,
        shuffle: bool = False,
        seed: int = 0,
        augment: AugmentFn | None = None,
        shard: tuple[int, int] = (0, 1),
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        if student_frames is None and student_steps > frames.shape[1]:
            raise ValueError(
                f"prefix protocol: {student_steps} steps requested but only "
                f"{frames.shape[1]} frames per sample"
            )
        if student_frames is not None and student_frames.shape[1] != student_steps:
            raise ValueError("rebin protocol: student_frames must have student_steps frames")
        self.frames = frames
        self.labels = np.asarray(labels, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.teacher = teacher
        self.student_steps = int(student_steps)
        self.student_frames = student_frames
        self.shuffle = shuffle
        self.seed = int(seed)
        self.augment = augment
        self.rank, self.world_size = shard
        self.epoch = 0
        self.skip_batches = 0
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Choose the epoch's permutation; ``skip_batches`` resumes in the middle of an epoch."""
        self.epoch = int(epoch)
        self.skip_batches = int(skip_batches)

    def order(self) -> np.ndarray:
        """This rank's sample positions for the current epoch, in iteration order."""
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = order[rng.permutation(len(order))]
        if self.world_size > 1:
            per_rank = -(-len(order) // self.world_size)
            padded = np.resize(order, per_rank * self.world_size)
            order = padded[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self.order())
        return -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.order())

    def __iter__(self) -> Iterator[Batch]:
        order = self.order()
        jobs = [
            (b, order[start : start + self.batch_size])
            for b, start in enumerate(range(0, len(order), self.batch_size))
            if b >= self.skip_batches
        ]
        self.skip_batches = 0
        if self.num_workers == 0:
            for b, index in jobs:
                yield self._build(b, index)
            return
        yield from self._ahead(jobs)

    def _ahead(self, jobs: list[tuple[int, np.ndarray]]) -> Iterator[Batch]:
        """Batches of ``jobs`` built by the worker threads, at most ``2 x num_workers`` ahead,
        yielded in order; abandoning the iterator cancels what is not started."""
        pending: deque[Future[Batch]] = deque()
        todo = iter(jobs)
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="hsd-feed") as pool:
            try:
                for job in todo:
                    pending.append(pool.submit(self._build, *job))
                    if len(pending) >= 2 * self.num_workers:
                        break
                while pending:
                    batch = pending.popleft().result()
                    job = next(todo, None)
                    if job is not None:
                        pending.append(pool.submit(self._build, *job))
                    yield batch
            finally:
                for future in pending:
                    future.cancel()

    def _build(self, b: int, index: np.ndarray) -> Batch:
        # One generator per batch, seeded by (seed, epoch, batch): augmentation is the same
        # whether an epoch runs whole or resumes in the middle, and in any worker.
        generator = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch) * 1_000_003 + b
        )
        batch = self._make_batch(index, generator)
        return batch.pin_memory() if self.pin_memory else batch

    def _make_batch(self, index: np.ndarray, generator: torch.Generator) -> Batch:
        sorted_index = np.sort(index)  # contiguous-ish reads from memory-mapped caches
        restore = np.argsort(np.argsort(index))
        x = torch.from_numpy(np.ascontiguousarray(self.frames[sorted_index][restore])).float()
        n = x.shape[1]
        parts = [x]
        if self.student_frames is not None:
            s = self.student_frames[sorted_index][restore]
            parts.append(torch.from_numpy(np.ascontiguousarray(s)).float())
        if self.augment is not None:
            joined = self.augment(torch.cat(parts, dim=1), generator)
            parts = [joined[:, :n], joined[:, n:]] if len(parts) == 2 else [joined]
        teacher = parts[0].transpose(0, 1).contiguous() if self.teacher else None
        student = None
        if self.student_steps:
            if self.student_frames is not None:
                student = parts[1].transpose(0, 1).contiguous()
            else:
                student = parts[0][:, : self.student_steps].transpose(0, 1).contiguous()
        labels = torch.from_numpy(self.labels[index])
        return Batch(teacher, student, labels, index)
