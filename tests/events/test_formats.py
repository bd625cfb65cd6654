import csv
import re
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedEventsWarning, validate_events
from hsd.events.formats import (
    SUPPORTED_EXTENSIONS,
    detect_format,
    read_events,
    read_frames_npz,
    read_gesture_labels,
    split_gesture_recording,
    write_aedat2,
    write_aedat31,
    write_atis_bin,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"../shared/data not found: {DATA}")
    return DATA


def files(data: Path) -> Path:
    return data / "event-files"


def random_events(seed: int, n: int, sensor_size=(128, 128), span_us=2_000_000) -> Events:
    rng = np.random.default_rng(seed)
    return validate_events(
        np.sort(rng.integers(0, span_us, n)),
        rng.integers(0, sensor_size[0], n),
        rng.integers(0, sensor_size[1], n),
        rng.integers(0, 2, n),
        sensor_size,
    )


def assert_same(a: Events, b: Events) -> None:
    assert a.sensor_size == b.sensor_size
    for name in "txyp":
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype


def atis_bytes(rows) -> bytes:
    """Encode (x, y, p, t) rows in the 5-byte ATIS layout, by hand."""
    out = bytearray()
    for x, y, p, t in rows:
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


# --- real files --------------------------------------------------------------------------------


def test_nmnist_small_counts_match_index(data):
    with (data / "nmnist-small" / "index.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1100
    for row in rows:
        ev = read_events(data / "nmnist-small" / row["path"], sensor_size=(34, 34))
        assert len(ev) == int(row["n_events"])
        assert ev.sensor_size == (34, 34)
        assert np.all(np.diff(ev.t) >= 0)
        assert set(np.unique(ev.p).tolist()) <= {0, 1}


def test_nmnist_sample_inferred_size_and_values(data):
    path = files(data) / "nmnist_tonic_sample.bin"
    ev = read_events(path)
    assert detect_format(path) == "atis-bin"
    assert len(ev) == 4325
    assert ev.sensor_size == (34, 34)  # inferred: max x + 1, max y + 1
    assert (int(ev.t[0]), int(ev.t[-1])) == (654, 311175)
    assert np.bincount(ev.p).tolist() == [2180, 2145]
    assert (ev.t.dtype, ev.x.dtype, ev.y.dtype, ev.p.dtype) == (
        np.int64,
        np.int16,
        np.int16,
        np.uint8,
    )


def test_bs2_same_layout_first_event_hand_decoded(data):
    path = files(data) / "dvs128_1p45s_slayer_1.bs2"
    raw = path.read_bytes()[:5]
    assert raw == bytes([0x31, 0x52, 0x00, 0x00, 0x1C])  # x=49, y=82, p=0, t=28 us
    ev = read_events(path, sensor_size=(128, 128))
    assert (int(ev.x[0]), int(ev.y[0]), int(ev.p[0]), int(ev.t[0])) == (49, 82, 0, 28)
    assert len(ev) == 63471
    assert int(ev.t[-1]) == 1449996
    assert np.bincount(ev.p).tolist() == [31307, 32164]


def test_aedat2_header_only_has_zero_events(data):
    path = files(data) / "aedat2_header_only.aedat"
    assert detect_format(path) == "aedat2"
    with pytest.raises(EventFileError, match="zero events") as err:
        read_events(path)
    assert err.value.path == path
    empty = read_events(path, allow_empty=True)
    assert len(empty) == 0
    assert empty.sensor_size == (128, 128)


@pytest.mark.parametrize(
    ("name", "n", "size", "first", "last_t"),
    [
        ("davis_tonic_sample.aedat4", 111954, (320, 240), (1605537493718345, 154, 204, 0),
         1605537494308262),
        ("davis346_aestream.aedat4", 117667, (346, 260), (1633953690975950, 218, 15, 1),
         1633953691105949),
    ],
)  # fmt: skip
def test_aedat4_real_files(data, name, n, size, first, last_t):
    ev = read_events(files(data) / name)
    assert detect_format(files(data) / name) == "aedat4"
    assert len(ev) == n
    assert ev.sensor_size == size
    assert (int(ev.t[0]), int(ev.x[0]), int(ev.y[0]), int(ev.p[0])) == first
    assert int(ev.t[-1]) == last_t
    assert np.all(np.diff(ev.t) >= 0)


@pytest.mark.parametrize(
    ("name", "fmt", "n", "size", "t_range"),
    [
        ("prophesee_evt2_sample.raw", "evt2", 539481, (640, 480), (1317888, 1367888)),
        ("prophesee_evt3_sample.raw", "evt3", 219596, (1280, 720), (11718656, 11772513)),
        ("ncars_sample.dat", "prophesee-dat", 2009, (78, 42), (0, 99952)),
    ],
)
def test_prophesee_real_files(data, name, fmt, n, size, t_range):
    path = files(data) / name
    assert detect_format(path) == fmt
    ev = read_events(path)
    assert len(ev) == n
    assert ev.sensor_size == size  # evt2/evt3 from the plugin named in the header, DAT inferred
    assert (int(ev.t[0]), int(ev.t[-1])) == t_range
    assert np.all(np.diff(ev.t) >= 0)


def test_dat_first_event_hand_decoded(data):
    path = files(data) / "ncars_sample.dat"
    raw = path.read_bytes()
    start = raw.index(b"\n% Date") + 1
    start = raw.index(b"\n", start) + 1
    assert raw[start : start + 2] == bytes([0, 8])  # event type 0, event size 8
    ts, word = struct.unpack_from("<II", raw, start + 2)
    x, y, p = word & 0x3FFF, (word >> 14) & 0x3FFF, word >> 28
    ev = read_events(path)
    assert (int(ev.t[0]), int(ev.x[0]), int(ev.y[0]), int(ev.p[0])) == (ts, x, y, p)
    assert (ts, x, y, p) == (0, 25, 8, 0)


def test_event_stream_real_file(data):
    path = files(data) / "atis_dvs_faery.es"
    raw = path.read_bytes()
    assert raw[12:16] == bytes([2, 0, 0, 1])  # version 2.0.0, DVS
    assert struct.unpack_from("<HH", raw, 16) == (320, 240)
    ev = read_events(path)
    assert detect_format(path) == "event-stream"
    assert ev.sensor_size == (320, 240)
    assert len(ev) == 473225
    # byte 20 = 0x01 (dt 0, increase), x = 0, y = 239; then the same with x = 1
    assert [(int(ev.t[i]), int(ev.x[i]), int(ev.y[i]), int(ev.p[i])) for i in (0, 1)] == [
        (0, 0, 239, 1),
        (0, 1, 239, 1),
    ]
    assert int(ev.t[-1]) == 999000
    assert np.bincount(ev.p).tolist() == [203224, 270001]


# --- ATIS .bin ---------------------------------------------------------------------------------


def test_atis_hand_encoded_and_overflow_marker(tmp_path):
    path = tmp_path / "a.bin"
    marker = (0, 240, 0, 0)  # y == 240: dropped, adds 2**13 us to all later timestamps
    rows = [(3, 4, 1, 100), (5, 6, 0, 9000), marker, (7, 8, 1, 900), marker, (1, 33, 0, 5)]
    path.write_bytes(atis_bytes(rows))
    ev = read_events(path, sensor_size=(34, 34))
    assert ev.t.tolist() == [100, 9000, 900 + 8192, 5 + 2 * 8192]
    assert ev.x.tolist() == [3, 5, 7, 1]
    assert ev.y.tolist() == [4, 6, 8, 33]
    assert ev.p.tolist() == [1, 0, 1, 0]


def test_atis_round_trip(tmp_path):
    ev = random_events(0, 500, sensor_size=(34, 34))
    path = tmp_path / "r.bin"
    write_atis_bin(path, ev)
    assert path.stat().st_size == 5 * 500
    assert_same(read_events(path, sensor_size=(34, 34)), ev)


def test_atis_round_trip_long_recording_uses_overflow_markers(tmp_path):
    t = np.array([0, (1 << 23) - 1, 1 << 23, 20_000_000, 20_000_000, 30_000_001])
    ev = validate_events(t, np.arange(6), np.arange(6), np.array([0, 1, 0, 1, 0, 1]), (34, 34))
    path = tmp_path / "long.bin"
    write_atis_bin(path, ev)
    markers = -(-(30_000_001 - (1 << 23) + 1) // 8192)
    assert path.stat().st_size == 5 * (6 + markers)
    assert_same(read_events(path, sensor_size=(34, 34)), ev)


def test_atis_writer_refuses_y_240(tmp_path):
    ev = validate_events(np.array([0]), np.array([0]), np.array([240]), np.array([0]), (304, 241))
    with pytest.raises(EventFileError, match="y == 240"):
        write_atis_bin(tmp_path / "y.bin", ev)


# --- AEDAT 2.0 ---------------------------------------------------------------------------------


def test_aedat2_address_layout_like_spikingjelly(tmp_path):
    # raw address: y_raw bits 8..14, x_raw bits 1..7, polarity bit 0;
    # SpikingJelly: x = 127 - y_raw, y = 127 - x_raw, p = 1 - polarity
    addr = (117 << 8) | (107 << 1) | 0
    path = tmp_path / "one.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# hand made\r\n" + struct.pack(">II", addr, 1234))
    ev = read_events(path)
    assert (int(ev.x[0]), int(ev.y[0]), int(ev.p[0]), int(ev.t[0])) == (10, 20, 1, 1234)
    assert ev.sensor_size == (128, 128)

    write_aedat2(tmp_path / "w.aedat", ev)
    raw = (tmp_path / "w.aedat").read_bytes()
    assert raw.startswith(b"#!AER-DAT2.0\r\n")
    assert raw[-8:] == struct.pack(">II", addr, 1234)


def test_aedat2_round_trip(tmp_path):
    ev = random_events(1, 2000)
    path = tmp_path / "r.aedat"
    write_aedat2(path, ev)
    assert detect_format(path) == "aedat2"
    assert_same(read_events(path), ev)


def test_aedat2_davis_layout_refused(tmp_path):
    path = tmp_path / "davis.aedat"
    path.write_bytes(
        b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.Davis346red\r\n"
        + struct.pack(">II", 0, 0)
    )
    with pytest.raises(EventFileError, match="only the DVS128 address layout"):
        read_events(path)


# --- AEDAT 3.1 ---------------------------------------------------------------------------------


def aedat31_packet(e_type: int, overflow: int, events: list[tuple[int, int]]) -> bytes:
    n = len(events)
    head = struct.pack("<HHIIIIII", e_type, 1, 8, 4, overflow, n, n, n)
    return head + b"".join(struct.pack("<II", d, ts) for d, ts in events)


def test_aedat31_hand_encoded_packets(tmp_path):
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n"
    word = (100 << 17) | (30 << 2) | (1 << 1) | 1  # x=100, y=30, on, valid
    special = aedat31_packet(0, 0, [(0xFFFF, 5)])  # type 0 (special): skipped
    polarity = aedat31_packet(1, 1, [(word, 7), ((3 << 17) | (4 << 2) | 1, 9)])
    path = tmp_path / "g.aedat"
    path.write_bytes(header + special + polarity)
    assert detect_format(path) == "aedat3.1"
    ev = read_events(path)
    assert ev.t.tolist() == [7 + (1 << 31), 9 + (1 << 31)]
    assert ev.x.tolist() == [100, 3]
    assert ev.y.tolist() == [30, 4]
    assert ev.p.tolist() == [1, 0]


def test_aedat31_round_trip_with_timestamp_overflow(tmp_path):
    ev = random_events(2, 10_000)
    shifted = validate_events(
        np.sort(np.concatenate([ev.t[:5000], ev.t[5000:] + (3 << 31)])),
        ev.x,
        ev.y,
        ev.p,
        ev.sensor_size,
    )
    path = tmp_path / "r.aedat"
    write_aedat31(path, shifted)
    assert_same(read_events(path), shifted)


def test_gesture_labels_and_split(tmp_path):
    csv_path = tmp_path / "user01_fluorescent_labels.csv"
    csv_path.write_text("class,startTime_usec,endTime_usec\n1,10,20\n11,20,35\n3,100,200\n")
    labels = read_gesture_labels(csv_path)
    assert labels == [(0, 10, 20), (10, 20, 35), (2, 100, 200)]
    t = np.array([5, 10, 19, 20, 34, 35, 50])
    ev = validate_events(t, np.arange(7), np.zeros(7), np.ones(7), (128, 128))
    clips = split_gesture_recording(ev, labels)
    assert [c for c, _ in clips] == [0, 10, 2]
    assert clips[0][1].t.tolist() == [10, 19]  # [start, end): 20 belongs to the next clip
    assert clips[1][1].t.tolist() == [20, 34]
    assert len(clips[2][1]) == 0


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("cls,start,end\n1,0,5\n", "header"),
        ("class,startTime_usec,endTime_usec\n12,0,5\n", "class 12"),
        ("class,startTime_usec,endTime_usec\n1,9,5\n", "bad time range"),
        ("class,startTime_usec,endTime_usec\n1,a,5\n", "three integers"),
    ],
)
def test_gesture_labels_bad(tmp_path, text, fault):
    csv_path = tmp_path / "bad_labels.csv"
    csv_path.write_text(text)
    with pytest.raises(EventFileError, match=fault):
        read_gesture_labels(csv_path)


