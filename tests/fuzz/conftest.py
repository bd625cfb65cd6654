"""Helpers of the fuzz tests: run ``hsd`` in-process and judge its answer.

Every fuzz case ends in one of two ways, and anything else fails it:

* refused: exit status 2, a last line ``hsd: error: ...`` naming the input (a key, an option or
  a file), no traceback and no ``internal error`` anywhere in the output;
* accepted: exit status 0 and an output equal to a reference the test computes.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from hsd.cli import main

# Seed 0 runs in the default suite; the larger sweep (seeds 1..12) is marked ``slow``.
SEEDS = [0, *(pytest.param(seed, marks=pytest.mark.slow) for seed in range(1, 13))]


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"hsd {' '.join(self.argv)} -> {self.rc}\nstdout: {self.out}\nstderr: {self.err}"


def run_hsd(argv: list[str]) -> Result:
    """``hsd.cli.main(argv)`` with stdout and stderr captured (argparse's SystemExit too)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return Result([str(a) for a in argv], rc, out.getvalue(), err.getvalue())


def assert_no_crash(result: Result) -> None:
    text = result.out + result.err
    assert "Traceback" not in text, result
    assert "internal error" not in text, result
    assert "Exception ignored" not in text, result


def assert_refused(result: Result, *names: str | Path) -> str:
    """Exit 2 with ``hsd: error: ...`` naming every one of ``names``; returns the message."""
    assert_no_crash(result)
    assert result.rc == 2, result
    lines = [line for line in result.err.splitlines() if line.startswith("hsd: error: ")]
    assert lines, result
    message = lines[-1]
    for name in names:
        assert str(name) in message, f"{name!r} not named in {message!r}\n{result}"
    return message


@pytest.fixture
def hsd():
    return run_hsd


@pytest.fixture
def refused():
    return assert_refused


@pytest.fixture
def no_crash():
    return assert_no_crash
