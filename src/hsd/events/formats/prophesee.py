"""Prophesee EVT 2.0 / EVT 3.0 ``.raw`` and DAT ``.dat`` files, decoded by hsd in vectorised
numpy from the published format descriptions (Prophesee / OpenEB documentation: "EVT 2.0
Format", "EVT 3.0 Format", "DAT File Format"). No third-party decoder is needed; expelliarmus
(extra ``prophesee``) is kept only as a cross-check in the tests, where it is right.

Every decoder reads the file in blocks (:data:`~hsd.events.formats._base.BLOCK_BYTES`) and
carries its state (time base, row, vector base) across blocks, so the chunked readers
(:func:`hsd.events.iter_events`) use memory independent of the file's length and the whole-file
reader stays below twice the arrays it returns.

**EVT 3.0** (16-bit little-endian words, type in bits 15..12):

* ``0x8`` EVT_TIME_HIGH: bits 11..0 are timestamp bits 23..12; ``0x6`` EVT_TIME_LOW: bits
  11..0 are timestamp bits 11..0. An event's time is ``TIME_HIGH << 12 | TIME_LOW`` of the last
  words of each kind: a TIME_LOW smaller than the previous one does **not** add 4096 us (only a
  new TIME_HIGH advances the upper bits), so every timestamp lies in the 4096 us its TIME_HIGH
  allows. The 24-bit time wraps every 2**24 us: a TIME_HIGH more than half its range (2048)
  below the previous one starts a new period (+2**24 us); a smaller decrease is taken as
  out-of-order data and kept as it is (``read_events`` then sorts, as for every format).
* ``0x0`` EVT_ADDR_Y: y in bits 10..0 (bit 11, the master/slave system bit, is ignored).
* ``0x2`` EVT_ADDR_X: one event at x = bits 10..0, polarity bit 11, on the last row and time.
* ``0x3`` VECT_BASE_X: polarity bit 11 and base x bits 10..0 for the vector words after it;
  ``0x4`` VECT_12 / ``0x5`` VECT_8: one event at ``base + i`` for every set bit i of the 12 /
  8 valid bits (ascending x), then the base advances by 12 / 8.
* Skipped (no CD event): ``0xA`` EXT_TRIGGER, ``0xE`` OTHERS, ``0x7`` CONTINUED_4, ``0xF``
  CONTINUED_12 and the reserved codes ``0x1``, ``0x9``, ``0xB``, ``0xC``, ``0xD``.
* Events before the first TIME_HIGH or the first ADDR_Y (no defined time or row), and vector
  words before the first VECT_BASE_X, are dropped (the stream has not been synchronised yet).

**EVT 2.0** (32-bit little-endian words, type in bits 31..28): ``0x0`` CD_OFF / ``0x1`` CD_ON
with timestamp bits 5..0 in bits 27..22, x in bits 21..11, y in bits 10..0; ``0x8``
EVT_TIME_HIGH with timestamp bits 33..6 in bits 27..0 (wrapping every 2**34 us, handled like
EVT 3.0's); ``0xA`` EXT_TRIGGER, ``0xE`` OTHERS, ``0xF`` CONTINUED skipped; CD events before the
first TIME_HIGH dropped.

**DAT**: ``%`` header lines, then one byte event type and one byte event size (8), then per
event a uint32 timestamp (us) and a uint32 with x in bits 13..0, y in bits 27..14 and polarity in
bits 31..28 (0 or 1), little-endian. A timestamp more than 2**31 us below the previous one is a
wrap of the 32-bit counter (+2**32 us).

Headers: a sensor size from ``% geometry WxH``, ``% format EVT3;height=H;width=W``,
``% Width`` / ``% Height`` or a known ``% plugin_name``; a size above
:data:`~hsd.events.formats._base.MAX_SENSOR_SIDE`, a non-numeric size field or a header that
never ends within 64 KiB is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import (
    BLOCK_BYTES,
    Raw,
    check_header_size,
    collect,
    head,
    infer_size,
    open_file,
    read_at,
    rechunk,
    size_of,
)
from hsd.events.formats.registry import FileFormat, register

# Sensor geometry of Prophesee camera plugins named in ``% plugin_name`` header lines.
_PROPHESEE_PLUGINS = {"gen3": (640, 480), "gen31": (640, 480), "gen41": (1280, 720)}
_PROPHESEE_IMX636 = (1280, 720)


def _sniff_raw(path: Path, first: bytes) -> str:
    header, _ = _prophesee_header(head(path, 1 << 16))
    encoding = _prophesee_encoding(header)
    if encoding is None:
        raise EventFileError(
            path, "missing Prophesee header line '% evt 2.0' or '% evt 3.0' (or '% format')"
        )
    if encoding not in ("evt2", "evt3"):
        raise EventFileError(path, f"Prophesee encoding {encoding!r} is not supported")
    return encoding


def _sniff_dat(path: Path, first: bytes) -> str:
    if not first.startswith(b"%"):
        raise EventFileError(path, "missing Prophesee DAT header (lines starting with '%')")
    return "prophesee-dat"


def _prophesee_header(data: bytes) -> tuple[list[str], int]:
    """The ``%`` header lines at the start of ``data`` (decoded, without ``%`` and newline, up to
    an optional ``% end``) and the header's length in bytes."""
    lines = []
    pos = 0
    while data[pos : pos + 1] == b"%":
        end = data.find(b"\n", pos)
        end = len(data) - 1 if end < 0 else end
        line = data[pos + 1 : end].decode("latin-1").strip()
        pos = end + 1
        if line == "end":
            break
        lines.append(line)
    return lines, pos


