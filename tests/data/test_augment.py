import pytest
import torch

from hsd.data import Augment


def batch(seed: int = 0, shape=(3, 4, 2, 6, 7)) -> torch.Tensor:
    return torch.randint(0, 5, shape, generator=torch.Generator().manual_seed(seed)).float()


def test_flip_twice_is_identity_and_flips_the_width_axis():
    x = batch()
    flip = Augment(flip_p=1.0, max_roll=0)
    once = flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(once, x.flip(-1))
    assert torch.equal(flip(once, torch.Generator().manual_seed(1)), x)


def test_roll_preserves_counts_and_is_the_same_for_every_frame_of_a_sample():
    x = batch()[:, :1].expand(-1, 4, -1, -1, -1).contiguous()  # 4 identical frames per sample
    out = Augment(flip_p=0.0, max_roll=3)(x, torch.Generator().manual_seed(5))
    assert torch.equal(out.sum(dim=(-2, -1)), x.sum(dim=(-2, -1)))
    assert all(torch.equal(out[:, 0], out[:, i]) for i in range(4))
    assert not torch.equal(out, x)


def test_disabled_augment_is_identity():
    x = batch()
    off = Augment(flip_p=0.0, max_roll=0)
    assert not off.active and off(x) is x
    assert torch.equal(Augment(flip_p=0.0, max_roll=0, crop=None)(x[0]), x[0])


def test_same_generator_seed_gives_the_same_transform_and_single_samples_work():
    aug = Augment(flip_p=0.5, max_roll=2, crop=(4, 5))
    x = batch(1)
    a = aug(x, torch.Generator().manual_seed(9))
    b = aug(x, torch.Generator().manual_seed(9))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    assert aug(x[0], torch.Generator().manual_seed(9)).shape == x[0].shape


def test_crop_takes_a_window_and_resizes_it_back():
    x = torch.arange(36.0).reshape(1, 1, 1, 6, 6)
    out = Augment(flip_p=0.0, max_roll=0, crop=(3, 3))(x, torch.Generator().manual_seed(0))
    window = out[0, 0, 0, ::2, ::2]  # each window pixel is repeated 2x2
    top, left = divmod(int(window[0, 0]), 6)
    assert torch.equal(window, x[0, 0, 0, top : top + 3, left : left + 3])
    with pytest.raises(ValueError, match="larger than"):
        Augment(crop=(7, 7))(x)
    with pytest.raises(ValueError):
        Augment(flip_p=1.5)


def _reference(aug, x, generator):
    """The per-sample loop the vectorised augmentation must equal, draw for draw."""
    out = []
    for sample in x:
        flip = bool(torch.rand((), generator=generator) < aug.flip_p)
        dy, dx = torch.randint(-aug.max_roll, aug.max_roll + 1, (2,), generator=generator).tolist()
        if flip:
            sample = sample.flip(-1)
        sample = sample.roll((dy, dx), dims=(-2, -1))
        if aug.crop is not None:
            h, w = sample.shape[-2:]
            top = int(torch.randint(0, h - aug.crop[0] + 1, (), generator=generator))
            left = int(torch.randint(0, w - aug.crop[1] + 1, (), generator=generator))
            rows = top + torch.arange(h) * aug.crop[0] // h
            cols = left + torch.arange(w) * aug.crop[1] // w
            sample = sample[..., rows[:, None], cols[None, :]]
        out.append(sample)
    return torch.stack(out)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_batch_equals_the_per_sample_loop(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(3, 12)), int(rng.integers(3, 12))
    crop = None if seed % 2 else (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    aug = Augment(flip_p=float(rng.uniform()), max_roll=int(rng.integers(0, 4)), crop=crop)
    x = torch.from_numpy(rng.integers(0, 50, (5, 3, 2, h, w))).float()
    got = aug(x, torch.Generator().manual_seed(seed))
    want = _reference(aug, x, torch.Generator().manual_seed(seed))
    assert torch.equal(got, want)
