import csv

import numpy as np
import pytest

import hsd.events.formats as formats
from hsd.data import get_dataset, list_datasets
from hsd.errors import DatasetError
from hsd.events.formats import write_aedat2, write_aedat31, write_atis_bin

CIFAR_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def same_events(a, b):
    for name in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_registry_lists_the_builtin_datasets():
    assert list_datasets() == [
        "cifar10dvs", "digits-dvs", "dvsgesture", "folder", "ncaltech101", "nmnist", "sj-frames",
    ]  # fmt: skip
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        get_dataset("mnist", "/x")
    with pytest.raises(DatasetError, match="invalid options"):
        get_dataset("nmnist", "/x", colour=True)


def test_nmnist_on_fake_bin_files(nmnist_root):
    root, written = nmnist_root
    ds = get_dataset("nmnist", root)
    assert ds.sensor_size == (34, 34) and ds.classes == [str(d) for d in range(10)]
    assert ds.has_official_split and len(ds) == 30
    assert sum(s.split == "train" for s in ds.samples) == 20
    assert ds.keys == sorted(written)
    for i in (0, 7, 29):
        sample = ds.samples[i]
        assert sample.label == int(sample.key.split("/")[1])
        assert sample.split == sample.key.split("/")[0].lower()
        same_events(ds.load_events(i), written[sample.key])


def test_nmnist_bad_layouts(nmnist_root, tmp_path, monkeypatch):
    root, _ = nmnist_root
    with pytest.raises(DatasetError) as err:
        get_dataset("nmnist", tmp_path / "nowhere")
    message = str(err.value)
    assert "nowhere: folder not found" in message and "garrickorchard" in message
    assert "Train/" in message and "Test/" in message  # the expected layout is drawn
    monkeypatch.delenv("HSD_NMNIST_ROOT", raising=False)
    monkeypatch.delenv("HSD_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match=r"--root DIR.*HSD_NMNIST_ROOT"):
        get_dataset("nmnist", None)
    monkeypatch.setenv("HSD_NMNIST_ROOT", str(root))  # the root from the environment
    assert len(get_dataset("nmnist", None)) > 0
    monkeypatch.delenv("HSD_NMNIST_ROOT")
    monkeypatch.setenv("HSD_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nmnist'}: folder not found"):
        get_dataset("nmnist", None)
    for f in (root / "Test" / "3").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"class folder .*Test/3 holds no \.bin files"):
        get_dataset("nmnist", root)
    (root / "Test" / "3").rmdir()
    with pytest.raises(DatasetError, match=r"class folder .*Test/3 is missing"):
        get_dataset("nmnist", root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no Train/ folder"):
        get_dataset("nmnist", empty)


def test_nmnist_real_subset(shared_data):
    ds = get_dataset("nmnist", shared_data / "nmnist-small")
    train = np.bincount([s.label for s in ds.samples if s.split == "train"], minlength=10)
    test = np.bincount([s.label for s in ds.samples if s.split == "test"], minlength=10)
    assert train.tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert test.tolist() == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]
    with open(shared_data / "nmnist-small" / "index.csv") as f:
        n_events = {row["path"]: int(row["n_events"]) for row in csv.DictReader(f)}
    for i in (0, 500, 1099):
        assert len(ds.load_events(i)) == n_events[ds.samples[i].key]


def test_cifar10dvs_on_fake_aedat2(tmp_path, events_factory):
    written = {}
    for c, name in enumerate(CIFAR_CLASSES):
        (tmp_path / name).mkdir()
        for j in range(2):
            events = events_factory(10 * c + j, 40, (128, 128))
            write_aedat2(tmp_path / name / f"cifar10_{name}_{j}.aedat", events)
            written[f"{name}/cifar10_{name}_{j}.aedat"] = events
    ds = get_dataset("cifar10dvs", tmp_path)
    assert ds.sensor_size == (128, 128) and ds.classes == CIFAR_CLASSES
    assert len(ds) == 20 and not ds.has_official_split
    assert all(s.split is None for s in ds.samples)
    assert np.bincount(ds.labels).tolist() == [2] * 10
    i = ds.keys.index("frog/cifar10_frog_1.aedat")
    assert ds.samples[i].label == 6
    same_events(ds.load_events(i), written["frog/cifar10_frog_1.aedat"])
    for f in (tmp_path / "truck").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"truck holds no \.aedat/\.aedat4 files"):
        get_dataset("cifar10dvs", tmp_path)


def test_ncaltech101_on_fake_bin(tmp_path, events_factory):
    root = tmp_path / "Caltech101"
    for c, name in enumerate(["BACKGROUND_Google", "accordion", "airplanes"]):
        (root / name).mkdir(parents=True)
        for j in range(c + 1):
            write_atis_bin(
                root / name / f"image_{j + 1:04d}.bin", events_factory(j, 25, (233, 173))
            )
    ds = get_dataset("ncaltech101", tmp_path)  # the parent of Caltech101/ works too
    assert ds.root == root and ds.sensor_size == (240, 180)
    assert ds.classes == ["BACKGROUND_Google", "accordion", "airplanes"]
    assert np.bincount(ds.labels).tolist() == [1, 2, 3] and not ds.has_official_split
    assert ds.load_events(5).sensor_size == (240, 180)
    no_bg = get_dataset("ncaltech101", root, include_background=False)
    assert no_bg.classes == ["accordion", "airplanes"] and len(no_bg) == 5