# --- npz frames --------------------------------------------------------------------------------


def test_frames_npz_round_trip_and_faults(tmp_path):
    frames = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    good = tmp_path / "f.npz"
    np.savez_compressed(good, frames=frames)
    np.testing.assert_array_equal(read_frames_npz(good), frames)
    with pytest.raises(EventFileError, match="holds frames, not events"):
        read_events(good)

    np.savez(tmp_path / "nokey.npz", x=frames)
    with pytest.raises(EventFileError, match="no 'frames' array"):
        read_frames_npz(tmp_path / "nokey.npz")
    np.savez(tmp_path / "ndim.npz", frames=frames[0])
    with pytest.raises(EventFileError, match="expected 4-D"):
        read_frames_npz(tmp_path / "ndim.npz")
    bad = frames.copy()
    bad[1, 0, 2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", frames=bad)
    with pytest.raises(EventFileError, match="1 NaN"):
        read_frames_npz(tmp_path / "nan.npz")


# --- bad input ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(EventFileError, match="no such file") as err:
        read_events(tmp_path / "absent.bin")
    assert str(tmp_path / "absent.bin") in str(err.value)


def test_unknown_extension_lists_supported(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("1 2 3 4\n")
    with pytest.raises(EventFileError, match="unknown extension") as err:
        read_events(path)
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in str(err.value)


def test_truncated_bin(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(atis_bytes([(1, 2, 0, 3)]) + b"\x01\x02")
    with pytest.raises(EventFileError, match="truncated: 7 bytes is not a multiple of 5"):
        read_events(path)


def test_bin_with_foreign_header(tmp_path):
    path = tmp_path / "wrong.bin"
    path.write_bytes(b"#!AER-DAT2.0\r\n" + b"\x00")
    with pytest.raises(EventFileError, match="another format"):
        read_events(path)


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (struct.pack(">II", 1, 2), "missing AEDAT header"),
        (b"#!AER-DAT1.0\r\n" + struct.pack(">II", 1, 2), "version 1.0 is not supported"),
        (b"#!AER-DAT2.0\r\n" + b"\x00" * 12, "truncated: 12 data bytes"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "does not end with #!END-HEADER"),
        (
            b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + aedat31_packet(1, 0, [(1, 2), (1, 3)])[:-4],
            "truncated packet",
        ),
    ],
)
def test_bad_aedat(tmp_path, content, fault):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=fault):
        read_events(path)


