import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hsd.events.core import Events, validate_events
from hsd.events.frames import (
    FrameSpec,
    frame_bounds,
    frame_end_times_us,
    integrate_frames,
    resize_nearest,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def make_events(t, x=None, y=None, p=None, sensor_size=(4, 3)) -> Events:
    n = len(t)
    zeros = np.zeros(n, dtype=np.int64)
    return validate_events(
        np.asarray(t),
        zeros if x is None else np.asarray(x),
        zeros if y is None else np.asarray(y),
        zeros if p is None else np.asarray(p),
        sensor_size,
    )


def random_events(seed: int, n: int, sensor_size=(34, 34), span_us=300_000) -> Events:
    rng = np.random.default_rng(seed)
    width, height = sensor_size
    return validate_events(
        np.sort(rng.integers(0, span_us, n)),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, 2, n),
        sensor_size,
    )


def read_nmnist_bin(path: Path) -> Events:
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return validate_events(t, raw[:, 0], raw[:, 1], raw[:, 2] >> 7, (34, 34))


def test_count_split_gives_remainder_to_last_frame():
    events = make_events(np.arange(23))
    bounds = frame_bounds(events, 5, "count")
    assert bounds.dtype == np.int64
    assert bounds.tolist() == [[0, 4], [4, 8], [8, 12], [12, 16], [16, 23]]
    frames = integrate_frames(events, 5, "count")
    assert frames.reshape(5, -1).sum(axis=1).tolist() == [4, 4, 4, 4, 7]


def test_count_split_with_fewer_events_than_frames_fills_only_last_frame():
    events = make_events([10, 20, 30])
    assert frame_bounds(events, 5, "count").tolist() == [[0, 0]] * 4 + [[0, 3]]
    frames = integrate_frames(events, 5, "count")
    assert frames.reshape(5, -1).sum(axis=1).tolist() == [0, 0, 0, 0, 3]
    assert frame_end_times_us(events, 5, "count").tolist() == [0, 0, 0, 0, 20]


def test_time_split_uses_integer_bin_width_and_last_frame_takes_the_rest():
    # dt = 23 // 4 = 5: bins [0,5) [5,10) [10,15) [15,end]
    events = make_events([0, 1, 2, 5, 9, 10, 11, 19, 20, 23])
    assert frame_bounds(events, 4, "time").tolist() == [[0, 3], [3, 5], [5, 7], [7, 10]]
    assert frame_end_times_us(events, 4, "time").tolist() == [5, 10, 15, 23]


def test_time_split_with_empty_bins_gives_empty_frames():
    # dt = 10: bins [0,10) [10,20) [20,30) [30,40]; the middle two are empty
    events = make_events([100, 101, 102, 130, 131, 140])
    assert frame_bounds(events, 4, "time").tolist() == [[0, 3], [3, 3], [3, 3], [3, 6]]
    frames = integrate_frames(events, 4, "time")
    assert frames.reshape(4, -1).sum(axis=1).tolist() == [3, 0, 0, 3]


def test_time_split_shorter_than_n_frames_microseconds_goes_to_last_frame():
    events = make_events([5, 5, 7])
    assert frame_bounds(events, 4, "time").tolist() == [[0, 0], [0, 0], [0, 0], [0, 3]]
    assert frame_end_times_us(events, 4, "time").tolist() == [0, 0, 0, 2]


def test_fixed_duration_frames_cover_windows_from_the_first_event():
    # d = 10 from t0 = 100: [100,110) [110,120) [120,130); 131 and 140 are past the 3 frames
    events = make_events([100, 101, 109, 110, 125, 129, 130, 131, 140])
    assert frame_bounds(events, 3, "time", frame_us=10).tolist() == [[0, 3], [3, 4], [4, 6]]
    frames = integrate_frames(events, 3, "time", frame_us=10)
    assert frames.reshape(3, -1).sum(axis=1).tolist() == [3, 1, 2]
    assert frame_end_times_us(events, 3, "time", frame_us=10).tolist() == [10, 20, 30]
    # a recording shorter than N * d ends in empty frames; the windows keep their width
    short = make_events([0, 4, 12])
    assert frame_bounds(short, 4, "time", frame_us=5).tolist() == [[0, 2], [2, 2], [2, 3], [3, 3]]
    assert integrate_frames(short, 4, "time", frame_us=5).reshape(4, -1).sum(1).tolist() == [
        2,
        0,
        1,
        0,
    ]
    assert frame_end_times_us(short, 4, "time", frame_us=5).tolist() == [5, 10, 15, 20]
    # the same events per window as a per-event loop, on a random stream (channels too)
    events = random_events(7, 5_000, span_us=400_000)
    d, n = 10_000, 30
    spec = FrameSpec(n_frames=n, split_by="time", frame_us=d)
    frames = spec.apply(events)
    expected = np.zeros_like(frames)
    t0 = events.t[0]
    for t, x, y, p in zip(events.t, events.x, events.y, events.p, strict=True):
        i = (t - t0) // d
        if i < n:
            expected[i, p, y, x] += 1
    np.testing.assert_array_equal(frames, expected)
    assert frames.sum() == int(np.sum(events.t < t0 + n * d)) < len(events)
    assert spec.end_times_us(events).tolist() == [d * (i + 1) for i in range(n)]
    empty = Events.empty((5, 4))
    assert integrate_frames(empty, 3, "time", frame_us=10).shape == (3, 2, 4, 5)
    assert integrate_frames(empty, 3, "time", frame_us=10).sum() == 0


