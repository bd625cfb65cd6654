"""Event sources: a recording file, a DV network stream or an attached camera, each an iterator
of :class:`~hsd.events.core.Events` chunks in time order.

A source is named by one string (``hsd stream CKPT SOURCE``), parsed by :func:`open_source`:

* ``dv://HOST:PORT``: an iniVation DV network event stream (a TCP server such as DV's
  "Network TCP server" output module or dv-processing's ``dv.io.NetworkWriter``), read with
  dv-processing's ``dv.io.NetworkReader``. ``HOST`` is a name or an IP address (IPv6 in
  brackets: ``dv://[::1]:7777``). The stream ends when the sender closes the connection.
* ``camera`` (the first iniVation camera found) or ``camera:SERIAL``: an attached camera, read
  with ``dv.io.camera.open``. It ends when the camera is unplugged (or on Ctrl-C).
* anything else: an event file of any supported format (a file literally named ``camera`` is
  ``./camera``), read in chunks with :func:`hsd.events.iter_events`, so memory does not grow
  with the recording's length. ``realtime=True`` hands each chunk over at the wall-clock time of
  its last event (first event = start), i.e. at the pace the recording was made.

The two live sources need dv-processing, the optional extra ``live``
(``pip install 'hsd-snn[live]'``; the distribution's name is looked up at run time by
:func:`install_hint`). Without it, opening one raises :class:`~hsd.errors.SourceError` saying
what to install; files never need it.

Every source records, for the chunk it yielded last, :attr:`EventSource.last_arrival`: the
``time.perf_counter()`` second at which that chunk arrived (live: when dv-processing handed the
batch over; file: when it was read; realtime file: the wall time its last event is due). The
streaming classifier measures each decision's latency from it.

Pure numpy (and dv-processing when a live source is opened): nothing here imports torch.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hsd.errors import EventFileError, SourceError
from hsd.events.core import Events, validate_events
from hsd.events.formats.registry import check_chunking, iter_events

__all__ = [
    "LIVE_EXTRA",
    "CameraSource",
    "DVInputSource",
    "EventSource",
    "FileSource",
    "NetworkSource",
    "count_events",
    "install_hint",
    "iter_events",
    "open_source",
    "parse_source",
]

LIVE_EXTRA = "live"
#: Seconds between polls of dv-processing's non-blocking readers when no batch is waiting.
POLL_S = 0.0005


def install_hint() -> str:
    """``pip install 'hsd-snn[live]'`` (:func:`hsd.errors.install_hint`)."""
    from hsd.errors import install_hint as hint

    return hint(LIVE_EXTRA)


def _import_dv(source: str) -> Any:
    try:
        import dv_processing
    except ImportError:
        raise SourceError(
            source,
            f"live sources need dv-processing, which is not installed: {install_hint()}",
        ) from None
    return dv_processing


def count_events(path: str | Path, *, chunk_events: int = 1 << 20) -> tuple[int, int]:
    """``(events, duration_us)`` of a recording, read in chunks (memory independent of its
    length); used to cut a whole file as training did when no framing is given."""
    n, first, last = 0, None, None
    for chunk in iter_events(path, chunk_events=chunk_events):
        if len(chunk):
            first = int(chunk.t[0]) if first is None else first
            last = int(chunk.t[-1])
            n += len(chunk)
    return n, 0 if first is None else last - first


class EventSource:
    """Base of every source: iterate it for ``Events`` chunks; :meth:`close` it (or use it as a
    context manager) to release a connection or camera.

    ``name``: the source as given; ``live``: no known length, no end until the sender stops;
    ``sensor_size``: ``(width, height)`` when the source declares it (live streams and cameras
    do; files are sized by their chunks); ``last_arrival``: see the module docstring.
    """

    live = False

    def __init__(self, name: str, sensor_size: tuple[int, int] | None = None) -> None:
        self.name = name
        self.sensor_size = sensor_size
        self.last_arrival: float | None = None

    def __iter__(self) -> Iterator[Events]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds; iterating afterwards yields nothing."""

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileSource(EventSource):
    """An event file read in chunks (:func:`iter_events`).

    Default chunking: ``chunk_events=1024``, or with ``realtime`` ``chunk_us=1000`` (1 ms, so
    the pacing is fine-grained). ``realtime``: sleep so that each chunk is yielded at
    ``start + (t_last - t0) / speed`` seconds, ``start`` the wall time of the first chunk; a
    consumer slower than the recording falls behind (no chunk is dropped) and its latency shows
    it, as ``last_arrival`` is the time the chunk was due. ``clock``/``sleep`` are injectable for
    tests.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_events: int | None = None,
        chunk_us: int | None = None,
        realtime: bool = False,
        speed: float = 1.0,
        name: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(str(path) if name is None else name)
        if chunk_events is None and chunk_us is None:
            chunk_us, chunk_events = (1000, None) if realtime else (None, 1024)
        check_chunking(chunk_events, chunk_us)
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.path = Path(path)
        self.chunk_events, self.chunk_us = chunk_events, chunk_us
        self.realtime, self.speed = realtime, float(speed)
        self._clock, self._sleep = clock, sleep
        self._closed = False

    def __iter__(self) -> Iterator[Events]:
        start = t0 = None
        for chunk in iter_events(self.path, chunk_events=self.chunk_events, chunk_us=self.chunk_us):
            if self._closed:
                return
            if len(chunk) == 0:
                continue
            if not self.realtime:
                self.last_arrival = self._clock()
            else:
                if start is None:
                    start, t0 = self._clock(), int(chunk.t[0])
                due = start + (int(chunk.t[-1]) - t0) / 1e6 / self.speed
                wait = due - self._clock()
                if wait > 0:
                    self._sleep(wait)
                self.last_arrival = due
            yield chunk

    def close(self) -> None:
        self._closed = True


class _DVInput(Protocol):
    """What :class:`DVInputSource` uses of a dv-processing input (reader or camera)."""

    def getNextEventBatch(self) -> Any: ...

    def isRunning(self) -> bool: ...


def _events_from_store(store: Any, sensor_size: tuple[int, int], name: str) -> Events:
    """A dv-processing ``EventStore`` -> :class:`Events` (``numpy()`` gives a structured array
    with ``timestamp`` int64 us, ``x``/``y`` int16, ``polarity`` int8 0/1)."""
    arr = store.numpy()
    try:
        return validate_events(
            arr["timestamp"],
            arr["x"],
            arr["y"],
            arr["polarity"].astype(np.uint8, copy=False),
            sensor_size,
            path=None,
            on_unsorted="error",
        )
    except EventFileError as exc:
        raise SourceError(name, f"received invalid events: {exc.problem}") from None


class DVInputSource(EventSource):
    """Events from a dv-processing input (``NetworkReader`` or a camera), polled without
    blocking: a waiting batch is yielded at once; none waiting, the source sleeps ``poll_s``
    and asks again; the input no longer running and nothing waiting, the stream ends.

    ``sensor_size``: the input's event resolution (``getEventResolution()``), else the one given.
    """

    live = True

    def __init__(
        self,
        name: str,
        dv_input: _DVInput,
        sensor_size: tuple[int, int] | None = None,
        *,
        poll_s: float = POLL_S,
    ) -> None:
        resolution = None
        getter = getattr(dv_input, "getEventResolution", None)
        if getter is not None:
            resolution = getter()
        if resolution is not None:
            sensor_size = (int(resolution[0]), int(resolution[1]))
        if sensor_size is None:
            raise SourceError(name, "the stream declares no event resolution (no event stream?)")
        super().__init__(name, sensor_size)
        self._input: _DVInput | None = dv_input
        self.poll_s = poll_s

    def __iter__(self) -> Iterator[Events]:
        while self._input is not None:
            try:
                batch = self._input.getNextEventBatch()
                running = True if batch is not None else self._input.isRunning()
                if batch is None and not running:
                    # The reader's I/O thread may have queued the last packets and seen the
                    # close between the two calls above (CI lost 10 of 12 batches so, under
                    # load): ask once more now that nothing can arrive any more.
                    batch = self._input.getNextEventBatch()
            except RuntimeError as exc:
                raise SourceError(self.name, f"reading failed: {_dv_message(exc)}") from None
            if batch is None:
                if not running:  # the sender closed and everything it sent is read
                    self.close()
                    return
                time.sleep(self.poll_s)
                continue
            if len(batch) == 0:
                continue
            self.last_arrival = time.perf_counter()
            yield _events_from_store(batch, self.sensor_size, self.name)

    def close(self) -> None:
        self._input = None


def _dv_message(exc: BaseException) -> str:
    """The first line of a dv-processing exception, without its boost source location."""
    text = str(exc).strip().splitlines()
    for line in text:  # dv-processing puts "file(line): function()" first, then the message
        line = line.strip()
        if line.startswith("RuntimeError: "):
            return line[len("RuntimeError: ") :]
    first = text[0] if text else type(exc).__name__
    return re.sub(r"\s*\[system:\d+.*$", "", first)


class NetworkSource(DVInputSource):
    """``dv://HOST:PORT``: connects at construction (``HOST`` resolved to an address first)."""

    def __init__(self, name: str, host: str, port: int, *, poll_s: float = POLL_S) -> None:
        dv = _import_dv(name)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise SourceError(name, f"cannot resolve host {host!r}: {exc}") from None
        address = infos[0][4][0]
        try:
            reader = dv.io.NetworkReader(address, port)
        except RuntimeError as exc:
            raise SourceError(
                name, f"cannot connect to {address} port {port}: {_dv_message(exc)}"
            ) from None
        if not reader.isEventStreamAvailable():
            raise SourceError(name, "the server sends no event stream")
        self.host, self.port = host, port
        super().__init__(name, reader, poll_s=poll_s)