def test_coordinates_outside_given_sensor(data):
    path = files(data) / "nmnist_tonic_sample.bin"
    with pytest.raises(EventFileError, match="outside the 20x20 sensor") as err:
        read_events(path, sensor_size=(20, 20))
    assert err.value.path == path


def test_decreasing_timestamps_sorted_with_warning_or_refused(tmp_path):
    path = tmp_path / "u.bin"
    path.write_bytes(atis_bytes([(1, 1, 0, 50), (2, 2, 1, 40), (3, 3, 0, 60)]))
    with pytest.warns(UnsortedEventsWarning, match="decrease 1 times"):
        ev = read_events(path, sensor_size=(4, 4))
    assert ev.t.tolist() == [40, 50, 60]
    assert ev.x.tolist() == [2, 1, 3]
    with pytest.raises(EventFileError, match="timestamps decrease 1 times"):
        read_events(path, sensor_size=(4, 4), on_unsorted="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = read_events(path, sensor_size=(4, 4), on_unsorted="keep")
    assert kept.t.tolist() == [50, 40, 60]


def test_empty_bin_needs_sensor_size_when_allowed(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(EventFileError, match="zero events"):
        read_events(path)
    with pytest.raises(EventFileError, match="no sensor_size"):
        read_events(path, allow_empty=True)
    assert read_events(path, allow_empty=True, sensor_size=(34, 34)).sensor_size == (34, 34)


@pytest.mark.parametrize(
    ("name", "content", "fault"),
    [
        ("a.raw", b"% Date 2020\n\x00\x00\x00\x00", "missing Prophesee header line"),
        ("b.raw", b"% evt 2.1\n\x00\x00\x00\x00", "encoding 'evt2.1' is not supported"),
        ("c.raw", b"% evt 3.0\n\x00\x00\x00", "truncated: 3 data bytes is not a multiple of 2"),
        ("d.raw", b"% evt 2.0\n", "zero events"),
        ("e.dat", b"\x00\x08" + b"\x00" * 8, "missing Prophesee DAT header"),
        ("f.dat", b"% Version 2\n\x00\x08" + b"\x00" * 12, "truncated: 12 event bytes"),
        ("g.dat", b"% Version 2\n\x00\x06" + b"\x00" * 12, "event size is 6 bytes"),
    ],
)
def test_bad_prophesee(tmp_path, name, content, fault):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=fault):
        read_events(path)


def es_header(major: int = 2, stream_type: int = 1) -> bytes:
    return b"Event Stream" + bytes([major, 0, 0, stream_type]) + struct.pack("<HH", 8, 6)


def test_event_stream_hand_encoded_with_overflow_and_reset(tmp_path):
    events = bytes([(3 << 1) | 1]) + struct.pack("<HH", 7, 5)  # dt 3, on, x 7, y 5
    events += b"\xff\xff\xfe"  # two overflows (+254 us), one reset
    events += bytes([(10 << 1) | 0]) + struct.pack("<HH", 0xFE, 0)  # x byte 0xFE is data
    path = tmp_path / "h.es"
    path.write_bytes(es_header() + events)
    with pytest.raises(EventFileError, match="outside the 8x6 sensor"):
        read_events(path)
    ev = read_events(path, sensor_size=(255, 6))
    assert ev.t.tolist() == [3, 3 + 254 + 10]
    assert ev.x.tolist() == [7, 254]
    assert ev.y.tolist() == [5, 0]
    assert ev.p.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (b"Not a Stream" + bytes(8), "missing Event Stream header"),
        (es_header(major=1), "version 1.0.0 is not supported"),
        (es_header(stream_type=2), "type ATIS is not supported"),
        (es_header() + b"\x02\x01\x00", "truncated: the event at byte 20 is incomplete"),
    ],
)
def test_bad_event_stream(tmp_path, content, fault):
    path = tmp_path / "bad.es"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=fault):
        read_events(path)


