import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

import hsd.data.digits as digits_module
from hsd.data import get_dataset
from hsd.data.digits import DigitsDVS
from hsd.events.emulator import DVSEmulator

EMULATED = "emulated by hsd's DVS emulator from scikit-learn digits, not recorded"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-dvs")
    ds = get_dataset("digits-dvs", root)
    ds.prepare(progress=False)
    return root, ds


def test_digits_dvs_indexes_sklearn_digits(generated):
    _, ds = generated
    digits = load_digits()
    assert len(ds) == 1797 and ds.sensor_size == (34, 34)
    assert ds.classes == [str(d) for d in range(10)] and not ds.has_official_split
    assert np.bincount(ds.labels).tolist() == np.bincount(digits.target).tolist()
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert ds.emulated and EMULATED in ds.description
    for doc in (DigitsDVS.__doc__, digits_module.__doc__):
        assert EMULATED in " ".join((doc or "").split())
    assert ds.keys[:2] == ["digits/0000", "digits/0001"]


def test_digits_dvs_events_are_the_emulator_output_with_a_fixed_seed(generated):
    _, ds = generated
    images = load_digits().images / 16.0
    for i in (0, 5, 1796):
        expected = DVSEmulator().emulate(images[i], seed=i)
        got = ds.load_events(i)
        assert got.sensor_size == (34, 34) and len(got) > 1000
        for name in ("t", "x", "y", "p"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert ds.event_counts().sum() == sum(len(ds.load_events(i)) for i in range(len(ds)))


def test_second_load_reads_the_cache_and_runs_no_emulator(generated, monkeypatch):
    root, ds = generated

    def refuse(*args, **kwargs):
        raise AssertionError("the emulator ran although the events were cached")

    monkeypatch.setattr(DVSEmulator, "emulate_batch", refuse)
    start = time.perf_counter()
    again = get_dataset("digits-dvs", root)
    again.prepare(progress=False)
    events = again.load_events(42)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(events.t, ds.load_events(42).t)
    assert again.fingerprint() == ds.fingerprint()
    assert list(root.iterdir()) == [ds.events_path]


def test_parameters_name_the_file_and_the_fingerprint(generated):
    root, ds = generated
    other_seed = get_dataset("digits-dvs", root, seed=1)
    other_emulator = get_dataset("digits-dvs", root, emulator=DVSEmulator(threshold=0.3))
    paths = {ds.events_path, other_seed.events_path, other_emulator.events_path}
    prints = {ds.fingerprint(), other_seed.fingerprint(), other_emulator.fingerprint()}
    assert len(paths) == 3 and len(prints) == 3


def test_summary_says_emulated_and_counts_every_sample(generated):
    from hsd.data.info import format_summary, summarize

    root, ds = generated
    summary = summarize("digits-dvs", root)
    assert summary["emulated"] is True and EMULATED in format_summary(summary)
    counts = ds.event_counts()
    ev = summary["events_per_sample"]
    assert (ev["min"], ev["max"], ev["measured_on"]) == (counts.min(), counts.max(), 1797)
    assert summary["samples_per_split"] == {"all": 1797}


@pytest.mark.parametrize("cut", [1000, -100])
def test_a_truncated_event_store_is_refused_naming_it(generated, tmp_path, cut):
    """A truncated events-v*.npz (a killed copy) was zipfile.BadZipFile: an internal error."""
    from hsd.errors import DatasetError

    _, ds = generated
    data = ds.events_path.read_bytes()
    (tmp_path / ds.events_path.name).write_bytes(data[:cut])
    damaged = get_dataset("digits-dvs", tmp_path)
    with pytest.raises(DatasetError, match="is unreadable") as err:
        damaged.load_events(0)
    assert str(damaged.events_path) in str(err.value)
