"""AEDAT 4 with known events: files written by dv-processing's ``MonoCameraWriter`` (iniVation's
own library, the format's reference implementation; hsd has no AEDAT 4 writer) read back by hsd
event for event, whole and in chunks."""

import os
import sys
import types

import numpy as np
import pytest

from hsd.errors import EventFileError
from hsd.events.core import Events
from hsd.events.formats import iter_events, read_events


def _write(path, t, x, y, p, size):
    dv = pytest.importorskip("dv_processing", reason="dv-processing is not installed (extra live)")
    config = dv.io.MonoCameraWriter.EventOnlyConfig("hsd-test", size)
    writer = dv.io.MonoCameraWriter(str(path), config)
    for start in range(0, len(t), 1000):  # several packets
        store = dv.EventStore()
        for i in range(start, min(len(t), start + 1000)):
            store.push_back(int(t[i]), int(x[i]), int(y[i]), bool(p[i]))
        writer.writeEvents(store)
    del writer  # closes the file


def test_dv_processing_written_aedat4_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(7)
    n, size = 4321, (346, 260)
    t = np.sort(rng.integers(10**6, 10**6 + 300_000, n))
    x, y, p = rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n)
    path = tmp_path / "known.aedat4"
    _write(path, t, x, y, p, size)
    ev = read_events(path)
    assert ev.sensor_size == size
    for got, want in ((ev.t, t), (ev.x, x), (ev.y, y), (ev.p, p)):
        np.testing.assert_array_equal(got.astype(np.int64), want)
    for chunk in (1, 777, 4096):
        parts = list(iter_events(path, chunk_events=chunk))
        assert all(len(c) <= chunk for c in parts)
        joined = Events.concatenate(parts)
        np.testing.assert_array_equal(joined.t, ev.t)
        np.testing.assert_array_equal(joined.x, ev.x)


class PanicException(BaseException):
    """Stands in for pyo3's PanicException (matched by name)."""


def test_a_decoder_panic_is_one_error_line_not_rust_output(tmp_path, monkeypatch, capfd):
    """The Rust decoder writes its panic message and backtrace straight to fd 2 before raising;
    hsd holds fd 2 while the decoder runs and reports the panic as one error naming the file.
    Output of a call that does not panic is passed on."""
    import hsd.events.formats.aedat as aedat_format

    class Decoder:
        def __init__(self, path):
            os.write(2, b"note from the decoder\n")

        def id_to_stream(self):
            return {0: {"type": "events", "width": 8, "height": 6}}

        def __iter__(self):
            return self

        def __next__(self):
            os.write(2, b"thread '<unnamed>' panicked at src/lib.rs\nstack backtrace:\n  0: x\n")
            raise PanicException("index out of bounds")

    monkeypatch.setitem(sys.modules, "aedat", types.SimpleNamespace(Decoder=Decoder))
    monkeypatch.setattr(aedat_format, "_aedat4_check_header", lambda path: None)
    path = tmp_path / "rec.aedat4"
    path.write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(EventFileError, match="decoder panic: index out of bounds") as info:
        aedat_format._read_aedat4(path, None, "error", False)
    assert str(path) in str(info.value)
    err = capfd.readouterr().err
    assert "note from the decoder" in err
    assert "panicked" not in err and "stack backtrace" not in err
