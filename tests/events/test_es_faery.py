"""Event Stream orientation against faery (the current library of the format's authors): a real
AEDAT 4 recording converted to ``.es`` by faery and read back by hsd gives the same events, and
so the same frames, as the recording itself (hsd flips Event Stream's y as faery does)."""

from pathlib import Path

import numpy as np
import pytest

from hsd.events.formats import read_events
from hsd.events.frames import integrate_frames

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "event-files"


def test_faery_conversion_gives_the_same_events_and_frames(tmp_path):
    faery = pytest.importorskip("faery", reason="faery is not installed (extra crosscheck)")
    source = DATA / "davis_tonic_sample.aedat4"
    if not source.is_file():
        pytest.skip(f"../shared/data/event-files not found: {DATA}")
    converted = tmp_path / "converted.es"
    faery.events_stream_from_file(str(source)).to_file(str(converted))
    original, back = read_events(source), read_events(converted)
    assert back.sensor_size == original.sensor_size
    np.testing.assert_array_equal(back.x, original.x)
    np.testing.assert_array_equal(back.y, original.y)  # not height - 1 - y: same orientation
    np.testing.assert_array_equal(back.p, original.p)
    np.testing.assert_array_equal(back.t - back.t[0], original.t - original.t[0])
    np.testing.assert_array_equal(
        integrate_frames(back, 4, "count"), integrate_frames(original, 4, "count")
    )
