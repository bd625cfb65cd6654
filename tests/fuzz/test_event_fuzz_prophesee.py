"""Malformed Prophesee files (EVT 2.0, EVT 3.0, DAT) under ``hsd events info --json``:
truncations, flipped data bytes, garbage appended, all-zero data, random word soups (every word
type, vectors included), header edits (huge, zero or non-numeric sizes, headers that never end)
and upper-case extensions. Every case is either refused (exit 2, ``hsd: error:`` naming the
file, no traceback) or summarised exactly as an independent word-at-a-time reference decoder
written here from the format descriptions computes it; the chunked reader must concatenate to
the whole read.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from hsd.events.core import Events, validate_events
from hsd.events.formats import iter_events, read_events, write_dat, write_evt2, write_evt3

from .conftest import SEEDS, assert_no_crash, assert_refused, run_hsd


class Refused(Exception):
    """The reference decoder rejects the file."""


def _split_header(data: bytes) -> tuple[list[bytes], int]:
    pos, lines = 0, []
    while data[pos : pos + 1] == b"%":
        end = data.find(b"\n", pos)
        if end < 0:
            raise Refused("header never ends")
        line = data[pos + 1 : end].strip()
        pos = end + 1
        if line == b"end":
            break
        lines.append(line)
    return lines, pos


def _size(lines: list[bytes]):
    seen: dict[bytes, bytes] = {}
    for line in lines:
        key, _, value = line.partition(b" ")
        key, value = key.lower(), value.strip()
        if key in (b"geometry", b"width", b"height", b"format") and seen.get(key, value) != value:
            raise Refused("given twice")
        seen[key] = value
    for line in lines:
        key, _, value = line.partition(b" ")
        if key == b"geometry":
            w, sep, h = value.partition(b"x")
            if not (sep and w.isdigit() and h.isdigit()):
                raise Refused("geometry")
            size = int(w), int(h)
            if not all(0 < v <= 8192 for v in size):
                raise Refused("size")
            return size
    values = {ln.partition(b" ")[0].lower(): ln.partition(b" ")[2] for ln in lines}
    if b"width" in values and b"height" in values:
        if not (values[b"width"].isdigit() and values[b"height"].isdigit()):
            raise Refused("width")
        size = int(values[b"width"]), int(values[b"height"])
        if not all(0 < v <= 8192 for v in size):
            raise Refused("size")
        return size
    return None


def ref_evt3(body: bytes):
    if len(body) % 2:
        raise Refused("odd")
    out, high, epoch, low, y, base, pol = [], -1, 0, 0, -1, -1, 0
    for (w,) in np.frombuffer(body, "<u2").reshape(-1, 1).tolist():
        typ, v = w >> 12, w & 0xFFF
        if typ == 0x8:
            if high >= 0 and high - v > 2048:
                epoch += 1
            high = v
        elif typ == 0x6:
            low = v
        elif typ == 0x0:
            y = v & 0x7FF
        elif typ == 0x2:
            if high >= 0 and y >= 0:
                out.append(((epoch << 24) | (high << 12) | low, v & 0x7FF, y, v >> 11))
        elif typ == 0x3:
            base, pol = v & 0x7FF, v >> 11
        elif typ in (0x4, 0x5) and base >= 0:
            bits = 12 if typ == 0x4 else 8
            if high >= 0 and y >= 0:
                t = (epoch << 24) | (high << 12) | low
                out += [(t, base + i, y, pol) for i in range(bits) if v >> i & 1]
            base += bits
    return out


def ref_evt2(body: bytes):
    if len(body) % 4:
        raise Refused("not words")
    out, high, epoch = [], -1, 0
    for (w,) in np.frombuffer(body, "<u4").reshape(-1, 1).tolist():
        typ = w >> 28
        if typ == 0x8:
            v = w & 0xFFFFFFF
            if high >= 0 and high - v > 1 << 27:
                epoch += 1
            high = v
        elif typ <= 1 and high >= 0:
            t = (epoch << 34) | (high << 6) | ((w >> 22) & 0x3F)
            out.append((t, (w >> 11) & 0x7FF, w & 0x7FF, typ))
    return out


def ref_dat(body: bytes):
    if len(body) < 2 or body[1] != 8 or (len(body) - 2) % 8:
        raise Refused("dat layout")
    out, last, epoch = [], -1, 0
    for t, d in np.frombuffer(body[2:], "<u4").reshape(-1, 2).tolist():
        if last >= 0 and last - t > 1 << 31:
            epoch += 1
        last = t
        out.append(((epoch << 32) | t, d & 0x3FFF, (d >> 14) & 0x3FFF, d >> 28))
    return out


def reference(kind: str, data: bytes):
    lines, start = _split_header(data)
    if start > 1 << 16:
        raise Refused("the header must end within 64 KiB")
    if kind != "dat":
        encodings = [ln for ln in lines if ln.startswith(b"evt ")]
        if not encodings or encodings[0] != (b"evt 3.0" if kind == "evt3" else b"evt 2.0"):
            raise Refused("encoding")
    size = _size(lines)
    body = data[start:]
    out = {"evt3": ref_evt3, "evt2": ref_evt2, "dat": ref_dat}[kind](body)
    if out:
        if any(e[3] > 1 for e in out):
            raise Refused("polarity")
        if size is None:
            size = (max(e[1] for e in out) + 1, max(e[2] for e in out) + 1)
        if any(x >= size[0] or y >= size[1] for _, x, y, _ in out):
            raise Refused("outside")
    return out, size


def _valid(kind: str, rng: np.random.Generator, rnd: random.Random, folder: Path) -> Path:
    n = int(rng.integers(1, 50))
    size = (int(rng.integers(20, 700)), int(rng.integers(20, 500)))
    events = validate_events(
        np.sort(rng.integers(0, 1 << 26, n)),
        rng.integers(0, size[0], n),
        rng.integers(0, size[1], n),
        rng.integers(0, 2, n),
        size,
    )
    path = folder / ("r.dat" if kind == "dat" else "r.raw")
    {"evt3": write_evt3, "evt2": write_evt2, "dat": write_dat}[kind](path, events)
    if kind != "dat" and rnd.random() < 0.3:  # a soup of random words: every type, vectors
        data = path.read_bytes()
        _, start = _split_header(data)
        word = 2 if kind == "evt3" else 4
        soup = rng.integers(0, 1 << (8 * word), int(rng.integers(1, 80)), dtype=np.uint64)
        path.write_bytes(data[:start] + soup.astype(f"<u{word}").tobytes())
    return path


MUTATIONS = ["truncate", "flip", "append", "zeros", "header", "upper", "none"]
HEADERS = [
    b"% geometry 100000x480\n",
    b"% geometry 0x480\n",
    b"% geometry wide\n",
    b"% Width abc\n% Height 3\n",
    b"% " + b"h" * 70_000 + b"\n",
]


def _mutate(kind: str, path: Path, how: str, rnd: random.Random) -> Path:
    data = bytearray(path.read_bytes())
    _, start = _split_header(bytes(data))
    if how == "truncate":
        data = data[: rnd.randrange(start, len(data))]
    elif how == "flip" and len(data) > start:
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(start, len(data))
            data[i] ^= 1 << rnd.randrange(8)
    elif how == "append":
        data += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 9)))
    elif how == "zeros":
        data[start + (2 if kind == "dat" else 0) :] = bytes(len(data) - start)
    elif how == "header":
        first = data.index(b"\n") + 1
        data = data[:first] + rnd.choice(HEADERS) + data[first:]
    path.write_bytes(bytes(data))
    if how == "upper":
        new = path.with_name("REC" + path.suffix.upper())
        path.rename(new)
        return new
    return path


def _check(kind: str, path: Path) -> str:
    data = path.read_bytes()
    result = run_hsd(["events", "info", "--json", str(path)])
    assert_no_crash(result)
    try:
        out, size = reference(kind, data)
    except Refused:
        assert_refused(result, path)
        return "refused"
    if not out and size is None:  # nothing to size the sensor with: info may refuse or say 0
        assert result.rc in (0, 2), result
        return "empty"
    assert result.rc == 0, result
    got = json.loads(result.out)
    assert got["events"] == len(out), (result, len(out))
    if out:
        assert got["sensor_size"] == list(size)
        t = [e[0] for e in out]
        whole = read_events(path, on_unsorted="keep")
        assert whole.t.tolist() == t and whole.x.tolist() == [e[1] for e in out]
        assert whole.y.tolist() == [e[2] for e in out] and whole.p.tolist() == [e[3] for e in out]
        chunks = list(iter_events(path, chunk_events=5, on_unsorted="keep"))
        assert Events.concatenate(chunks).t.tolist() == t
    return "accepted"


@pytest.mark.parametrize("seed", SEEDS)
def test_malformed_prophesee_files(tmp_path, seed):
    rnd = random.Random(1000 + seed)
    rng = np.random.default_rng(1000 + seed)
    outcomes = {"refused": 0, "accepted": 0, "empty": 0}
    cases = 70 if seed == 0 else 300
    for case in range(cases):
        for kind in ("evt3", "evt2", "dat"):
            folder = tmp_path / f"{case}-{kind}"
            folder.mkdir()
            path = _mutate(kind, _valid(kind, rng, rnd, folder), rnd.choice(MUTATIONS), rnd)
            outcomes[_check(kind, path)] += 1
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0, outcomes
