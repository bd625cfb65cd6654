import json
from pathlib import Path

import numpy as np
import pytest

from hsd.cli import main
from hsd.errors import EventFileError
from hsd.events.info import describe_file, format_description

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def sample() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"../shared/data not found: {DATA}")
    return DATA / "event-files" / "nmnist_tonic_sample.bin"


def atis_bytes(rows) -> bytes:
    out = bytearray()
    for x, y, p, t in rows:
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def test_describe_real_nmnist_file(sample):
    d = describe_file(sample)
    assert d == {
        "path": str(sample),
        "format": "atis-bin",
        "events": 4325,
        "sensor_size": [34, 34],
        "t_first_us": 654,
        "t_last_us": 311175,
        "duration_ms": 310.521,
        "sorted": True,
        "events_per_polarity": {"off": 2180, "on": 2145},
    }
    assert json.loads(json.dumps(d)) == d


def test_describe_unsorted_file_reports_stored_order(tmp_path):
    path = tmp_path / "u.bin"
    path.write_bytes(atis_bytes([(1, 1, 1, 5000), (2, 3, 0, 4000), (0, 0, 1, 7500)]))
    d = describe_file(path)
    assert d["sorted"] is False
    assert (d["t_first_us"], d["t_last_us"], d["duration_ms"]) == (5000, 7500, 2.5)
    assert d["sensor_size"] == [3, 4]
    assert d["events_per_polarity"] == {"off": 1, "on": 2}


def test_describe_frames_npz(tmp_path):
    frames = np.zeros((3, 2, 4, 5), dtype=np.int16)
    frames[0, 1, 2, 3] = 7
    frames[2, 0, 0, 0] = 5
    path = tmp_path / "f.npz"
    np.savez_compressed(path, frames=frames)
    d = describe_file(path)
    assert d == {
        "path": str(path),
        "format": "frames-npz",
        "shape": [3, 2, 4, 5],
        "dtype": "int16",
        "total": 12,
    }
    text = format_description(d)
    assert "3 x 2 polarities x 4 x 5" in text
    assert "total:       12" in text


def test_format_description_text(sample):
    text = format_description(describe_file(sample))
    assert "ATIS 5-byte events" in text
    assert "4325 (2145 on, 2180 off)" in text
    assert "34 x 34 (width x height)" in text
    assert "654 .. 311175 us (310.521 ms)" in text
    assert "sorted:      yes" in text


def test_describe_bad_file_raises(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(b"\x00" * 6)
    with pytest.raises(EventFileError, match="truncated: 6 bytes"):
        describe_file(path)


def test_cli_json(sample, capsys):
    assert main(["events", "info", str(sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == describe_file(sample)
    assert out["events"] == 4325


def test_cli_text(sample, capsys):
    assert main(["events", "info", str(sample)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"file:        {sample}"
    assert "4325 (2145 on, 2180 off)" in out


@pytest.mark.parametrize(
    ("name", "content", "fault"),
    [
        ("t.bin", b"\x00" * 7, "truncated: 7 bytes is not a multiple of 5"),
        ("h.aedat", b"no header\n", "missing AEDAT header"),
        ("x.txt", b"", "unknown extension '.txt'"),
    ],
)
def test_cli_bad_file(tmp_path, capsys, name, content, fault):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["events", "info", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hsd: error: {path}: ")
    assert fault in lines[0]


def test_cli_missing_file(tmp_path, capsys):
    path = tmp_path / "absent.aedat"
    assert main(["events", "info", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"hsd: error: {path}: no such file"
