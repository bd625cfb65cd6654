import numpy as np
import pytest
from sklearn.datasets import load_digits

from hsd.events.emulator import DVSEmulator


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().images[:40] / 16.0


def square(size: int = 8, value: float = 1.0) -> np.ndarray:
    image = np.zeros((size, size))
    image[2:-2, 2:-2] = value
    return image


def test_same_image_and_seed_give_identical_events(digits):
    emulator = DVSEmulator()
    a, b = emulator.emulate(digits[0], seed=3), emulator.emulate(digits[0], seed=3)
    for name in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = emulator.emulate(digits[0], seed=4)
    assert len(a) != len(c) or not np.array_equal(a.t, c.t)


def test_batch_equals_single_emulation():
    images = load_digits().images[:70] / 16.0  # more than one internal chunk of 64
    emulator = DVSEmulator()
    batch = emulator.emulate_batch(images, list(range(100, 170)))
    for i in (0, 13, 66):
        single = emulator.emulate(images[i], seed=100 + i)
        for name in ("t", "x", "y", "p"):
            np.testing.assert_array_equal(getattr(batch[i], name), getattr(single, name))


def test_streams_are_valid_nmnist_like_and_span_the_duration(digits):
    emulator = DVSEmulator()
    streams = emulator.emulate_batch(digits, list(range(len(digits))))
    counts = np.array([len(e) for e in streams])
    # N-MNIST recordings hold 1,069..7,152 events (mean about 4,100)
    assert 1_000 < counts.min() and counts.max() < 9_000 and 2_500 < counts.mean() < 6_000
    for events in streams[:10]:
        assert events.sensor_size == (34, 34)
        assert np.all(np.diff(events.t) >= 0)
        assert events.t[0] >= 0 and events.t[-1] <= emulator.duration_us
        assert events.duration_us > 0.9 * emulator.duration_us
        assert events.x.min() >= 0 and events.x.max() < 34
        assert events.y.min() >= 0 and events.y.max() < 34
        assert events.t.dtype == np.int64 and events.x.dtype == np.int16
        assert 0.35 < events.p.mean() < 0.65  # both polarities, roughly balanced


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_image_gives_no_events_without_noise(value):
    events = DVSEmulator(noise_rate_hz=0.0).emulate(np.full((8, 8), value), seed=0)
    # a constant image only has its border, which moves: a value of 0 is invisible
    if value == 0.0:
        assert len(events) == 0
    events = DVSEmulator(noise_rate_hz=0.0, image_px=80).emulate(np.full((8, 8), value), seed=0)
    assert len(events) == 0  # the image covers the whole sensor at every position


def test_static_image_gives_no_events(digits):
    assert len(DVSEmulator(amplitude_px=0.0, noise_rate_hz=0.0).emulate(digits[1], 0)) == 0


def test_noise_rate_gives_poisson_count_on_a_blank_image():
    emulator = DVSEmulator(noise_rate_hz=10.0)
    counts = [len(emulator.emulate(np.zeros((8, 8)), seed)) for seed in range(5)]
    expected = 10.0 * 34 * 34 * 0.3  # 3,468 events
    assert all(abs(c - expected) < 5 * np.sqrt(expected) for c in counts)
    events = emulator.emulate(np.zeros((8, 8)), seed=0)
    assert 0.45 < events.p.mean() < 0.55


def test_more_contrast_gives_more_events(digits):
    emulator = DVSEmulator(noise_rate_hz=0.0)
    counts = [len(emulator.emulate(digits[2] * c, seed=1)) for c in (0.1, 0.3, 1.0)]
    assert counts[0] < counts[1] < counts[2]
    assert counts[2] > 2 * counts[0]


def test_on_events_lead_in_the_direction_of_motion():
    emulator = DVSEmulator(noise_rate_hz=0.0, threshold_sigma=0.0)
    events = emulator.emulate(square(), seed=0)
    leg_us = emulator.duration_us // emulator.n_saccades
    for leg in range(emulator.n_saccades):
        start, end = emulator.motion_px(np.array([leg * leg_us, (leg + 1) * leg_us]))
        direction = end - start
        part = (events.t >= leg * leg_us) & (events.t < (leg + 1) * leg_us)
        xy = np.stack([events.x[part], events.y[part]], axis=1).astype(float)
        on, off = xy[events.p[part] == 1], xy[events.p[part] == 0]
        assert len(on) > 50 and len(off) > 50
        lead = (on.mean(axis=0) - off.mean(axis=0)) @ direction / np.linalg.norm(direction)
        assert lead > 2.0  # ON at the leading edge, OFF at the trailing edge of the square


