"""Event sources: source strings, files in chunks, real-time pacing, DV network streams."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hsd.errors import SourceError
from hsd.events.core import Events, validate_events
from hsd.events.formats import read_events, write_atis_bin
from hsd.events.sources import (
    CameraSource,
    DVInputSource,
    FileSource,
    NetworkSource,
    count_events,
    install_hint,
    iter_events,
    open_source,
    parse_source,
)

REPO = Path(__file__).resolve().parents[2]
DV_SEND = REPO / "benchmarks" / "dv_send.py"

try:
    import dv_processing  # noqa: F401

    HAVE_DV = True
except ImportError:
    HAVE_DV = False
needs_dv = pytest.mark.skipif(not HAVE_DV, reason="dv-processing (extra 'live') not installed")


def _events(n=2000, span_us=30_000, seed=0) -> Events:
    rng = np.random.default_rng(seed)
    return validate_events(
        np.sort(rng.integers(0, span_us, n)) + 1_000,
        rng.integers(0, 34, n),
        rng.integers(0, 34, n),
        rng.integers(0, 2, n),
        (34, 34),
    )


def _file(tmp_path, events: Events, name="rec.bin") -> Path:
    path = tmp_path / name
    write_atis_bin(path, events)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sender(path: Path, *args: str) -> tuple[subprocess.Popen, int]:
    """benchmarks/dv_send.py on a free loopback port; returns once it listens."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DV_SEND), str(path), str(port), "--sensor-size", "34,34", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("dv_send: listening"), line
    return proc, port


def test_parse_source():
    assert parse_source("rec.aedat4") == ("file", {"path": Path("rec.aedat4")})
    assert parse_source("./camera") == ("file", {"path": Path("camera")})
    assert parse_source("dv://127.0.0.1:7777") == ("dv", {"host": "127.0.0.1", "port": 7777})
    assert parse_source("dv://localhost:1/") == ("dv", {"host": "localhost", "port": 1})
    assert parse_source("dv://[::1]:65535") == ("dv", {"host": "::1", "port": 65535})
    assert parse_source("camera") == ("camera", {"serial": None})
    assert parse_source("camera:DVXplorer_DXA00093") == (
        "camera",
        {"serial": "DVXplorer_DXA00093"},
    )
    for text, fault in (
        ("dv://127.0.0.1", "no port"),
        ("dv://127.0.0.1:", "no port"),
        ("dv://127.0.0.1:http", "port must be an integer in 1..65535, got 'http'"),
        ("dv://127.0.0.1:0", "1..65535"),
        ("dv://127.0.0.1:70000", "1..65535"),
        ("dv://:7777", "dv://HOST:PORT"),
        ("rtsp://cam:554", "unknown source scheme 'rtsp'"),
        ("camera:", "serial"),
    ):
        with pytest.raises(SourceError, match=fault) as info:
            parse_source(text)
        assert str(info.value).startswith(f"{text}: ")