def _gesture_root(tmp_path, events_factory):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    recordings = {
        "user01_fluorescent": ("train", [(1, 1000, 90_000), (11, 100_000, 200_000)]),
        "user02_lab": ("train", [(3, 0, 150_000), (3, 150_000, 300_000)]),
        "user24_led": ("test", [(5, 20_000, 280_000)]),
    }
    events = {}
    for n, (name, (_, rows)) in enumerate(recordings.items()):
        events[name] = events_factory(n, 500, (128, 128))
        write_aedat31(root / f"{name}.aedat", events[name])
        lines = ["class,startTime_usec,endTime_usec"] + [f"{c},{s},{e}" for c, s, e in rows]
        (root / f"{name}_labels.csv").write_text("\n".join(lines) + "\n")
    for split in ("train", "test"):
        names = [f"{k}.aedat" for k, (sp, _) in recordings.items() if sp == split]
        (root / f"trials_to_{split}.txt").write_text("\n".join(names) + "\n")
    return root, recordings, events


def test_dvsgesture_clips_from_csv_without_decoding_recordings(
    tmp_path, events_factory, monkeypatch
):
    _, _, events = _gesture_root(tmp_path, events_factory)

    def refuse(*args, **kwargs):
        raise AssertionError("indexing decoded a recording")

    monkeypatch.setattr(formats, "read_events", refuse)
    ds = get_dataset("dvsgesture", tmp_path)
    monkeypatch.undo()
    assert ds.keys == [
        "user01_fluorescent#c0", "user01_fluorescent#c1", "user02_lab#c0", "user02_lab#c1",
        "user24_led#c0",
    ]  # fmt: skip
    assert ds.labels.tolist() == [0, 10, 2, 2, 4] and len(ds.classes) == 11
    assert [s.split for s in ds.samples] == ["train"] * 4 + ["test"]
    assert ds.samples[1].t_range_us == (100_000, 200_000)
    for i, sample in enumerate(ds.samples):
        name = sample.key.split("#")[0]
        start, end = sample.t_range_us
        full = events[name]
        inside = (full.t >= start) & (full.t < end)
        clip = ds.load_events(i)
        assert len(clip) == int(inside.sum()) > 0
        np.testing.assert_array_equal(clip.t, full.t[inside])
        np.testing.assert_array_equal(clip.x, full.x[inside])


def test_dvsgesture_refuses_unlisted_or_missing_recordings(tmp_path, events_factory):
    root, _, _ = _gesture_root(tmp_path, events_factory)
    (root / "trials_to_test.txt").write_text("")
    with pytest.raises(DatasetError, match=r"user24_led\.aedat is in neither"):
        get_dataset("dvsgesture", root)
    (root / "trials_to_test.txt").write_text("user24_led.aedat\nuser25_led.aedat\n")
    with pytest.raises(DatasetError, match=r"user25_led\.aedat is listed but missing"):
        get_dataset("dvsgesture", root)
    (root / "trials_to_train.txt").unlink()
    with pytest.raises(DatasetError, match=r"no trials_to_train\.txt"):
        get_dataset("dvsgesture", root)


def test_sj_frames_layouts(tmp_path):
    parent = tmp_path / "DVS128Gesture"
    folder = parent / "frames_number_3_split_by_time"
    rng = np.random.default_rng(0)
    stored = {}
    for split, n in (("train", 2), ("test", 1)):
        for c in ("a", "b"):
            (folder / split / c).mkdir(parents=True)
            for j in range(n):
                frames = rng.integers(0, 5, (3, 2, 4, 7)).astype(np.float32)
                np.savez_compressed(folder / split / c / f"{j}.npz", frames=frames)
                stored[f"{split}/{c}/{j}.npz"] = frames
    ds = get_dataset("sj-frames", parent)
    assert ds.kind == "frames" and ds.root == folder
    assert ds.n_frames == 3 and ds.split_by == "time" and ds.sensor_size == (7, 4)
    assert ds.has_official_split and ds.classes == ["a", "b"] and len(ds) == 6
    assert [s.split for s in ds.samples].count("test") == 2
    for i, key in enumerate(ds.keys):
        np.testing.assert_array_equal(ds.load_frames(i), stored[key])
    with pytest.raises(DatasetError, match="stores frames, not events"):
        ds.load_events(0)
    (parent / "frames_number_10_split_by_number").mkdir()
    with pytest.raises(DatasetError, match="several frame folders"):
        get_dataset("sj-frames", parent)


def test_fingerprint_follows_content(nmnist_root, events_factory):
    root, _ = nmnist_root
    first = get_dataset("nmnist", root).fingerprint()
    assert get_dataset("nmnist", root).fingerprint() == first
    write_atis_bin(root / "Train" / "4" / "00000.bin", events_factory(0, 99))
    assert get_dataset("nmnist", root).fingerprint() != first


def test_folders_without_samples_are_refused(tmp_path):
    gesture = tmp_path / "DvsGesture"
    gesture.mkdir()
    for split in ("train", "test"):
        (gesture / f"trials_to_{split}.txt").write_text("\n")
    with pytest.raises(DatasetError, match="no samples found") as err:
        get_dataset("dvsgesture", gesture)
    assert "trials_to_train.txt" in str(err.value)  # the expected layout follows
    with pytest.raises(DatasetError, match="no class folders"):
        get_dataset("sj-frames", gesture)
    with pytest.raises(DatasetError, match="not a folder"):
        get_dataset("cifar10dvs", gesture / "trials_to_test.txt")
