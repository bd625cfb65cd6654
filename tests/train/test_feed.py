import numpy as np
import pytest
import torch

from hsd.train.feed import FrameFeed


def _arrays(samples=7, n=4):
    frames = np.arange(samples * n * 2 * 3 * 3, dtype=np.uint16).reshape(samples, n, 2, 3, 3)
    labels = np.arange(samples) % 3
    return frames, labels


def test_prefix_batches_are_time_first_and_cover_indices():
    frames, labels = _arrays()
    feed = FrameFeed(frames, labels, np.array([5, 1, 3]), batch_size=2, student_steps=2)
    batches = list(feed)
    assert len(batches) == len(feed) == 2
    b = batches[0]
    assert b.teacher.shape == (4, 2, 2, 3, 3)
    assert b.student.shape == (2, 2, 2, 3, 3)
    assert torch.equal(b.teacher[:, 0], torch.from_numpy(frames[5]).float())
    assert torch.equal(b.student, b.teacher[:2])
    assert b.labels.tolist() == [labels[5], labels[1]]
    assert sorted(np.concatenate([x.index for x in batches]).tolist()) == [1, 3, 5]


def test_rebin_uses_the_second_array():
    frames, labels = _arrays()
    rebinned = frames[:, :1] * 0 + 7
    feed = FrameFeed(
        frames, labels, np.arange(7), batch_size=4, student_steps=1, student_frames=rebinned
    )
    b = next(iter(feed))
    assert b.student.shape == (1, 4, 2, 3, 3)
    assert torch.all(b.student == 7)


def test_shuffle_is_seeded_per_epoch():
    frames, labels = _arrays()
    feed = FrameFeed(frames, labels, np.arange(7), batch_size=7, shuffle=True, seed=3)
    first = next(iter(feed)).index.tolist()
    assert next(iter(feed)).index.tolist() == first
    feed.set_epoch(1)
    assert next(iter(feed)).index.tolist() != first
    assert sorted(first) == list(range(7))


def test_augmentation_is_shared_by_teacher_and_student_and_resumable():
    frames, labels = _arrays()

    def flip_some(x, generator):
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        x = x.clone()
        x[flip] = x[flip].flip(-1)
        return x

    rebinned = frames[:, :2].copy()
    feed = FrameFeed(
        frames,
        labels,
        np.arange(7),
        batch_size=2,
        student_steps=2,
        student_frames=rebinned,
        augment=flip_some,
        shuffle=True,
        seed=1,
    )
    whole = list(feed)
    for b in whole:
        assert torch.equal(b.student, b.teacher[:2])  # same transform for both
    feed.set_epoch(0, skip_batches=2)
    resumed = list(feed)
    assert len(resumed) == len(whole) - 2
    for a, b in zip(whole[2:], resumed, strict=True):
        assert torch.equal(a.teacher, b.teacher)


def test_shards_partition_the_epoch():
    frames, labels = _arrays()
    seen = []
    for rank in range(2):
        feed = FrameFeed(
            frames, labels, np.arange(7), batch_size=3, shuffle=True, seed=5, shard=(rank, 2)
        )
        assert feed.num_samples == 4
        seen += [int(i) for b in feed for i in b.index]
    assert set(seen) == set(range(7))


def test_prefix_longer_than_frames_is_refused():
    frames, labels = _arrays(n=4)
    with pytest.raises(ValueError, match="5 steps requested but only 4 frames"):
        FrameFeed(frames, labels, np.arange(3), batch_size=2, student_steps=5)


def _batches_equal(a, b):
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.index, y.index)
        assert torch.equal(x.labels, y.labels)
        for u, v in ((x.teacher, y.teacher), (x.student, y.student)):
            assert (u is None) == (v is None)
            if u is not None:
                assert torch.equal(u, v)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_running_ahead_yields_the_same_batches_bit_for_bit(workers):
    from hsd.data import Augment

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 9, (23, 4, 2, 8, 8)).astype(np.uint16)
    labels = np.arange(23) % 5
    rebinned = rng.integers(0, 9, (23, 2, 2, 8, 8)).astype(np.uint16)
    kwargs = dict(
        batch_size=4,
        student_steps=2,
        student_frames=rebinned,
        shuffle=True,
        seed=11,
        augment=Augment(flip_p=0.5, max_roll=2, crop=(6, 5)),
    )
    sync = FrameFeed(frames, labels, np.arange(23), **kwargs)
    ahead = FrameFeed(frames, labels, np.arange(23), num_workers=workers, **kwargs)
    for epoch in range(3):
        sync.set_epoch(epoch)
        ahead.set_epoch(epoch)
        _batches_equal(list(sync), list(ahead))
    # resume in the middle of an epoch: the remaining batches of the whole epoch
    sync.set_epoch(1)
    whole = list(sync)
    ahead.set_epoch(1, skip_batches=4)
    _batches_equal(whole[4:], list(ahead))


def test_abandoned_ahead_iterator_stops_cleanly():
    frames, labels = _arrays(samples=40)
    feed = FrameFeed(frames, labels, np.arange(40), batch_size=2, num_workers=2)
    it = iter(feed)
    first = next(it)
    it.close()
    assert first.index.tolist() == [0, 1]
    assert len(list(feed)) == 20


def test_num_workers_must_be_a_count():
    frames, labels = _arrays()
    with pytest.raises(ValueError, match="num_workers"):
        FrameFeed(frames, labels, np.arange(7), batch_size=2, num_workers=-1)
