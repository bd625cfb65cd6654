"""The one error path of ``hsd.cli.main``: foreign exceptions, memory, broken pipes, --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hsd.cli as cli
from hsd.errors import DatasetError

from .conftest import assert_no_crash, assert_refused, run_hsd

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), **extra}


def test_output_into_a_closed_pipe_ends_quietly():
    """``hsd ... | head``: the reader goes away; no traceback, no 'Exception ignored'."""
    code = "import sys; from hsd.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "data", "info", "digits-dvs", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    proc.stdout.close()  # the reader has gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_broken_pipe_in_process_is_quiet(monkeypatch):
    def fail(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_cmd_data_info", fail)
    result = run_hsd(["data", "info", "digits-dvs"])
    assert result.rc == cli.EXIT_BROKEN_PIPE and result.err == "", result


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (PermissionError(13, "Permission denied", "/some/file"), "/some/file: permission denied"),
        (IsADirectoryError(21, "Is a directory", "/a/dir"), "/a/dir: is a folder"),
        (OSError(28, "No space left on device", "/full"), "/full: no space left on the device"),
        (MemoryError(), "out of memory; ask for less"),
    ],
)
def test_foreign_faults_are_one_line_errors(monkeypatch, exc, expected):
    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "_cmd_data_info", fail)
    message = assert_refused(run_hsd(["data", "info", "digits-dvs"]))
    assert expected in message


def test_an_unexpected_exception_is_an_internal_error_and_debug_shows_it(monkeypatch):
    def bug(args):
        raise KeyError("oops")

    monkeypatch.setattr(cli, "_cmd_data_info", bug)
    result = run_hsd(["data", "info", "digits-dvs"])
    assert result.rc == 2 and "Traceback" not in result.err
    assert result.err.startswith("hsd: error: internal error in 'hsd data info': KeyError")
    assert "--debug" in result.err
    for argv in (
        ["--debug", "data", "info", "digits-dvs"],
        ["data", "info", "digits-dvs", "--debug"],
    ):
        result = run_hsd(argv)
        assert result.rc == 2 and "Traceback (most recent call last)" in result.err, result


def test_debug_shows_the_traceback_of_an_hsd_error(monkeypatch):
    def fail(args):
        raise DatasetError("x: broken")

    monkeypatch.setattr(cli, "_cmd_data_info", fail)
    assert "Traceback" not in run_hsd(["data", "info", "digits-dvs"]).err
    monkeypatch.setenv("HSD_DEBUG", "1")
    result = run_hsd(["data", "info", "digits-dvs"])
    assert "Traceback" in result.err and result.err.rstrip().endswith("hsd: error: x: broken")


def test_bad_command_lines_use_the_same_line():
    for argv in (["teacher", "--bogus"], ["evaluate"], ["nonsense"], ["data", "info"]):
        result = run_hsd(argv)
        assert_no_crash(result)
        assert result.rc == 2 and "\nhsd: error: " in "\n" + result.err, result


def test_a_request_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch, tmp_path):
    monkeypatch.setenv("HSD_MEMORY_LIMIT", "200M")
    argv = [
        "teacher",
        "--out",
        tmp_path / "run",
        *("--set", "data.batch_size=100000", "--set", "data.limit=16", "--set", "progress=false"),
    ]
    message = assert_refused(run_hsd(argv), "data.batch_size=100000")
    assert "needs about" in message and "only 200.0 MiB is available" in message
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    argv = ["teacher", "--out", tmp_path / "w", "--set", "model.width=64", "--set", "data.limit=16"]
    assert_refused(run_hsd(argv), "model.width=64")


def test_the_installed_command_never_prints_a_traceback(tmp_path):
    """A few real processes: exit status and stderr as a user sees them."""
    exe = [sys.executable, "-m", "hsd.cli"]
    cases = [
        (["teacher", "--set", "seed=-1"], "seed: must be in"),
        (["evaluate", str(tmp_path / "none")], "checkpoint not found"),
        (["data", "info", "nmnist", "--root", str(tmp_path / "none")], "folder not found"),
    ]
    for argv, expected in cases:
        done = subprocess.run(
            [*exe, *argv], capture_output=True, text=True, env=_env(), timeout=120
        )
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr and expected in done.stderr, done.stderr


def test_the_error_is_one_line_even_when_the_file_name_holds_line_breaks(tmp_path):
    path = tmp_path / "bad\nname\r.bin"
    path.write_bytes(b"1234567")  # not a multiple of 5 bytes
    result = run_hsd(["events", "info", path])
    assert_no_crash(result)
    assert result.rc == 2, result
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("hsd: error: ") and "bad\\nname\\r.bin" in last, result


def test_a_dataset_error_ends_with_the_error_line_after_its_layout(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = run_hsd(["data", "info", "nmnist", "--root", not_a_folder])
    assert_refused(result, not_a_folder)
    lines = result.err.strip().splitlines()
    assert lines[-1].startswith("hsd: error: ") and "expected layout above" in lines[-1], result
    assert "expected layout:" in lines and "+-- Train/" in result.err, result