def test_bad_aedat4(tmp_path, data):
    no_magic = tmp_path / "a.aedat4"
    no_magic.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(EventFileError, match="missing AEDAT 4 header"):
        read_events(no_magic)
    truncated = tmp_path / "t.aedat4"
    truncated.write_bytes((files(data) / "davis_tonic_sample.aedat4").read_bytes()[:100_000])
    with pytest.raises(EventFileError, match="corrupt AEDAT 4 file"):
        read_events(truncated)


@pytest.mark.parametrize(
    ("module", "name", "extra"),
    [
        ("aedat", "davis_tonic_sample.aedat4", "'hsd-snn[aedat4]'"),
        ("expelliarmus", "prophesee_evt2_sample.raw", "'hsd-snn[prophesee]'"),
    ],
)
def test_missing_optional_package(monkeypatch, data, module, name, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(EventFileError, match=re.escape(f"pip install {extra}")):
        read_events(files(data) / name)


@pytest.mark.parametrize(
    ("header", "size"),
    [
        (b"% format EVT3;height=720;width=1280\n", (1280, 720)),
        (b"% evt 2.0\n% geometry 304x240\n", (304, 240)),
        (b"% evt 2.0\n% Width 346\n% Height 260\n", (346, 260)),
        (b"% evt 3.0\n% plugin_name hal_plugin_imx636_evk4\n", (1280, 720)),
    ],
)
def test_prophesee_sensor_size_from_header(tmp_path, header, size):
    path = tmp_path / "empty.raw"
    path.write_bytes(header)
    empty = read_events(path, allow_empty=True)
    assert len(empty) == 0
    assert empty.sensor_size == size
