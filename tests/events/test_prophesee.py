"""Prophesee EVT 2.0 / EVT 3.0 / DAT decoders against files built from the format descriptions
(known words, known events) and against the real sample files.

expelliarmus is a cross-check only where it is right: it agrees event for event on EVT 2.0 and
DAT, and on EVT 3.0's x, y and polarity, but not on EVT 3.0 timestamps: it adds 4096 us whenever
a TIME_LOW is smaller than the previous one, even after TIME_HIGH has advanced (199,475 of the
219,596 timestamps of the sample differ; its span is 53.9 ms where the TIME_HIGH words allow
less than 3 x 4096 us).
"""

from pathlib import Path

import numpy as np
import pytest

from hsd.cli import main
from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedEventsWarning
from hsd.events.formats import iter_events, read_events, write_dat, write_evt2, write_evt3

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "event-files"
HEADER3 = b"% evt 3.0\n% geometry 64x48\n% end\n"
HEADER2 = b"% evt 2.0\n% geometry 64x48\n% end\n"


def _raw3(tmp_path, words, name="w.raw"):
    path = tmp_path / name
    path.write_bytes(HEADER3 + np.array(words, "<u2").tobytes())
    return path


def _raw2(tmp_path, words, name="w2.raw"):
    path = tmp_path / name
    path.write_bytes(HEADER2 + np.array(words, "<u4").tobytes())
    return path


def high(v):
    return 0x8000 | v


def low(v):
    return 0x6000 | v


def addr_y(v):
    return 0x0000 | v


def addr_x(v, p=1):
    return 0x2000 | (p << 11) | v


def base_x(v, p=0):
    return 0x3000 | (p << 11) | v


def _tuples(ev):
    return list(zip(ev.t.tolist(), ev.x.tolist(), ev.y.tolist(), ev.p.tolist(), strict=True))


def test_evt3_issue_example_time_low_out_of_order_adds_nothing(tmp_path):
    words = [high(1), low(4000), addr_y(5), addr_x(7), high(2), low(10), addr_x(8)]
    words += [low(20), low(15), addr_x(9), low(30), addr_x(10)]
    ev = read_events(_raw3(tmp_path, words))
    assert ev.t.tolist() == [8096, 8202, 8207, 8222]
    assert ev.x.tolist() == [7, 8, 9, 10] and ev.y.tolist() == [5] * 4


def test_evt3_vectors_skipped_words_and_unsynchronised_start(tmp_path):
    words = [
        addr_x(3),  # before any TIME_HIGH / ADDR_Y: dropped
        high(0),
        0x4FFF,  # VECT_12 before any VECT_BASE_X: dropped
        low(100),
        addr_x(1),  # no row yet: dropped
        addr_y(0x800 | 7),  # system bit set: y = 7
        base_x(10, p=1),
        0x4000 | 0b100000000101,  # VECT_12: x = 10, 12, 21
        0x5000 | 0b10000001,  # VECT_8: x = 22, 29 (base advanced by 12)
        0xA000 | 0x101,  # EXT_TRIGGER: skipped
        0xE123,  # OTHERS
        0xF456,  # CONTINUED_12
        0x7009,  # CONTINUED_4
        0x1FFF,  # reserved code
        addr_x(40, p=0),
        base_x(50, p=0),
        0x5000 | 0b1,  # x = 50, p = 0
    ]
    ev = read_events(_raw3(tmp_path, words), on_unsorted="error")
    assert _tuples(ev) == [
        (100, 10, 7, 1),
        (100, 12, 7, 1),
        (100, 21, 7, 1),
        (100, 22, 7, 1),
        (100, 29, 7, 1),
        (100, 40, 7, 0),
        (100, 50, 7, 0),
    ]


def test_evt3_time_high_wraps_every_2_to_24_us(tmp_path):
    words = [high(4094), low(5), addr_y(1), addr_x(1), high(4095), low(4000), addr_x(2)]
    words += [high(0), low(3), addr_x(3), high(1), low(0), addr_x(4)]
    ev = read_events(_raw3(tmp_path, words), on_unsorted="error")
    base = 1 << 24
    assert ev.t.tolist() == [4094 * 4096 + 5, 4095 * 4096 + 4000, base + 3, base + 4096]


def test_evt3_small_time_high_step_back_is_out_of_order_not_a_wrap(tmp_path):
    words = [high(10), low(0), addr_y(1), addr_x(1), high(9), low(0), addr_x(2)]
    ev = read_events(_raw3(tmp_path, words), on_unsorted="keep")
    assert ev.t.tolist() == [10 * 4096, 9 * 4096]
    with pytest.warns(UnsortedEventsWarning, match="sorted"):
        assert read_events(_raw3(tmp_path, words)).t.tolist() == [9 * 4096, 10 * 4096]


