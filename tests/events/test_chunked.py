"""Chunked readers: chunks concatenate exactly to read_events, memory-bounded windows, unsorted
input refused in streams, files with no events, header sanity."""

import struct

import numpy as np
import pytest

from hsd.errors import EventFileError
from hsd.events.core import Events, validate_events
from hsd.events.formats import (
    FORMATS,
    _base,
    iter_events,
    read_events,
    write_aedat2,
    write_aedat31,
    write_atis_bin,
)
from hsd.events.formats.eventstream import write_event_stream
from hsd.events.info import describe_file


def _events(seed: int, n: int, size=(128, 128), span=3_000_000) -> Events:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span, n))
    return validate_events(
        t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), size
    )


WRITERS = {
    "a.bin": (write_atis_bin, (34, 34)),
    "a.aedat": (write_aedat2, (128, 128)),
    "b.aedat": (write_aedat31, (128, 128)),
    "c.es": (write_event_stream, (320, 240)),
}


@pytest.fixture(params=list(WRITERS))
def recording(request, tmp_path, monkeypatch):
    # small blocks so every decoder crosses many block boundaries (state carried across them)
    monkeypatch.setattr(_base, "BLOCK_BYTES", 997)
    for mod in ("atis", "aedat", "eventstream"):
        monkeypatch.setattr(f"hsd.events.formats.{mod}.BLOCK_BYTES", 997 if mod != "atis" else 995)
    writer, size = WRITERS[request.param]
    events = _events(3, 5000, size, span=2**32 + 5000 if request.param == "b.aedat" else 3_000_000)
    path = tmp_path / request.param
    writer(path, events)
    return path, events


def test_every_owned_format_has_a_chunked_reader():
    for fid in ("atis-bin", "aedat2", "aedat3.1", "aedat4", "event-stream"):
        assert FORMATS[fid].chunks is not None


@pytest.mark.parametrize("k", [1, 7, 4096])
def test_chunks_concatenate_to_the_whole_read(recording, k):
    path, events = recording
    whole = read_events(path)
    np.testing.assert_array_equal(whole.t, events.t)
    np.testing.assert_array_equal(whole.x, events.x)
    np.testing.assert_array_equal(whole.y, events.y)
    np.testing.assert_array_equal(whole.p, events.p)
    chunks = list(iter_events(path, chunk_events=k))
    assert all(len(c) == k for c in chunks[:-1]) and 1 <= len(chunks[-1]) <= k
    joined = Events.concatenate(chunks)
    assert joined.sensor_size == whole.sensor_size
    for name in "txyp":
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))


def test_chunk_us_windows_stream_and_match_the_whole_read(recording):
    path, _ = recording
    whole = read_events(path)
    w = 100_000
    windows = list(iter_events(path, chunk_us=w))
    ids = (whole.t - whole.t[0]) // w
    expected = [whole.t[ids == i] for i in np.unique(ids)]
    assert [c.t.tolist() for c in windows] == [e.tolist() for e in expected]
    for c in windows:
        assert len(np.unique((c.t - whole.t[0]) // w)) == 1


def test_event_stream_round_trip_with_long_gaps(tmp_path):
    ev = _events(1, 300, (300, 200), span=10**7)  # gaps of many overflow bytes
    path = tmp_path / "g.es"
    write_event_stream(path, ev)
    back = read_events(path)
    for name in "txyp":
        np.testing.assert_array_equal(getattr(back, name), getattr(ev, name))
    raw = path.read_bytes()
    # stored y is height - 1 - y (faery's orientation)
    first = raw[20:].lstrip(b"\xff")
    assert struct.unpack_from("<HH", first, 1) == (int(ev.x[0]), 200 - 1 - int(ev.y[0]))


def test_unsorted_stream_refused_whole_read_sorts(tmp_path):
    ev = _events(2, 50, (34, 34))
    t = ev.t.copy()
    t[30] = t[10] - 1 if t[10] > 0 else 0
    t[31:] += 0
    bad = validate_events(t, ev.x, ev.y, ev.p, (34, 34), on_unsorted="keep")
    path = tmp_path / "u.bin"
    write_atis_bin(path, bad)
    with pytest.warns(UserWarning, match="sorted stably"):
        assert np.all(np.diff(read_events(path).t) >= 0)
    with pytest.raises(EventFileError, match="timestamps decrease at event 30"):
        list(iter_events(path, chunk_events=7))
    kept = Events.concatenate(list(iter_events(path, chunk_events=7, on_unsorted="keep")))
    assert kept.t.tolist() == t.tolist()
    assert describe_file(path)["sorted"] is False


def test_info_on_a_recording_without_events(tmp_path):
    path = tmp_path / "h.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: DVS128\r\n")
    d = describe_file(path)
    assert (d["events"], d["sensor_size"], d["t_first_us"]) == (0, [128, 128], None)
    assert list(iter_events(path, chunk_us=10)) == []
    with pytest.raises(EventFileError, match="zero events"):
        read_events(path)


@pytest.mark.parametrize(
    ("name", "content", "fault"),
    [
        ("a.es", b"Event Stream" + bytes([2, 0, 0, 1]) + struct.pack("<HH", 60000, 4), "60000x4"),
        ("a.es", b"Event Stream" + bytes([2, 0, 0, 1]) + struct.pack("<HH", 0, 4), "0x4"),
        ("a.es", b"Event Stream" + bytes([2, 0, 0, 0]) + bytes(4), "type generic"),
        (
            "a.aedat",
            b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
            + struct.pack("<HHIIIIII", 1, 1, 8, 4, 0, 10**9, 1, 1),
            "truncated packet",
        ),
        (
            "a.aedat",
            b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
            + struct.pack("<HHIIIIII", 77, 1, 8, 4, 0, 1, 1, 1)
            + bytes(8),
            "event type 77 is unknown",
        ),
        (
            "a.aedat",
            b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
            + struct.pack("<HHIIIIII", 1, 1, 8, 4, 0, 1, 5, 1)
            + bytes(8),
            "in a packet of capacity 1",
        ),
        ("A.BIN", bytes([1, 2, 3, 4]), "not a multiple of 5"),
    ],
)
def test_header_sanity(tmp_path, name, content, fault):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=fault) as info:
        read_events(path)
    assert str(path) in str(info.value)
    with pytest.raises(EventFileError, match=fault):
        list(iter_events(path, chunk_events=3))


def test_timestamps_near_int64_limit_refused(tmp_path):
    path = tmp_path / "t.aedat"
    n = 1
    body = struct.pack("<II", (1 << 17) | (2 << 2), 5)
    path.write_bytes(
        b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"
        + struct.pack("<HHIIIIII", 1, 1, 8, 4, 0xFFFFFFFF, n, n, n)
        + body
    )
    with pytest.raises(EventFileError, match="beyond"):
        read_events(path)
