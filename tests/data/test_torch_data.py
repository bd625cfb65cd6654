import numpy as np
import torch

from hsd.data import Augment, FrameArrays, FrameDataset, make_loader


def arrays(n: int = 10) -> FrameArrays:
    frames = np.arange(n * 3 * 2 * 4 * 4, dtype=np.uint16).reshape(n, 3, 2, 4, 4)
    labels = np.arange(n, dtype=np.int64) % 3
    return FrameArrays(frames, labels, np.zeros((n, 3), np.int64), [f"k{i}" for i in range(n)])


def test_frame_dataset_items():
    a = arrays()
    ds = FrameDataset(a, [4, 7])
    frames, label = ds[1]
    assert len(ds) == 2 and frames.dtype == torch.float32 and frames.shape == (3, 2, 4, 4)
    assert torch.equal(frames, torch.from_numpy(a.frames[7].astype(np.float32)))
    assert label == 1


def test_loader_batches_are_sample_first_and_shuffling_is_seeded():
    a = arrays()
    loader = make_loader(a, np.arange(10), batch_size=4, shuffle=False)
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 3, 2, 4, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [0, 1, 2, 0]

    def order(seed):
        x, _ = next(iter(make_loader(a, None, 10, shuffle=True, seed=seed)))
        return (x[:, 0, 0, 0, 0] / (3 * 2 * 4 * 4)).long().tolist()

    assert order(3) == order(3) and sorted(order(3)) == list(range(10))
    assert order(3) != list(range(10)) and order(3) != order(4)


def test_loader_augments_reproducibly():
    a = arrays()
    aug = Augment(flip_p=1.0, max_roll=0)
    x, _ = next(iter(make_loader(a, [2], batch_size=1, augment=aug)))
    assert torch.equal(x[0], torch.from_numpy(a.frames[2].astype(np.float32)).flip(-1))
