"""Malformed event files under ``hsd events info --json``: truncations, flipped bytes, garbage
appended, header edits (huge sensor sizes, huge packet capacities), all-zero files, upper-case
extensions and names that are not UTF-8, for ATIS ``.bin``/``.bs2``, AEDAT 2.0, AEDAT 3.1 and
Event Stream. Every case is either refused (exit 2, ``hsd: error:`` naming the file, no
traceback) or summarised exactly as an independent per-byte reference decoder written here
computes it; the chunked reader must also concatenate to the whole read.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from hsd.errors import EventFileError
from hsd.events.core import Events, validate_events
from hsd.events.formats import iter_events, read_events, write_aedat2, write_aedat31, write_atis_bin
from hsd.events.formats.eventstream import write_event_stream

from .conftest import SEEDS, assert_no_crash, assert_refused, run_hsd

NON_UTF8 = os.fsdecode(b"rec-\xff\xfe")


class Refused(Exception):
    """The reference decoder rejects the file."""


# --- reference decoders (one byte/event at a time, deliberately naive) ---------------------------


def ref_atis(data: bytes):
    if data.startswith((b"#!AER-DAT", b"Event Stream", b"PK\x03\x04", b"% evt", b"% Date")):
        raise Refused("foreign header")
    if len(data) % 5:
        raise Refused("not a multiple of 5")
    out, overflows = [], 0
    for i in range(0, len(data), 5):
        b0, b1, b2, b3, b4 = data[i : i + 5]
        if b1 == 240:
            overflows += 1
            continue
        t = ((b2 & 0x7F) << 16 | b3 << 8 | b4) + overflows * 8192
        out.append((t, b0, b1, b2 >> 7))
    size = None if not out else (max(e[1] for e in out) + 1, max(e[2] for e in out) + 1)
    return out, size


def _header_lines(data: bytes):
    pos, lines = 0, []
    while pos < len(data) and data[pos : pos + 1] == b"#":
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        lines.append(data[pos:end].rstrip(b"\r\n"))
        pos = end
        if lines[-1] == b"#!END-HEADER":
            break
    return pos, lines


def ref_aedat(data: bytes):
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    if first == b"#!AER-DAT2.0":
        return ref_aedat2(data)
    if first == b"#!AER-DAT3.1":
        return ref_aedat31(data)
    raise Refused("not AEDAT 2.0 / 3.1")


def ref_aedat2(data: bytes):
    pos, lines = _header_lines(data)
    body = data[pos:]
    if len(body) % 8:
        raise Refused("body not a multiple of 8")
    if body and any(b"AEChip:" in ln and b"davis" in ln.lower() for ln in lines):
        raise Refused("DAVIS")
    out = []
    for i in range(0, len(body), 8):
        a, t = struct.unpack_from(">II", body, i)
        out.append((t, 127 - ((a >> 8) & 0x7F), 127 - ((a >> 1) & 0x7F), 1 - (a & 1)))
    return out, (128, 128)


def ref_aedat31(data: bytes):
    pos, lines = _header_lines(data)
    if not lines or lines[-1] != b"#!END-HEADER":
        raise Refused("no end of header")
    out = []
    while pos < len(data):
        if pos + 28 > len(data):
            raise Refused("truncated packet header")
        typ, _, size, tsoff, ovf, cap, num, valid = struct.unpack_from("<HHIIIIII", data, pos)
        if typ > 13 or size == 0 or tsoff + 4 > size or num > cap or valid > num:
            raise Refused("corrupt packet header")
        pos += 28
        if pos + cap * size > len(data):
            raise Refused("truncated packet")
        if typ == 1:
            if size != 8 or tsoff != 4:
                raise Refused("polarity event size")
            for i in range(cap):
                a, t = struct.unpack_from("<II", data, pos + 8 * i)
                out.append((t | ovf << 31, (a >> 17) & 0x7FFF, (a >> 2) & 0x7FFF, (a >> 1) & 1))
        pos += cap * size
    return out, (128, 128)


def ref_es(data: bytes):
    if not data.startswith(b"Event Stream") or len(data) < 20:
        raise Refused("header")
    if data[12] != 2 or data[15] != 1:
        raise Refused("version/type")
    w, h = struct.unpack_from("<HH", data, 16)
    if not (0 < w <= 8192 and 0 < h <= 8192):
        raise Refused("size")
    out, t, pos = [], 0, 20
    while pos < len(data):
        b = data[pos]
        if b == 0xFF:
            t, pos = t + 127, pos + 1
        elif b == 0xFE:
            pos += 1
        else:
            if pos + 5 > len(data):
                raise Refused("truncated event")
            t += b >> 1
            x, y = struct.unpack_from("<HH", data, pos + 1)
            out.append((t, x, h - 1 - y, b & 1))
            pos += 5
    return out, (w, h)


def reference(path: Path, data: bytes):
    ext = path.suffix.lower()
    out, size = {".bin": ref_atis, ".bs2": ref_atis, ".aedat": ref_aedat, ".es": ref_es}[ext](data)
    if out:
        if any(x < 0 or x >= size[0] or y < 0 or y >= size[1] for _, x, y, _ in out):
            raise Refused("outside the sensor")
        if max(e[0] for e in out) >= 1 << 53:
            raise Refused("timestamp too large")
    return out, size


# --- generators ---------------------------------------------------------------------------------


def _events(rng: np.random.Generator, size, n: int) -> Events:
    return validate_events(
        np.sort(rng.integers(0, 40_000, n)),
        rng.integers(0, size[0], n),
        rng.integers(0, size[1], n),
        rng.integers(0, 2, n),
        size,
    )


def _valid(kind: str, rng: np.random.Generator, folder: Path) -> Path:
    n = int(rng.integers(1, 60))
    if kind == "bin":
        path, size, write = folder / "r.bin", (34, 34), write_atis_bin
    elif kind == "bs2":
        path, size, write = folder / "r.bs2", (128, 128), write_atis_bin
    elif kind == "aedat2":
        path, size, write = folder / "r.aedat", (128, 128), write_aedat2
    elif kind == "aedat31":
        path, size, write = folder / "r.aedat", (128, 128), write_aedat31
    else:
        path, size, write = folder / "r.es", (40, 30), write_event_stream
    write(path, _events(rng, size, n))
    return path


KINDS = ["bin", "bs2", "aedat2", "aedat31", "es"]
MUTATIONS = ["truncate", "flip", "append", "zeros", "header", "upper", "non_utf8", "none"]


def _mutate(kind: str, path: Path, how: str, rnd: random.Random) -> Path:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: rnd.randrange(len(data))]
    elif how == "flip":
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(data))
            data[i] ^= 1 << rnd.randrange(8)
    elif how == "append":
        data += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 17)))
    elif how == "zeros":
        data = bytearray(len(data))
    elif how == "header":
        if kind == "es":
            struct.pack_into("<H", data, 16 + 2 * rnd.randrange(2), rnd.choice([0, 9000, 65535]))
        elif kind == "aedat31":
            at = data.index(b"#!END-HEADER\r\n") + 14 + 4 * rnd.randrange(1, 7)
            struct.pack_into("<I", data, at, rnd.choice([0, 77, 2**31, 2**32 - 1]))
        elif kind == "aedat2":
            data = data.replace(b"DVS128", b"DAVIS346") if rnd.random() < 0.5 else data[1:]
        else:
            data = bytearray(b"Event Stream") + data
    path.write_bytes(bytes(data))
    if how == "upper":
        new = path.with_name("REC" + path.suffix.upper())
    elif how == "non_utf8":
        new = path.with_name(NON_UTF8 + path.suffix)
    else:
        return path
    path.rename(new)
    return new


def _check(path: Path) -> str:
    data = path.read_bytes()
    result = run_hsd(["events", "info", "--json", str(path)])
    assert_no_crash(result)
    try:
        out, size = reference(path, data)
    except Refused:
        assert_refused(result, path)
        return "refused"
    assert result.rc == 0, result
    got = json.loads(result.out)
    t = [e[0] for e in out]
    on = sum(e[3] for e in out)
    assert got["events"] == len(out), result
    assert got["events_per_polarity"] == {"off": len(out) - on, "on": on}
    if out:
        assert got["sensor_size"] == list(size)
        assert (got["t_first_us"], got["t_last_us"]) == (t[0], t[-1])
        assert got["sorted"] == all(a <= b for a, b in itertools.pairwise(t))
        whole = read_events(path, on_unsorted="keep")
        assert whole.t.tolist() == t and whole.x.tolist() == [e[1] for e in out]
        assert whole.y.tolist() == [e[2] for e in out] and whole.p.tolist() == [e[3] for e in out]
        chunks = list(iter_events(path, chunk_events=7, on_unsorted="keep"))
        assert Events.concatenate(chunks).t.tolist() == t
    else:
        with pytest.raises(EventFileError, match="zero events"):
            read_events(path)
    return "accepted"


@pytest.mark.parametrize("seed", SEEDS)
def test_malformed_event_files(tmp_path, seed):
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    outcomes = {"refused": 0, "accepted": 0}
    cases = 60 if seed == 0 else 100  # x 5 formats: 300 files by default, 6,000 in the slow sweep
    for case in range(cases):
        for kind in KINDS:
            folder = tmp_path / f"{case}-{kind}"
            folder.mkdir()
            path = _valid(kind, rng, folder)
            path = _mutate(kind, path, rnd.choice(MUTATIONS), rnd)
            outcomes[_check(path)] += 1
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0, outcomes


def _aedat4_file(path: Path) -> Path:
    """A small AEDAT 4 file written by dv-processing (hsd has no AEDAT 4 writer)."""
    dv = pytest.importorskip("dv_processing", reason="dv-processing is not installed (extra live)")
    writer = dv.io.MonoCameraWriter(
        str(path), dv.io.MonoCameraWriter.EventOnlyConfig("t", (34, 34))
    )
    store = dv.EventStore()
    for i in range(50):
        store.push_back(1000 + 10 * i, i % 34, (3 * i) % 34, bool(i % 2))
    writer.writeEvents(store)
    del writer  # closes the file
    return path


@pytest.mark.parametrize("seed", SEEDS)
def test_aedat4_header_bytes_that_break_utf8(tmp_path, seed):
    """A byte of the AEDAT 4 XML header replaced by one that is not UTF-8 made the decoder's XML
    parser panic (pyo3's PanicException, a BaseException that escaped every handler): refused
    naming the file, or read as a valid file."""
    data = _aedat4_file(tmp_path / "good.aedat4").read_bytes()
    start, end = data.index(b"<dv"), data.index(b"</dv>")
    rnd = random.Random(seed)
    first_gt = data.index(b">", start)
    positions = [first_gt] + [rnd.randrange(start, end) for _ in range(40)]
    for case, pos in enumerate(positions):
        path = tmp_path / f"{case}.aedat4"
        path.write_bytes(
            data[:pos] + bytes([rnd.choice((0x80, 0xBA, 0xC3, 0xE2, 0xFF))]) + data[pos + 1 :]
        )
        result = run_hsd(["events", "info", "--json", path])
        assert_no_crash(result)
        if case == 0:  # the '>' of <dv ...> made the parser panic
            assert "corrupt AEDAT 4" in assert_refused(result, path)
        elif result.rc != 0:
            assert_refused(result, path)
