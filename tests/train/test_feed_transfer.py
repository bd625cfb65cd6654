"""The feed's transfer path (``Batch.to`` with non-blocking copies) gives the same values as the
synchronous batch; pinning is refused or skipped where there is no CUDA, never silently wrong."""

import numpy as np
import torch

from hsd.data.augment import Augment
from hsd.train.feed import FrameFeed


def _feed(num_workers: int) -> FrameFeed:
    rng = np.random.default_rng(1)
    frames = rng.poisson(0.5, (20, 4, 2, 8, 8)).astype(np.uint16)
    return FrameFeed(
        frames,
        rng.integers(0, 3, 20),
        np.arange(20),
        batch_size=6,
        student_steps=2,
        shuffle=True,
        seed=5,
        augment=Augment(flip_p=0.5, max_roll=2),
        num_workers=num_workers,
    )


def test_non_blocking_copies_from_threads_equal_the_synchronous_batches():
    reference = list(_feed(0))
    moved = [b.to(torch.device("cpu")) for b in _feed(2)]
    assert len(moved) == len(reference) == 4
    for a, b in zip(reference, moved, strict=True):
        assert torch.equal(a.teacher, b.teacher) and torch.equal(a.student, b.student)
        assert torch.equal(a.labels, b.labels) and np.array_equal(a.index, b.index)
    assert [tuple(a.teacher.shape) for a in reference] == [(4, 6, 2, 8, 8)] * 3 + [(4, 2, 2, 8, 8)]
    assert [tuple(a.student.shape[:2]) for a in reference] == [(2, 6)] * 3 + [(2, 2)]
    assert sum(int(a.teacher.sum()) for a in reference) > 0


def test_pinned_batches_equal_the_unpinned_ones_on_cuda():
    if not torch.cuda.is_available():
        import pytest

        pytest.skip("pinning needs CUDA (the pipeline only asks for it on a CUDA device)")
    plain = list(_feed(0))
    feed = _feed(2)
    feed.pin_memory = True
    for a, b in zip(plain, feed, strict=True):
        assert b.teacher.is_pinned()
        assert torch.equal(a.teacher, b.to(torch.device("cuda")).teacher.cpu())
