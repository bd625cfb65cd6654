import numpy as np
import pytest

from hsd.data import FrameCache, get_dataset, load_frames
from hsd.errors import DatasetError
from hsd.events.core import validate_events
from hsd.events.frames import FrameSpec


def test_first_load_integrates_every_sample_and_second_reads_no_raw_file(
    fake_dataset, events_factory, tmp_path
):
    ds = fake_dataset([4, 3])
    spec = FrameSpec(n_frames=4)
    arrays = load_frames(ds, spec, cache_dir=tmp_path / "cache", progress=False)
    assert ds.calls == 7
    assert arrays.frames.shape == (7, 4, 2, 6, 8) and arrays.frames.dtype == np.uint16
    assert isinstance(arrays.frames, np.memmap)
    assert arrays.keys == ds.keys and arrays.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    for i in range(7):
        events = events_factory(i, 20 + i, (8, 6))
        np.testing.assert_array_equal(arrays.frames[i], spec.apply(events))
        np.testing.assert_array_equal(arrays.end_times_us[i], spec.end_times_us(events))
        assert int(arrays.frames[i].sum()) == 20 + i

    again = fake_dataset([4, 3])  # a new process would open the dataset anew
    warm = load_frames(again, spec, cache_dir=tmp_path / "cache", progress=False)
    assert again.calls == 0
    np.testing.assert_array_equal(warm.frames, arrays.frames)
    leftovers = [p.name for p in arrays.path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_a_changed_parameter_or_dataset_never_serves_stale_frames(fake_dataset, tmp_path):
    cache = FrameCache(tmp_path / "cache")
    ds = fake_dataset([3, 3])
    first = cache.load(ds, FrameSpec(n_frames=4), progress=False)
    for spec in (
        FrameSpec(n_frames=5),
        FrameSpec(n_frames=4, split_by="time"),
        FrameSpec(n_frames=4, size=(3, 4)),
        FrameSpec(n_frames=4, clip=1),
    ):
        ds.calls = 0
        arrays = cache.load(ds, spec, progress=False)
        assert ds.calls == 6, spec
        assert arrays.path != first.path
    (ds.root / "c1" / "s000.dat").write_bytes(b"changed content, another size")
    changed = fake_dataset([3, 3])
    cache.load(changed, FrameSpec(n_frames=4), progress=False)
    assert changed.calls == 6


def test_counts_beyond_uint16_switch_the_cache_to_int32(fake_dataset, tmp_path):
    ds = fake_dataset([3])
    big = 70_000

    def load_events(index):
        n = big if index == 1 else 5
        zeros = np.zeros(n, dtype=np.int64)
        return validate_events(np.arange(n), zeros, zeros, np.ones(n), ds.sensor_size)

    ds.load_events = load_events
    arrays = load_frames(ds, FrameSpec(n_frames=1), cache_dir=tmp_path / "cache", progress=False)
    assert arrays.frames.dtype == np.int32
    assert arrays.frames[:, 0, 1, 0, 0].tolist() == [5, big, 5]


def _write_sj(folder, n_frames=4, shape=(2, 5, 6)):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for j in range(2):
            frames = rng.integers(0, 4, (n_frames, *shape)).astype(np.float32)
            np.savez_compressed(folder / c / f"{j}.npz", frames=frames)


def test_sj_frames_are_used_as_stored(tmp_path):
    folder = tmp_path / "frames_number_4_split_by_number"
    _write_sj(folder)
    ds = get_dataset("sj-frames", folder)
    arrays = load_frames(ds, FrameSpec(n_frames=4), cache_dir=tmp_path / "c", progress=False)
    assert arrays.frames.shape == (4, 4, 2, 5, 6)
    for i in range(4):
        np.testing.assert_array_equal(arrays.frames[i], ds.load_frames(i))
    assert (arrays.end_times_us == -1).all()
    resized = load_frames(
        ds, FrameSpec(n_frames=4, size=(3, 3)), cache_dir=tmp_path / "c", progress=False
    )
    assert resized.frames.shape[-2:] == (3, 3)
    assert resized.frames.sum() == arrays.frames.sum()  # resize="events" keeps the counts
    with pytest.raises(DatasetError, match="stores 4 frames, the spec asks for 10"):
        load_frames(ds, FrameSpec(n_frames=10), cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(DatasetError, match="split by count"):
        load_frames(ds, FrameSpec(4, split_by="time"), cache_dir=tmp_path / "c", progress=False)


def test_warm_cache_calls_no_file_reader(nmnist_root, tmp_path, monkeypatch):
    import hsd.events.formats as formats

    root, written = nmnist_root
    reads = []
    real_reader = formats.read_events

    def counting_reader(path, **kwargs):
        reads.append(path)
        return real_reader(path, **kwargs)

    monkeypatch.setattr(formats, "read_events", counting_reader)
    spec = FrameSpec(n_frames=3)
    cold = load_frames(get_dataset("nmnist", root), spec, cache_dir=tmp_path / "c")
    assert len(reads) == len(written) == 30
    warm = load_frames(get_dataset("nmnist", root), spec, cache_dir=tmp_path / "c")
    assert len(reads) == 30
    np.testing.assert_array_equal(cold.frames, warm.frames)
    assert warm.frames.sum() == sum(len(e) for e in written.values())


def _entry_bytes(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("spec", [FrameSpec(n_frames=4), FrameSpec(n_frames=3, size=(3, 4))])
def test_a_build_with_two_workers_writes_the_same_bytes_as_one(fake_dataset, tmp_path, spec):
    ds = fake_dataset([5, 4])
    one = load_frames(ds, spec, cache_dir=tmp_path / "one", progress=False, workers=1)
    assert ds.calls == 9
    ds.calls = 0
    two = load_frames(ds, spec, cache_dir=tmp_path / "two", progress=False, workers=2)
    assert ds.calls == 0  # integrated in the worker processes, not here
    assert one.path.name == two.path.name
    first, second = _entry_bytes(one.path), _entry_bytes(two.path)
    assert sorted(first) == sorted(
        ["frames.npy", "labels.npy", "end_times_us.npy", "keys.json", "manifest.json"]
    )
    for name in first:
        assert first[name] == second[name], name
    np.testing.assert_array_equal(one.frames, two.frames)


def test_a_parallel_build_widens_to_int32_like_the_single_process_one(fake_dataset, tmp_path):
    ds = fake_dataset([4])
    original = ds.load_events

    def load_events(index):
        events = original(index)
        if index == 2:  # 70,000 events on one pixel: beyond uint16
            n = 70_000
            zeros = np.zeros(n, dtype=np.int64)
            return validate_events(np.arange(n), zeros, zeros, zeros, (8, 6))
        return events

    ds.load_events = load_events
    spec = FrameSpec(n_frames=1)
    one = load_frames(ds, spec, cache_dir=tmp_path / "one", progress=False, workers=1)
    two = load_frames(ds, spec, cache_dir=tmp_path / "two", progress=False, workers=3)
    assert one.frames.dtype == two.frames.dtype == np.int32
    assert int(two.frames[2].max()) == 70_000
    assert _entry_bytes(one.path) == _entry_bytes(two.path)


def test_a_faulty_sample_in_a_worker_is_the_same_error_as_in_process(fake_dataset, tmp_path):
    ds = fake_dataset([3, 3])

    def load_events(index):
        if index == 4:
            raise DatasetError(f"fake: sample {index} is damaged")
        return validate_events(np.arange(5), np.zeros(5), np.zeros(5), np.zeros(5), (8, 6))

    ds.load_events = load_events
    for workers in (1, 2):
        with pytest.raises(DatasetError, match="fake: sample 4 is damaged"):
            load_frames(
                ds, FrameSpec(n_frames=2), cache_dir=tmp_path, progress=False, workers=workers
            )
    assert not any(p.name.startswith(".") for p in (tmp_path / "frames" / "fake").iterdir())


def test_workers_default_to_the_cores_available():
    import os

    from hsd.config import Config
    from hsd.data.cache import available_cores, resolve_workers

    assert Config().data.workers is None
    assert resolve_workers(None) == available_cores() == len(os.sched_getaffinity(0))
    assert resolve_workers(0) == resolve_workers(1) == 1 and resolve_workers(3) == 3
    with pytest.raises(DatasetError, match=r"data\.workers"):
        resolve_workers(-1)