def test_channel_is_polarity_and_layout_is_height_by_width():
    # sensor 4 wide, 3 high
    events = make_events([0, 1, 2, 3], x=[2, 0, 3, 3], y=[1, 2, 0, 0], p=[0, 1, 1, 1])
    frames = integrate_frames(events, 1)
    assert frames.shape == (1, 2, 3, 4)
    assert frames.dtype == np.int32
    expected = np.zeros((1, 2, 3, 4), dtype=np.int32)
    expected[0, 0, 1, 2] = 1
    expected[0, 1, 2, 0] = 1
    expected[0, 1, 0, 3] = 2
    np.testing.assert_array_equal(frames, expected)


def test_frames_assign_each_event_to_its_own_frame():
    events = make_events([0, 1, 2, 3, 4, 5], x=[0, 1, 2, 3, 0, 1], y=[0, 0, 1, 1, 2, 2])
    frames = integrate_frames(events, 3, "count")
    assert [tuple(np.argwhere(f[0]).ravel().tolist()) for f in frames] == [
        (0, 0, 0, 1),
        (1, 2, 1, 3),
        (2, 0, 2, 1),
    ]


@pytest.mark.parametrize("split_by", ["count", "time"])
@pytest.mark.parametrize("n_frames", [1, 3, 10, 17])
def test_totals_are_preserved_and_bounds_cover_all_events(split_by, n_frames):
    events = random_events(n_frames, 5_000)
    bounds = frame_bounds(events, n_frames, split_by)
    assert bounds[0, 0] == 0 and bounds[-1, 1] == len(events)
    np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])
    frames = integrate_frames(events, n_frames, split_by)
    assert frames.sum() == len(events)
    np.testing.assert_array_equal(frames.reshape(n_frames, -1).sum(axis=1), np.diff(bounds).ravel())


def test_empty_stream_gives_zero_frames():
    events = Events.empty((5, 4))
    for split_by in ("count", "time"):
        frames = integrate_frames(events, 3, split_by)
        assert frames.shape == (3, 2, 4, 5) and frames.sum() == 0
        assert frame_end_times_us(events, 3, split_by).tolist() == [0, 0, 0]


def reference_frames(events: Events, n_frames: int, split_by: str) -> np.ndarray:
    """Slow per-event loop, independent of integrate_frames."""
    bounds = frame_bounds(events, n_frames, split_by)
    frames = np.zeros((n_frames, 2, events.height, events.width), dtype=np.int64)
    for i, (start, end) in enumerate(bounds):
        for k in range(start, end):
            frames[i, events.p[k], events.y[k], events.x[k]] += 1
    return frames


@pytest.mark.parametrize("split_by", ["count", "time"])
def test_vectorised_counts_equal_per_event_loop(split_by):
    events = random_events(7, 1_000, sensor_size=(13, 9), span_us=5_000)
    np.testing.assert_array_equal(
        integrate_frames(events, 6, split_by), reference_frames(events, 6, split_by)
    )


@pytest.mark.parametrize(("split_by", "sj_split"), [("count", "number"), ("time", "time")])
def test_equals_spikingjelly(split_by, sj_split):
    try:
        from spikingjelly.datasets import integrate_events_by_fixed_frames_number
    except Exception as error:  # it imports torchvision, which fails beside the CPU torch here
        pytest.skip(f"spikingjelly.datasets does not import here: {type(error).__name__}: {error}")
    events = random_events(3, 4_000, sensor_size=(20, 15))
    raw = {"t": events.t, "x": events.x, "y": events.y, "p": events.p}
    expected = integrate_events_by_fixed_frames_number(raw, sj_split, 7, 15, 20)
    np.testing.assert_array_equal(integrate_frames(events, 7, split_by), expected)