def test_evt2_words_and_wrap(tmp_path):
    cd = lambda typ, ts, x, y: (typ << 28) | (ts << 22) | (x << 11) | y  # noqa: E731
    words = [cd(1, 3, 1, 1), (0x8 << 28) | 5, cd(1, 7, 2, 3), cd(0, 63, 4, 5), 0xA0000001]
    words += [(0x8 << 28) | 0xFFFFFFF, cd(0, 1, 6, 7), (0x8 << 28) | 2, cd(1, 0, 8, 9)]
    ev = read_events(_raw2(tmp_path, words), on_unsorted="error")
    top = 0xFFFFFFF << 6
    assert _tuples(ev) == [
        (5 * 64 + 7, 2, 3, 1),
        (5 * 64 + 63, 4, 5, 0),
        (top + 1, 6, 7, 0),
        ((1 << 34) + 2 * 64, 8, 9, 1),
    ]


def _random_events(n, seed, size=(640, 480), span=3_000_000):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span, n))
    return Events(
        t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), size
    )


@pytest.mark.parametrize(
    ("writer", "ext"), [(write_evt3, ".raw"), (write_evt2, ".raw"), (write_dat, ".dat")]
)
def test_writers_round_trip_and_chunks_concatenate(tmp_path, writer, ext):
    events = _random_events(20_000, seed=3)
    path = tmp_path / f"r{ext}"
    writer(path, events)
    back = read_events(path)
    assert back.sensor_size == events.sensor_size
    for k in "txyp":
        np.testing.assert_array_equal(getattr(back, k), getattr(events, k))
    for chunk in (1, 7, 4096):
        parts = list(iter_events(path, chunk_events=chunk))
        assert all(len(c) <= chunk for c in parts)
        np.testing.assert_array_equal(np.concatenate([c.t for c in parts]), events.t)
        np.testing.assert_array_equal(np.concatenate([c.x for c in parts]), events.x)


def test_decoder_state_is_carried_across_blocks(tmp_path, monkeypatch):
    import hsd.events.formats.prophesee as prophesee

    events = _random_events(5_000, seed=4, span=1 << 25)  # crosses a 2**24 us wrap
    path = tmp_path / "b.raw"
    write_evt3(path, events)
    whole = read_events(path)
    monkeypatch.setattr(prophesee, "BLOCK_BYTES", 6)  # three words a block
    small = read_events(path)
    np.testing.assert_array_equal(small.t, whole.t)
    np.testing.assert_array_equal(small.t, events.t)


@pytest.fixture(scope="module")
def real() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"../shared/data/event-files not found: {DATA}")
    return DATA


def test_evt3_real_file_every_timestamp_lies_in_its_time_high_span(real):
    path = real / "prophesee_evt3_sample.raw"
    raw = path.read_bytes()
    pos = 0
    while raw[pos : pos + 1] == b"%":  # the header: lines starting with '%'
        pos = raw.index(b"\n", pos) + 1
    body = raw[pos:]
    words = np.frombuffer(body, "<u2")
    highs = words[(words >> 12) == 0x8] & 0xFFF
    assert set(np.unique(highs).tolist()) <= {2861, 2862, 2863}
    ev = read_events(path)
    assert len(ev) == 219_596
    assert int(highs.min()) << 12 <= int(ev.t.min())
    assert int(ev.t.max()) < (int(highs.max()) + 1) << 12
    assert int(ev.t[-1] - ev.t[0]) < 3 * 4096


@pytest.mark.parametrize(
    ("name", "enc", "compare_t"),
    [
        ("prophesee_evt2_sample.raw", "EVT2", True),
        ("prophesee_evt3_sample.raw", "EVT3", False),  # its timestamps are wrong (module doc)
        ("ncars_sample.dat", "DAT", True),
    ],
)
def test_agrees_with_expelliarmus_where_it_is_right(real, name, enc, compare_t):
    expelliarmus = pytest.importorskip("expelliarmus")
    ours = read_events(real / name, on_unsorted="keep")
    theirs = expelliarmus.Wizard(encoding=enc, fpath=str(real / name)).read()
    assert len(ours) == len(theirs)
    for k in ("x", "y", "p") + (("t",) if compare_t else ()):
        np.testing.assert_array_equal(getattr(ours, k).astype(np.int64), theirs[k].astype(np.int64))


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (b"% evt 3.0\n% geometry 100000x480\n% end\n", "100000x480 sensor"),
        (b"% evt 3.0\n% format EVT3;height=abc;width=640\n% end\n", "height is not a whole number"),
        (b"% evt 2.0\n% geometry big\n% end\n", "geometry is not WIDTHxHEIGHT"),
        (b"% evt 2.0\n% Width 0\n% Height 10\n% end\n", "0x10 sensor"),
        (b"% evt 3.0\n" + b"% " + b"x" * 70_000 + b"\n", "does not end within"),
        (b"% evt 3.0\n% end\n\x00", "not a multiple of 2"),
    ],
)
def test_bad_headers_are_refused_naming_the_file(tmp_path, capsys, content, fault):
    path = tmp_path / "bad.raw"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match=fault) as info:
        read_events(path)
    assert str(path) in str(info.value)
    assert main(["events", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hsd: error:") and fault.split()[0] in err and "Traceback" not in err
