"""The ``folder`` dataset: one folder of event files per class, with or without train/test."""

import numpy as np
import pytest

from hsd.config import load_config
from hsd.data import get_dataset
from hsd.errors import DatasetError
from hsd.events.core import Events
from hsd.events.formats import write_aedat2


def _recording(path, seed, label):
    rng = np.random.default_rng(seed)
    n = 400
    x = np.clip(rng.normal(20 + 40 * (label % 3), 6, n), 0, 127).astype(np.uint16)
    y = np.clip(rng.normal(64, 8, n), 0, 127).astype(np.uint16)
    t = np.sort(rng.integers(0, 100_000, n)).astype(np.int64)
    p = rng.integers(0, 2, n).astype(np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_aedat2(path, Events(t=t, x=x, y=y, p=p, sensor_size=(128, 128)))


def _make(root, classes, per_class, split=None):
    for label, name in enumerate(classes):
        for i in range(per_class):
            folder = root / split / name if split else root / name
            _recording(folder / f"r{i}.aedat", hash((name, i, split)) % 1000, label)


def test_flat_folder_integer_classes_sorted_by_number(tmp_path):
    _make(tmp_path, ["2", "10", "1"], 3)
    (tmp_path / "1" / "notes.txt").write_text("ignored")
    ds = get_dataset("folder", tmp_path)
    assert ds.classes == ["1", "2", "10"] and len(ds) == 9
    assert ds.sensor_size == (128, 128) and not ds.has_official_split
    assert {s.key for s in ds.samples if s.label == 2} == {f"10/r{i}.aedat" for i in range(3)}
    assert len(ds.load_events(0)) == 400
    assert get_dataset("folder", tmp_path, sensor_size=(130, 140)).sensor_size == (130, 140)


def test_train_test_folders_are_the_official_split(tmp_path):
    _make(tmp_path, ["cat", "dog"], 2, "train")
    _make(tmp_path, ["cat", "dog"], 1, "test")
    ds = get_dataset("folder", tmp_path)
    assert ds.has_official_split and ds.classes == ["cat", "dog"]
    assert sorted(s.split for s in ds.samples) == ["test"] * 2 + ["train"] * 4
    (tmp_path / "test" / "dog").rename(tmp_path / "test" / "bird")
    with pytest.raises(DatasetError, match=r"different class folders.*\['dog'\].*\['bird'\]"):
        get_dataset("folder", tmp_path)


def test_bad_folders(tmp_path):
    with pytest.raises(DatasetError, match="folder not found"):
        get_dataset("folder", tmp_path / "nowhere")
    _make(tmp_path / "one", ["a"], 1)
    with pytest.raises(DatasetError, match="need at least 2"):
        get_dataset("folder", tmp_path / "one")
    _make(tmp_path / "half", ["a", "b"], 1, "train")
    with pytest.raises(DatasetError, match="has train/ but no test/"):
        get_dataset("folder", tmp_path / "half")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DatasetError, match="holds no"):
        get_dataset("folder", tmp_path / "empty")


def test_folder_dataset_trains_a_teacher(tmp_path, monkeypatch):
    from hsd.pipeline import prepare_data, train_teacher

    _make(tmp_path / "data", ["a", "b"], 6)
    monkeypatch.setenv("HSD_FOLDER_ROOT", str(tmp_path / "data"))  # the root from the env
    cfg = load_config(
        overrides=[
            "data.dataset=folder",
            "data.size=[16, 16]",
            "data.test_fraction=0.25",
            "model.width=0.25",
            "teacher.optim.epochs=1",
            "progress=false",
            "threads=1",
        ]
    )
    data = prepare_data(cfg)
    assert data.classes == ["a", "b"] and data.input_shape == (2, 16, 16)
    assert len(data.test) >= 2 and not set(data.test) & set(data.train)
    assert train_teacher(cfg, tmp_path / "teacher", data=data).exists()


def test_dataset_by_import_path_from_python_and_the_command_line(tmp_path):
    import subprocess
    import sys

    _make(tmp_path, ["a", "b"], 1)
    assert get_dataset("hsd.data.folder:EventFolder", tmp_path).classes == ["a", "b"]
    with pytest.raises(DatasetError, match="cannot import 'nowhere_pkg'"):
        get_dataset("nowhere_pkg:Data", tmp_path)
    with pytest.raises(DatasetError, match=r"not a subclass of hsd\.data\.EventDataset"):
        get_dataset("hsd.data.folder:_class_order", tmp_path)
    run = [sys.executable, "-m", "hsd.cli", "data", "info", "hsd.data.folder:EventFolder"]
    out = subprocess.run([*run, "--root", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "hsd.cli", "data", "info", "nope"], text=True, capture_output=True
    )
    assert bad.returncode == 2 and "import path 'package.module:DatasetClass'" in bad.stderr