def _prophesee_encoding(header: list[str]) -> str | None:
    for line in header:
        key, _, value = line.partition(" ")
        if key == "evt":
            return "evt" + value.strip().replace(".0", "")
        if key == "format":
            return value.split(";")[0].strip().lower()
    return None


def _prophesee_sensor_size(path: Path, header: list[str]) -> tuple[int, int] | None:
    """Sensor size from ``% geometry WxH``, ``% format ...;height=H;width=W``,
    ``% Width``/``% Height`` lines or a known ``% plugin_name``; None when absent. A size that is
    not a number or lies outside 1..MAX_SENSOR_SIDE is refused."""
    values: dict[str, str] = {}
    for line in header:
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip()
        if key in ("geometry", "width", "height", "format") and values.get(key, value) != value:
            raise EventFileError(
                path, f"the header gives {key} twice ({values[key]!r} and {value!r})"
            )
        values[key] = value

    def number(text: str, what: str) -> int:
        if not text.strip().isdigit():
            raise EventFileError(path, f"header field {what} is not a whole number: {text!r}")
        return int(text)

    size = None
    if "geometry" in values:
        match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", values["geometry"])
        if not match:
            raise EventFileError(
                path, f"header field geometry is not WIDTHxHEIGHT: {values['geometry']!r}"
            )
        size = int(match.group(1)), int(match.group(2))
    fields = dict(f.split("=", 1) for f in values.get("format", "").split(";") if f.count("=") == 1)
    if size is None and "width" in fields and "height" in fields:
        size = number(fields["width"], "width"), number(fields["height"], "height")
    if size is None and "width" in values and "height" in values:
        size = number(values["width"], "Width"), number(values["height"], "Height")
    if size is None:
        plugin = values.get("plugin_name", "").lower()
        if "imx636" in plugin:
            return _PROPHESEE_IMX636
        match = re.search(r"gen(\d+)", plugin)
        if match and "gen" + match.group(1) in _PROPHESEE_PLUGINS:
            return _PROPHESEE_PLUGINS["gen" + match.group(1)]
        return None
    return check_header_size(path, *size)


_HEAD_BYTES = 1 << 16
_EVT3_WRAP = 1 << 24
_EVT2_WRAP = 1 << 34
_DAT_WRAP = 1 << 32


def _body_start(path: Path) -> tuple[list[str], int]:
    """Header lines and the byte offset where the data begins."""
    data = head(path, _HEAD_BYTES)
    header, length = _prophesee_header(data)
    if length >= len(data) and len(data) == _HEAD_BYTES and data[length - 1 : length] != b"\n":
        raise EventFileError(path, f"the '%' header does not end within {_HEAD_BYTES} bytes")
    return header, length


