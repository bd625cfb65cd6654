"""Prophesee EVT 2.0 / EVT 3.0 ``.raw`` and DAT ``.dat`` files."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError, install_hint
from hsd.events.core import Events, UnsortedPolicy
from hsd.events.formats._base import finish, head, size_of
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


def _prophesee_sensor_size(header: list[str]) -> tuple[int, int] | None:
    """Sensor size from ``% geometry WxH``, ``% format ...;height=H;width=W``,
    ``% Width``/``% Height`` lines or a known ``% plugin_name``; None when absent."""
    values: dict[str, str] = {}
    for line in header:
        key, _, value = line.partition(" ")
        values[key.lower()] = value.strip()
    match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", values.get("geometry", ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    fields = dict(f.split("=", 1) for f in values.get("format", "").split(";") if f.count("=") == 1)
    if "width" in fields and "height" in fields:
        return int(fields["width"]), int(fields["height"])
    if values.get("width", "").isdigit() and values.get("height", "").isdigit():
        return int(values["width"]), int(values["height"])
    plugin = values.get("plugin_name", "").lower()
    if "imx636" in plugin:
        return _PROPHESEE_IMX636
    match = re.search(r"gen(\d+)", plugin)
    if match and "gen" + match.group(1) in _PROPHESEE_PLUGINS:
        return _PROPHESEE_PLUGINS["gen" + match.group(1)]
    return None


def _read_prophesee(
    fmt: str,
    path: Path,
    sensor_size: tuple[int, int] | None,
    on_unsorted: UnsortedPolicy,
    allow_empty: bool,
) -> Events:
    """Prophesee EVT 2.0 / EVT 3.0 ``.raw`` and DAT ``.dat`` through ``expelliarmus``; sensor
    size from the header when it gives one, else ``(max x + 1, max y + 1)``."""
    try:
        import expelliarmus
    except ImportError:
        raise EventFileError(
            path, "reading Prophesee files needs expelliarmus: " + install_hint("prophesee")
        ) from None
    data = head(path, 1 << 16)
    header, header_length = _prophesee_header(data)
    body = size_of(path) - header_length
    if fmt == "prophesee-dat":
        if body < 2:
            raise EventFileError(path, "truncated: no event type/size bytes after the header")
        ev_size = data[header_length + 1]
        if ev_size != 8:
            raise EventFileError(path, f"DAT event size is {ev_size} bytes, expected 8")
        if (body - 2) % 8:
            raise EventFileError(path, f"truncated: {body - 2} event bytes is not a multiple of 8")
        encoding, empty = "DAT", body == 2
    else:
        word = 4 if fmt == "evt2" else 2
        if body % word:
            raise EventFileError(
                path, f"truncated: {body} data bytes is not a multiple of {word} ({fmt})"
            )
        encoding, empty = fmt.upper(), body == 0
    if empty:
        t = x = y = p = np.zeros(0, np.int64)
    else:
        arr = expelliarmus.Wizard(encoding=encoding, fpath=str(path)).read()
        if arr is None:
            raise EventFileError(path, f"expelliarmus could not decode the {encoding} data")
        t, x, y, p = arr["t"], arr["x"], arr["y"], arr["p"]
    size = sensor_size or _prophesee_sensor_size(header)
    return finish(path, t, x, y, p, size, on_unsorted, allow_empty)


register(FileFormat("evt2", "Prophesee EVT 2.0 raw", (".raw",), partial(_read_prophesee, "evt2")))
register(
    FileFormat("evt3", "Prophesee EVT 3.0 raw", (".raw",), partial(_read_prophesee, "evt3")),
    sniff=_sniff_raw,
)
register(
    FileFormat(
        "prophesee-dat", "Prophesee DAT", (".dat",), partial(_read_prophesee, "prophesee-dat")
    ),
    sniff=_sniff_dat,
)