@pytest.mark.parametrize("chunking", [{"chunk_events": 333}, {"chunk_us": 2_500}])
def test_file_chunks_concatenate_to_the_file(tmp_path, chunking):
    events = _events(2000)
    path = _file(tmp_path, events)
    chunks = list(iter_events(path, **chunking))
    whole = read_events(path)
    joined = Events.concatenate(chunks)
    for name in "txyp":
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))
    if "chunk_events" in chunking:
        assert [len(c) for c in chunks] == [333] * 6 + [2]
    else:  # every chunk within one 2.5 ms window from the first event
        windows = [np.unique((c.t - whole.t[0]) // 2_500) for c in chunks]
        assert all(len(w) == 1 for w in windows)
        assert [int(w[0]) for w in windows] == sorted({int(w[0]) for w in windows})
    assert count_events(path, chunk_events=100) == (2000, whole.duration_us)
    source = FileSource(path, **chunking)
    assert not source.live and sum(len(c) for c in source) == 2000
    with pytest.raises(ValueError, match="exactly one"):
        list(iter_events(path, chunk_events=10, chunk_us=10))


def test_realtime_pacing_with_a_fake_clock(tmp_path):
    events = validate_events([0, 400, 2_500, 2_600, 9_000], [1] * 5, [1] * 5, [0] * 5, (34, 34))
    path = _file(tmp_path, events)
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    source = FileSource(path, realtime=True, clock=lambda: now[0], sleep=sleep)
    arrivals, sizes = [], []
    for chunk in source:
        arrivals.append(round(source.last_arrival - 100.0, 6))
        sizes.append(len(chunk))
        now[0] += 0.0002  # processing takes 0.2 ms
    # 1 ms chunks: [0, 400] | [2500, 2600] | [9000]; each handed over when its last event is due
    assert sizes == [2, 2, 1]
    assert arrivals == [0.0004, 0.0026, 0.009]
    assert slept == [0.0004, 0.0020, 0.0062]


def test_realtime_replay_takes_the_recording_span(tmp_path):
    events = _events(600, span_us=400_000, seed=3)
    path = _file(tmp_path, events)
    start = time.perf_counter()
    chunks = list(open_source(str(path), realtime=True))
    wall = time.perf_counter() - start
    span = events.duration_us / 1e6
    assert sum(len(c) for c in chunks) == 600
    assert wall >= span * 0.97  # never faster than the recording
    assert wall < span + 3.0  # and not far slower (a loaded machine may lag)


class _FakeInput:
    """A dv-processing input: hands over ``batches`` (``None`` = nothing waiting yet)."""

    def __init__(self, batches, resolution=(34, 34)):
        self.batches = list(batches)
        self.resolution = resolution

    def getEventResolution(self):
        return self.resolution

    def getNextEventBatch(self):
        return self.batches.pop(0) if self.batches else None

    def isRunning(self):
        return bool(self.batches)


class _FakeStore:
    def __init__(self, t, x, y, p):
        self.arr = np.zeros(
            len(t), [("timestamp", "<i8"), ("x", "<i2"), ("y", "<i2"), ("polarity", "i1")]
        )
        self.arr["timestamp"], self.arr["x"], self.arr["y"], self.arr["polarity"] = t, x, y, p

    def __len__(self):
        return len(self.arr)

    def numpy(self):
        return self.arr


def test_dv_input_polls_until_the_sender_closes():
    stores = [
        _FakeStore([5, 6], [1, 2], [3, 4], [1, 0]),
        None,
        None,
        _FakeStore([9], [0], [0], [1]),
    ]
    source = DVInputSource("dv://fake:1", _FakeInput([*stores, _FakeStore([], [], [], [])]))
    assert source.live and source.sensor_size == (34, 34)
    chunks = list(source)
    assert [c.t.tolist() for c in chunks] == [[5, 6], [9]]
    assert chunks[0].p.dtype == np.uint8 and chunks[0].p.tolist() == [1, 0]
    assert chunks[0].sensor_size == (34, 34) and source.last_arrival is not None
    assert list(source) == []  # the input was let go at the end
    bad = DVInputSource("dv://fake:1", _FakeInput([_FakeStore([1], [40], [0], [1])]))
    with pytest.raises(SourceError, match=r"^dv://fake:1: received invalid events: .*x"):
        list(bad)
    with pytest.raises(SourceError, match="no event resolution"):
        DVInputSource("camera", _FakeInput([], resolution=None))


def test_live_sources_without_dv_processing(monkeypatch):
    monkeypatch.setitem(sys.modules, "dv_processing", None)  # import fails as if not installed
    hint = install_hint()
    assert hint.startswith("pip install '") and hint.endswith("[live]'")
    for text in ("dv://127.0.0.1:7777", "camera", "camera:ABC"):
        with pytest.raises(SourceError, match="live sources need dv-processing") as info:
            open_source(text)
        assert str(info.value).startswith(f"{text}: ") and hint in str(info.value)


def test_realtime_is_for_files():
    with pytest.raises(SourceError, match="real time already"):
        open_source("dv://127.0.0.1:7777", realtime=True)


@needs_dv
def test_live_source_errors_name_the_source():
    port = free_port()  # nobody listens there
    with pytest.raises(SourceError, match=rf"^dv://127.0.0.1:{port}: cannot connect.*refused"):
        NetworkSource(f"dv://127.0.0.1:{port}", "127.0.0.1", port)
    with pytest.raises(SourceError, match="cannot resolve host"):
        open_source("dv://no-such-host.invalid:7777")
    import dv_processing as dv

    if list(dv.io.camera.discover()):
        pytest.skip("a camera is attached: the no-camera errors cannot be checked")
    with pytest.raises(SourceError, match=r"^camera: no iniVation camera found"):
        CameraSource("camera")
    with pytest.raises(SourceError, match=r"^camera:XYZ: no iniVation camera found"):
        open_source("camera:XYZ")


@needs_dv
def test_network_stream_delivers_the_recording(tmp_path):
    events = _events(3000, seed=4)
    path = _file(tmp_path, events)
    sender, port = start_sender(path, "--batch-events", "250")
    try:
        with open_source(f"dv://127.0.0.1:{port}") as source:
            assert source.live and source.sensor_size == (34, 34)
            chunks = list(source)
        assert sender.wait(20) == 0
    finally:
        sender.kill()
    joined = Events.concatenate(chunks)
    for name in "txyp":
        np.testing.assert_array_equal(getattr(joined, name), getattr(events, name))