def _ffill(mask: np.ndarray, values: np.ndarray, initial: int) -> np.ndarray:
    """For every position, ``values`` at the last position ``<= i`` where ``mask`` holds, or
    ``initial`` before the first one (int64)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    np.maximum.accumulate(idx, out=idx)
    out = values.astype(np.int64)[np.maximum(idx, 0)]
    out[idx < 0] = initial
    return out


def _epochs(values: np.ndarray, previous: int, half: int) -> np.ndarray:
    """Number of wraps before each of ``values`` (a counter that wraps at ``2 * half``): a value
    more than ``half`` below its predecessor (``previous`` for the first; -1 = none) is a wrap."""
    prev = np.empty(len(values), np.int64)
    if len(values):
        prev[0] = previous if previous >= 0 else values[0]
        prev[1:] = values[:-1]
    return np.cumsum(prev - values.astype(np.int64) > half)


class _Evt3:
    """EVT 3.0 decoder state carried across blocks (see the module docstring)."""

    def __init__(self) -> None:
        self.high = -1  # last TIME_HIGH value (12 bits); -1 before the first
        self.epoch = 0  # 2**24 us periods so far
        self.low = 0
        self.y = -1
        self.base = -1  # current vector base x (already advanced); -1 before VECT_BASE_X
        self.pol = 0

    def decode(self, w: np.ndarray) -> Raw:
        typ = w >> 12
        val = (w & 0xFFF).astype(np.int64)
        is_high = typ == 0x8
        highs = val[is_high]
        epoch = self.epoch + _epochs(highs, self.high, 2048)
        full = np.zeros(len(w), np.int64)
        full[is_high] = (epoch << 24) | (highs << 12)
        start = -1 if self.high < 0 else (self.epoch << 24) | (self.high << 12)
        time_high = _ffill(is_high, full, start)
        time_low = _ffill(typ == 0x6, val, self.low)
        row = _ffill(typ == 0x0, val & 0x7FF, self.y)
        t_all = time_high | time_low
        synced = (time_high >= 0) & (row >= 0)

        is_base = typ == 0x3
        adv = np.where(typ == 0x4, 12, np.where(typ == 0x5, 8, 0))
        before = np.cumsum(adv) - adv  # vector advance since the block start, before each word
        base_at = _ffill(is_base, val & 0x7FF, self.base)
        base_cum = _ffill(is_base, before, 0)
        pol_at = _ffill(is_base, val >> 11, self.pol)
        x0 = base_at + before - base_cum

        single = np.flatnonzero((typ == 0x2) & synced)
        vec = np.flatnonzero(((typ == 0x4) | (typ == 0x5)) & synced & (base_at >= 0))
        masks = np.where(typ[vec] == 0x4, val[vec], val[vec] & 0xFF)
        bits = (masks[:, None] >> np.arange(12)) & 1
        rows, cols = np.nonzero(bits)
        vpos = vec[rows]

        if len(vpos):
            key = np.concatenate([single * 16, vpos * 16 + cols])
            order = np.argsort(key, kind="stable")
            pos = np.concatenate([single, vpos])[order]
            x = np.concatenate([val[single] & 0x7FF, x0[vpos] + cols])[order]
            p = np.concatenate([val[single] >> 11, pol_at[vpos]])[order]
        else:
            pos, x, p = single, val[single] & 0x7FF, val[single] >> 11
        out = (t_all[pos], x, row[pos], p)

        if len(highs):
            self.high, self.epoch = int(highs[-1]), int(epoch[-1])
        self.low = int(time_low[-1]) if len(w) else self.low
        self.y = int(row[-1]) if len(w) else self.y
        if len(w):
            # vector words before any VECT_BASE_X advance nothing: there is no base yet
            if base_at[-1] >= 0:
                self.base = int(base_at[-1] + (before[-1] + adv[-1]) - base_cum[-1])
            self.pol = int(pol_at[-1])
        return out


class _Evt2:
    """EVT 2.0 decoder state carried across blocks."""

    def __init__(self) -> None:
        self.high = -1
        self.epoch = 0

    def decode(self, w: np.ndarray) -> Raw:
        typ = w >> 28
        is_high = typ == 0x8
        highs = (w[is_high] & 0xFFFFFFF).astype(np.int64)
        epoch = self.epoch + _epochs(highs, self.high, 1 << 27)
        full = np.zeros(len(w), np.int64)
        full[is_high] = (epoch << 34) | (highs << 6)
        start = -1 if self.high < 0 else (self.epoch << 34) | (self.high << 6)
        time_high = _ffill(is_high, full, start)
        cd = np.flatnonzero((typ <= 0x1) & (time_high >= 0))
        words = w[cd].astype(np.int64)
        out = (
            time_high[cd] | ((words >> 22) & 0x3F),
            (words >> 11) & 0x7FF,
            words & 0x7FF,
            words >> 28,
        )
        if len(highs):
            self.high, self.epoch = int(highs[-1]), int(epoch[-1])
        return out


class _Dat:
    """DAT decoder state carried across blocks (the 32-bit timestamp's wraps)."""

    def __init__(self) -> None:
        self.last = -1
        self.epoch = 0

    def decode(self, w: np.ndarray) -> Raw:
        ts = w[0::2].astype(np.int64)
        data = w[1::2].astype(np.int64)
        epoch = self.epoch + _epochs(ts, self.last, 1 << 31)
        if len(ts):
            self.last, self.epoch = int(ts[-1]), int(epoch[-1])
        return (epoch << 32) | ts, data & 0x3FFF, (data >> 14) & 0x3FFF, data >> 28


def _layout(fmt: str, path: Path) -> tuple[list[str], int, int, str]:
    """``(header, data offset, word bytes, numpy dtype)`` of a Prophesee file, after checking
    that its data is a whole number of words."""
    header, start = _body_start(path)
    body = size_of(path) - start
    if fmt == "prophesee-dat":
        if body < 2:
            raise EventFileError(path, "truncated: no event type/size bytes after the header")
        type_size = head(path, start + 2)[start:]
        if type_size[1] != 8:
            raise EventFileError(path, f"DAT event size is {type_size[1]} bytes, expected 8")
        if (body - 2) % 8:
            raise EventFileError(path, f"truncated: {body - 2} event bytes is not a multiple of 8")
        return header, start + 2, 8, "<u4"
    word = 4 if fmt == "evt2" else 2
    if body % word:
        raise EventFileError(
            path, f"truncated: {body} data bytes is not a multiple of {word} ({fmt})"
        )
    return header, start, word, "<u4" if fmt == "evt2" else "<u2"


_DECODERS = {"evt2": _Evt2, "evt3": _Evt3, "prophesee-dat": _Dat}


def _blocks(fmt: str, path: Path) -> Iterator[Raw]:
    """Decoded ``(t, x, y, p)`` blocks of a Prophesee file, in file order."""
    _, start, word, dtype = _layout(fmt, path)
    decoder = _DECODERS[fmt]()
    # at most 2**18 words a block: the vectorised decoders hold about ten int64 temporaries a word
    step = min(BLOCK_BYTES - BLOCK_BYTES % word, word << 18)
    with open_file(path) as fh:
        fh.seek(start)
        while True:
            data = read_at(fh, path, step)
            if not data:
                return
            if len(data) % word:
                raise EventFileError(path, "the file changed while it was read")
            yield decoder.decode(np.frombuffer(data, dtype=dtype))


def _capacity(fmt: str, path: Path) -> int:
    """An upper bound on the number of events (EVT 3.0: 12 per VECT_12 word)."""
    _, start, word, _ = _layout(fmt, path)
    words = (size_of(path) - start) // word
    return words * 12 if fmt == "evt3" else words


def _size(fmt: str, path: Path, sensor_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if sensor_size is not None:
        return sensor_size
    header, _ = _body_start(path)
    return _prophesee_sensor_size(path, header)


def _read_prophesee(
    fmt: str,
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """A whole Prophesee file; sensor size from the header when it gives one, else
    ``(max x + 1, max y + 1)``."""
    size = _size(fmt, path, sensor_size)
    # EVT 3.0 can hold up to 12 events a word: preallocating that bound would cost 12x the
    # arrays, so its blocks are joined instead (still below twice the returned arrays).
    capacity = None if fmt == "evt3" else _capacity(fmt, path)
    return collect(path, _blocks(fmt, path), size, on_unsorted, allow_empty, capacity)


def _prophesee_chunks(
    fmt: str, path: Path, *, sensor_size: tuple[int, int] | None = None, chunk_events: int
) -> Iterator[Events]:
    path = Path(path)
    size = _size(fmt, path, sensor_size)
    if size is None:  # no size in the header: one pass to find it, then the chunks
        size = infer_size(path, _blocks(fmt, path))
        if size is None:
            return
    yield from rechunk(path, _blocks(fmt, path), size, chunk_events)


# --- writers (files built from the format descriptions; tests and benchmarks) ------------------


def _check_writable(path: Path, events: Events, fmt: str, max_xy: int) -> tuple[np.ndarray, ...]:
    if len(events) == 0:
        raise EventFileError(path, "refusing to write zero events")
    t = events.t.astype(np.int64)
    x, y, p = (a.astype(np.int64) for a in (events.x, events.y, events.p))
    if t.min() < 0:
        raise EventFileError(path, f"{fmt} cannot store negative timestamps")
    if np.any(np.diff(t) < 0):
        raise EventFileError(path, f"{fmt} writer needs events in time order")
    if x.max() > max_xy or y.max() > max_xy:
        raise EventFileError(path, f"{fmt} stores x and y up to {max_xy}")
    return t, x, y, p


def _header_bytes(fmt_line: str, events: Events) -> bytes:
    w, h = events.sensor_size
    return f"% {fmt_line}\n% geometry {w}x{h}\n% written by hsd\n% end\n".encode()


def _interleave(flags: list[np.ndarray], words: list[np.ndarray], dtype: str) -> np.ndarray:
    """Per event, the words whose flag is set, in the order given (vectorised)."""
    counts = np.sum(flags, axis=0)
    offsets = np.cumsum(counts) - counts
    out = np.zeros(int(counts.sum()), dtype=dtype)
    slot = offsets.copy()
    for flag, word in zip(flags, words, strict=True):
        out[slot[flag]] = word[flag]
        slot += flag
    return out


def write_evt3(path: str | Path, events: Events) -> None:
    """Write time-ordered ``events`` as EVT 3.0: a TIME_HIGH word whenever ``t >> 12`` changes,
    a TIME_LOW word whenever the low 12 bits change, an ADDR_Y word whenever y changes, then one
    ADDR_X word per event (no vectors). Read back exactly by ``read_events``."""
    path = Path(path)
    t, x, y, p = _check_writable(path, events, "EVT 3.0", 0x7FF)
    hi, lo = t >> 12, t & 0xFFF
    first = np.zeros(len(t), bool)
    first[0] = True
    new_hi = first | np.concatenate([[False], hi[1:] != hi[:-1]])
    new_lo = new_hi | np.concatenate([[False], lo[1:] != lo[:-1]])
    new_y = new_hi | np.concatenate([[False], y[1:] != y[:-1]])
    always = np.ones(len(t), bool)
    words = _interleave(
        [new_hi, new_lo, new_y, always],
        [0x8000 | (hi & 0xFFF), 0x6000 | lo, y, 0x2000 | (p << 11) | x],
        "<u2",
    )
    path.write_bytes(_header_bytes("evt 3.0", events) + words.tobytes())


def write_evt2(path: str | Path, events: Events) -> None:
    """Write time-ordered ``events`` as EVT 2.0: an EVT_TIME_HIGH word whenever ``t >> 6``
    changes, then one CD_ON / CD_OFF word per event. Read back exactly by ``read_events``."""
    path = Path(path)
    t, x, y, p = _check_writable(path, events, "EVT 2.0", 0x7FF)
    hi = t >> 6
    new_hi = np.concatenate([[True], hi[1:] != hi[:-1]])
    words = _interleave(
        [new_hi, np.ones(len(t), bool)],
        [(0x8 << 28) | (hi & 0xFFFFFFF), (p << 28) | ((t & 0x3F) << 22) | (x << 11) | y],
        "<u4",
    )
    path.write_bytes(_header_bytes("evt 2.0", events) + words.tobytes())


def write_dat(path: str | Path, events: Events) -> None:
    """Write time-ordered ``events`` (t below 2**32 us) as a Prophesee DAT CD file."""
    path = Path(path)
    t, x, y, p = _check_writable(path, events, "DAT", 0x3FFF)
    if t.max() >= _DAT_WRAP:
        raise EventFileError(path, "this DAT writer stores timestamps below 2**32 us")
    w, h = events.sensor_size
    header = f"% Data file containing CD events.\n% Width {w}\n% Height {h}\n".encode()
    words = np.empty(2 * len(t), "<u4")
    words[0::2] = t
    words[1::2] = (p << 28) | (y << 14) | x
    path.write_bytes(header + bytes([0x0C, 8]) + words.tobytes())


def _fmt(fmt_id: str, name: str, ext: str) -> FileFormat:
    return FileFormat(
        fmt_id,
        name,
        (ext,),
        partial(_read_prophesee, fmt_id),
        partial(_prophesee_chunks, fmt_id),
    )


register(_fmt("evt2", "Prophesee EVT 2.0 raw", ".raw"))
register(_fmt("evt3", "Prophesee EVT 3.0 raw", ".raw"), sniff=_sniff_raw)
register(_fmt("prophesee-dat", "Prophesee DAT", ".dat"), sniff=_sniff_dat)
