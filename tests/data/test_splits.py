import json

import numpy as np
import pytest

from hsd.data import Manifest, kfold_manifests, make_manifest
from hsd.errors import ConfigError, DatasetError


def per_class(dataset, keys):
    label = {s.key: s.label for s in dataset.samples}
    return np.bincount([label[k] for k in keys], minlength=len(dataset.classes)).tolist()


def test_stratified_split_counts_are_exact_per_class(fake_dataset):
    ds = fake_dataset([20, 10, 3])
    m = make_manifest(ds, seed=0, val_fraction=0.1, test_fraction=0.1)
    assert m.method == "stratified"
    # test: floor(0.1 n + 0.5) at least 1 -> 2, 1, 1; val: same rule on the rest 18, 9, 2 -> 2, 1, 1
    assert per_class(ds, m.test) == [2, 1, 1]
    assert per_class(ds, m.val) == [2, 1, 1]
    assert per_class(ds, m.train) == [16, 8, 1]
    everything = set(m.train) | set(m.val) | set(m.test)
    assert len(everything) == len(ds) == len(m.train) + len(m.val) + len(m.test)


def test_official_split_is_kept_and_val_comes_from_train(fake_dataset):
    ds = fake_dataset([12, 8], official=True)
    m = make_manifest(ds, seed=3, val_fraction=0.25)
    official_test = sorted(s.key for s in ds.samples if s.split == "test")
    assert m.method == "official" and m.test_fraction is None
    assert list(m.test) == official_test  # j % 4 == 0: 3 + 2 samples
    assert per_class(ds, m.val) == [2, 2]  # 25% of 9 and 6 train samples
    assert not set(m.val) & set(m.test) and not set(m.val) & set(m.train)


def test_same_inputs_give_identical_manifest_regardless_of_listing_order(fake_dataset, tmp_path):
    ds = fake_dataset([15, 9, 6])
    a = make_manifest(ds, seed=7)
    b = make_manifest(fake_dataset([15, 9, 6], listing_seed=1), seed=7)
    assert a == b and a.hash == b.hash
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert make_manifest(ds, seed=8).hash != a.hash
    # The split depends only on the seed and the key strings: the same on every machine.
    assert a.hash == "261a82d8a94a857bb6d5b829010a13bd75ad063ff2e84983a22d9a3d8b50e44a"


def test_save_load_round_trip_and_tamper_detection(fake_dataset, tmp_path):
    ds = fake_dataset([10, 10])
    m = make_manifest(ds)
    path = m.save(tmp_path / "m.json")
    loaded = Manifest.load(path)
    assert loaded == m and loaded.hash == m.hash and loaded.matches(ds)
    idx = loaded.indices(ds)
    assert [ds.samples[i].key for i in idx["test"]] == list(m.test)
    data = json.loads(path.read_text())
    data["test"] = data["test"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="does not match its hash"):
        Manifest.load(path)
    with pytest.raises(DatasetError, match="not a split manifest"):
        Manifest.load(tmp_path / "missing.json")


def test_indices_refuse_keys_missing_from_the_dataset(fake_dataset, tmp_path):
    m = make_manifest(fake_dataset([10, 10]))
    other = fake_dataset([10, 5], root=tmp_path / "other")
    with pytest.raises(DatasetError, match="not in the dataset"):
        m.indices(other)
    assert not m.matches(other)


def test_bad_fractions_are_refused(fake_dataset):
    ds = fake_dataset([10, 10])
    with pytest.raises(ConfigError):
        make_manifest(ds, test_fraction=0.0)
    with pytest.raises(ConfigError):
        make_manifest(ds, val_fraction=1.0)


def test_kfold_test_folds_are_disjoint_cover_everything_and_are_stratified(fake_dataset):
    ds = fake_dataset([23, 11, 7], official=True)  # the official split is ignored by pool="all"
    folds = kfold_manifests(ds, k=5, seed=1, val_fraction=0.1)
    assert [m.fold for m in folds] == [0, 1, 2, 3, 4] and {m.folds for m in folds} == {5}
    tests = [set(m.test) for m in folds]
    assert sum(len(t) for t in tests) == len(ds) == len(set().union(*tests))
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    counts = np.array([per_class(ds, m.test) for m in folds])  # [fold, class]
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()
    assert counts.sum(axis=0).tolist() == [23, 11, 7]
    for m in folds:
        assert set(m.train) | set(m.val) | set(m.test) == {s.key for s in ds.samples}
        assert not (set(m.train) & set(m.val)) and not (set(m.train) & set(m.test))
    assert [m.hash for m in kfold_manifests(ds, k=5, seed=1)] == [m.hash for m in folds]


def test_kfold_train_pool_and_bad_k(fake_dataset):
    ds = fake_dataset([12, 8], official=True)
    folds = kfold_manifests(ds, k=3, pool="train")
    official_train = {s.key for s in ds.samples if s.split == "train"}
    assert set().union(*(set(m.test) for m in folds)) == official_train
    with pytest.raises(ConfigError):
        kfold_manifests(ds, k=1)
    with pytest.raises(ConfigError):
        kfold_manifests(fake_dataset([5, 5]), k=2, pool="train")