def test_on_and_off_balance_per_pixel_on_a_closed_path(digits):
    # Without mismatch the reference starts and ends within one threshold of the same level.
    emulator = DVSEmulator(noise_rate_hz=0.0, threshold_sigma=0.0)
    events = emulator.emulate(digits[5], seed=2)
    pixel = events.y.astype(int) * 34 + events.x
    on = np.bincount(pixel[events.p == 1], minlength=34 * 34)
    off = np.bincount(pixel[events.p == 0], minlength=34 * 34)
    assert np.abs(on - off).max() <= 1
    assert on.max() >= 5


def test_motion_is_nmnist_triangle():
    emulator = DVSEmulator(amplitude_px=4.0)
    corners = emulator.motion_px(np.array([0, 100_000, 200_000, 300_000]))
    legs = np.diff(corners, axis=0)
    np.testing.assert_allclose(np.linalg.norm(legs, axis=1), [4.0, 4.0, 4.0])
    np.testing.assert_allclose(corners[0], corners[-1], atol=1e-12)
    np.testing.assert_allclose(corners[:3].mean(axis=0), [0.0, 0.0], atol=1e-12)
    assert legs[0, 0] > 0 and legs[0, 1] > 0  # down-right
    assert legs[1, 0] > 0 and legs[1, 1] < 0  # up-right
    assert legs[2, 0] < 0 and abs(legs[2, 1]) < 1e-12  # left
    # at rest at the corners, fastest mid-saccade
    near = emulator.motion_px(np.array([0, 1_000, 49_000, 51_000]))
    assert np.linalg.norm(near[1] - near[0]) < 0.05 * np.linalg.norm(near[3] - near[2])


def test_refractory_period_separates_events_of_a_pixel(digits):
    base = DVSEmulator(noise_rate_hz=0.0)
    slow = DVSEmulator(noise_rate_hz=0.0, refractory_us=8_000)
    free, limited = base.emulate(digits[3], seed=0), slow.emulate(digits[3], seed=0)
    assert len(limited) < len(free)
    pixel = limited.y.astype(np.int64) * 34 + limited.x
    order = np.lexsort((limited.t, pixel))
    same = np.diff(pixel[order]) == 0
    assert np.diff(limited.t[order])[same].min() >= 8_000 - 1


def test_thresholds_have_seeded_mismatch():
    on, off = DVSEmulator(threshold=0.2, threshold_sigma=0.03).thresholds()
    assert on.shape == off.shape == (34 * 34,)
    assert abs(on.mean() - 0.2) < 0.005 and abs(on.std() - 0.03) < 0.005
    other, _ = DVSEmulator(sensor_seed=1).thresholds()
    assert not np.array_equal(on, other)
    flat, _ = DVSEmulator(threshold_sigma=0.0).thresholds()
    assert np.all(flat == np.float32(0.2))


def test_non_square_sensor():
    events = DVSEmulator(sensor_size=(40, 20), image_px=14).emulate(square(), seed=0)
    assert events.sensor_size == (40, 20)
    assert events.x.max() < 40 and events.y.max() < 20 and events.x.max() >= 20


@pytest.mark.parametrize(
    "image",
    [np.zeros(8), np.full((8, 8), 1.5), np.full((8, 8), -0.1), np.full((8, 8), np.nan)],
)
def test_rejects_bad_images(image):
    with pytest.raises(ValueError):
        DVSEmulator().emulate(image, seed=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_saccades": 1},
        {"threshold": 0.0},
        {"substeps": 0},
        {"noise_rate_hz": -1.0},
        {"sensor_size": (0, 34)},
        {"duration_us": 10},
    ],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        DVSEmulator(**kwargs)


def test_seed_count_must_match_images(digits):
    with pytest.raises(ValueError):
        DVSEmulator().emulate_batch(digits[:3], [0, 1])