class CameraSource(DVInputSource):
    """``camera`` / ``camera:SERIAL``: the first (or the given) iniVation camera on USB."""

    def __init__(self, name: str, serial: str | None = None, *, poll_s: float = POLL_S) -> None:
        dv = _import_dv(name)
        found = list(dv.io.camera.discover())
        serials = [str(getattr(d, "serialNumber", "?")) for d in found]
        if not found:
            raise SourceError(name, "no iniVation camera found (dv-processing sees no device)")
        if serial is not None and serial not in serials:
            raise SourceError(
                name, f"no camera with serial {serial!r}; found: {', '.join(serials)}"
            )
        try:
            camera = dv.io.camera.open(serial) if serial is not None else dv.io.camera.open()
        except (RuntimeError, IndexError) as exc:
            raise SourceError(name, f"cannot open the camera: {_dv_message(exc)}") from None
        if not camera.isEventStreamAvailable():
            raise SourceError(name, "this camera has no event output")
        self.serial = serial
        super().__init__(name, camera, poll_s=poll_s)


_DV_URL = re.compile(r"^dv://(?P<host>\[[^\]]*\]|[^:/\[\]]*)(?::(?P<port>[^/]*))?/?$")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def parse_source(text: str) -> tuple[str, dict[str, Any]]:
    """``text`` -> ``("file", {"path"})``, ``("dv", {"host", "port"})`` or
    ``("camera", {"serial"})``; raises :class:`SourceError` for a malformed ``dv://`` address
    or an unknown ``scheme://``."""
    if text == "camera" or text.startswith("camera:"):
        serial = text[len("camera:") :] if text.startswith("camera:") else None
        if serial == "":
            raise SourceError(text, "give the camera's serial after 'camera:', or use 'camera'")
        return "camera", {"serial": serial}
    scheme = _SCHEME.match(text)
    if scheme is None:
        return "file", {"path": Path(text)}
    if scheme["scheme"].lower() != "dv":
        raise SourceError(
            text,
            f"unknown source scheme {scheme['scheme']!r}://; a source is an event file, "
            "dv://HOST:PORT, camera or camera:SERIAL",
        )
    match = _DV_URL.match(text)
    if match is None or not match["host"].strip("[]"):
        raise SourceError(text, "a DV network stream is dv://HOST:PORT, e.g. dv://127.0.0.1:7777")
    port = match["port"]
    if port is None or port == "":
        raise SourceError(text, "no port: a DV network stream is dv://HOST:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SourceError(text, f"port must be an integer in 1..65535, got {port!r}")
    return "dv", {"host": match["host"].strip("[]"), "port": int(port)}


def open_source(
    text: str,
    *,
    chunk_events: int | None = None,
    chunk_us: int | None = None,
    realtime: bool = False,
) -> EventSource:
    """Open the source named by ``text`` (see the module docstring). ``chunk_events`` /
    ``chunk_us`` / ``realtime`` apply to files only; live sources deliver the batches their
    sender makes, and ``realtime`` on one is refused (it is real time already)."""
    kind, spec = parse_source(text)
    if kind == "file":
        return FileSource(
            spec["path"], chunk_events=chunk_events, chunk_us=chunk_us, realtime=realtime, name=text
        )
    if realtime:
        raise SourceError(text, "--realtime paces a file; a live source is real time already")
    if kind == "dv":
        return NetworkSource(text, spec["host"], spec["port"])
    return CameraSource(text, spec["serial"])