def test_real_nmnist_recording_totals_and_end_times():
    paths = sorted((DATA / "nmnist-small" / "Train" / "3").glob("*.bin"))
    if not paths:
        pytest.skip(f"../shared/data not found: {DATA}")
    events = read_nmnist_bin(paths[0])
    for split_by in ("count", "time"):
        frames = integrate_frames(events, 10, split_by)
        assert frames.shape == (10, 2, 34, 34)
        assert frames.sum() == len(events)
        assert (frames[:, 0].sum() > 0) and (frames[:, 1].sum() > 0)
        ends = frame_end_times_us(events, 10, split_by)
        assert np.all(np.diff(ends) >= 0) and ends[-1] == events.duration_us
    counts = integrate_frames(events, 10, "count").reshape(10, -1).sum(axis=1)
    assert counts[:-1].tolist() == [len(events) // 10] * 9
    assert counts[-1] == len(events) - 9 * (len(events) // 10)


def test_count_end_times_are_last_event_of_each_frame():
    events = make_events([1000, 1003, 1010, 1011, 1020, 1050, 1100])
    # 7 events, 3 frames: [0,2) [2,4) [4,7)
    assert frame_end_times_us(events, 3, "count").tolist() == [3, 11, 100]


def test_resize_events_maps_coordinates_and_preserves_totals():
    events = make_events(
        [0, 1, 2, 3, 4], x=[0, 1, 2, 3, 3], y=[0, 1, 3, 3, 2], p=[1, 1, 0, 1, 1], sensor_size=(4, 4)
    )
    frames = integrate_frames(events, 1, size=(2, 2))
    expected = np.zeros((1, 2, 2, 2), dtype=np.int32)
    expected[0, 1, 0, 0] = 2  # (0,0) and (1,1) -> (0,0)
    expected[0, 0, 1, 1] = 1  # (x=2, y=3) -> (1,1)
    expected[0, 1, 1, 1] = 2  # (3,3) and (3,2) -> (1,1)
    np.testing.assert_array_equal(frames, expected)

    events = random_events(11, 3_000, sensor_size=(128, 128))
    for size in [(48, 48), (30, 70), (200, 150)]:
        frames = integrate_frames(events, 4, size=size)
        assert frames.shape == (4, 2, *size)
        assert frames.sum() == len(events)
        np.testing.assert_array_equal(
            frames, resize_nearest(integrate_frames(events, 4), size, "events")
        )


def test_resize_interpolate_samples_pixels_like_torch():
    torch = pytest.importorskip("torch")
    full = integrate_frames(random_events(5, 20_000, sensor_size=(128, 100)), 3)
    for size in [(48, 48), (17, 61), (150, 240), (112, 96)]:
        ours = resize_nearest(full, size, "interpolate")
        theirs = torch.nn.functional.interpolate(
            torch.from_numpy(full).float(), size=size, mode="nearest"
        )
        np.testing.assert_array_equal(ours, theirs.numpy().astype(np.int32))

    frames = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    # rows/cols 0 and 2 are kept; the total is not preserved
    assert resize_nearest(frames, (2, 2)).tolist() == [[[[0, 2], [8, 10]]]]


def test_integrate_with_interpolate_resize_matches_resize_of_full_frames():
    events = random_events(2, 2_000, sensor_size=(34, 34))
    frames = integrate_frames(events, 5, "time", size=(48, 48), resize="interpolate")
    expected = resize_nearest(integrate_frames(events, 5, "time"), (48, 48))
    np.testing.assert_array_equal(frames, expected)
    assert frames.sum() != len(events)


def test_clip_caps_each_pixel_count():
    events = make_events([0, 1, 2, 3, 4, 5], x=[1, 1, 1, 1, 2, 2], p=[1, 1, 1, 1, 0, 0])
    frames = integrate_frames(events, 1, clip=2)
    assert frames[0, 1, 0, 1] == 2 and frames[0, 0, 0, 2] == 2 and frames.sum() == 4
    assert integrate_frames(events, 1, clip=3).sum() == 5
    unclipped = integrate_frames(random_events(1, 5_000), 2)
    clipped = integrate_frames(random_events(1, 5_000), 2, clip=1)
    np.testing.assert_array_equal(clipped, np.minimum(unclipped, 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_frames": 0},
        {"n_frames": 2.5},
        {"split_by": "number"},
        {"size": (48,)},
        {"size": (0, 48)},
        {"resize": "bilinear"},
        {"clip": 0},
        {"frame_us": 0},
        {"frame_us": 2.5},
        {"frame_us": 10, "split_by": "count"},
    ],
)
def test_frame_spec_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        FrameSpec(**kwargs)


def test_frame_spec_apply_end_times_and_key():
    events = random_events(4, 1_000)
    spec = FrameSpec(n_frames=5, split_by="time", size=[17, 17], clip=3)
    assert spec.size == (17, 17)
    np.testing.assert_array_equal(
        spec.apply(events), integrate_frames(events, 5, "time", size=(17, 17), clip=3)
    )
    np.testing.assert_array_equal(spec.end_times_us(events), frame_end_times_us(events, 5, "time"))

    base = FrameSpec()
    assert base.key() == FrameSpec().key() == "n10-count-native-events-clipnone"
    changes = {
        "n_frames": 8,
        "split_by": "time",
        "size": (48, 48),
        "resize": "interpolate",
        "clip": 1,
        "frame_us": 10_000,
    }
    assert set(changes) == {f.name for f in dataclasses.fields(FrameSpec)}
    keys = {base.key()}
    for name, value in changes.items():
        extra = {"split_by": "time"} if name == "frame_us" else {}
        keys.add(dataclasses.replace(base, **{name: value}, **extra).key())
    assert len(keys) == len(changes) + 1
    assert (
        FrameSpec(n_frames=30, split_by="time", frame_us=10_000)
        .key()
        .startswith("n30-time10000us-")
    )
    assert FrameSpec(size=(48, 32)).key() != FrameSpec(size=(32, 48)).key()
