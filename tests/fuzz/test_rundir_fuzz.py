"""Run directories and --resume: nothing the user made is lost, and a resume continues the run it
names or is refused (existing run without --resume, --force, --resume without last.pt, another
stage or recipe, a damaged last.pt, a partial metrics line, leftover temporary files, --out a
file)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from hsd.train.checkpoint import load_checkpoint
from hsd.train.rundir import RunDir

from .conftest import assert_no_crash, assert_refused, run_hsd

TINY = [
    "model.width=0.125",
    "data.limit=16",
    "data.batch_size=16",
    "teacher.optim.epochs=1",
    "baseline.optim.epochs=1",
    "progress=false",
    "threads=1",
]


def _sets(*extra: str) -> list[str]:
    return [a for s in (*TINY, *extra) for a in ("--set", s)]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rundir") / "teacher"
    result = run_hsd(["teacher", "--out", out, *_sets()])
    assert result.rc == 0, result
    return out


def test_a_run_is_never_overwritten_or_appended_to(first_run, tmp_path):
    before = _snapshot(first_run)
    message = assert_refused(run_hsd(["teacher", "--out", first_run, *_sets()]), first_run)
    assert "--resume" in message and "--force" in message
    assert _snapshot(first_run) == before
    # another stage into the same folder is refused the same way
    assert_refused(run_hsd(["baseline", "--out", first_run, *_sets()]), first_run)
    assert_refused(run_hsd(["convert", first_run, "--out", first_run]), first_run)
    assert _snapshot(first_run) == before


def test_force_moves_the_old_run_aside_and_never_deletes(first_run, tmp_path):
    copy = tmp_path / "run"
    for name, data in _snapshot(first_run).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    before = _snapshot(copy)
    result = run_hsd(["teacher", "--out", copy, "--force", *_sets("seed=1")])
    assert_no_crash(result)
    assert result.rc == 0, result
    assert f"moved the previous run aside to {copy}.old-1" in result.err
    assert _snapshot(tmp_path / "run.old-1") == before
    assert load_checkpoint(copy)["config"]["seed"] == 1
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_needs_a_usable_last_checkpoint(first_run, tmp_path):
    empty = tmp_path / "fresh"
    message = assert_refused(run_hsd(["teacher", "--out", empty, "--resume", *_sets()]), empty)
    assert "nothing to resume" in message
    assert not (empty / "checkpoints" / "best.pt").exists()
    both = ["teacher", "--out", first_run, "--resume", "--force", *_sets()]
    assert_refused(run_hsd(both), first_run)
    # a run whose last.pt is gone: --resume is an error, best.pt stays as it was
    broken = tmp_path / "broken"
    for name, data in _snapshot(first_run).items():
        (broken / name).parent.mkdir(parents=True, exist_ok=True)
        (broken / name).write_bytes(data)
    (broken / "checkpoints" / "last.pt").unlink()
    best = (broken / "checkpoints" / "best.pt").read_bytes()
    assert_refused(run_hsd(["teacher", "--out", broken, "--resume", *_sets()]), broken)
    assert (broken / "checkpoints" / "best.pt").read_bytes() == best
    # damaged last.pt: refused naming it
    rng = random.Random(0)
    last = broken / "checkpoints" / "last.pt"
    for _ in range(5):
        data = bytearray((first_run / "checkpoints" / "last.pt").read_bytes())
        data[rng.randrange(len(data) // 4, len(data))] ^= 0xFF
        last.write_bytes(bytes(data))
        result = run_hsd(["teacher", "--out", broken, "--resume", *_sets()])
        if result.rc == 0:  # the flip hit bytes that carry nothing (zip padding)
            continue
        assert_refused(result, last)
    assert (broken / "checkpoints" / "best.pt").read_bytes() == best


def test_resume_refuses_another_stage_or_recipe(first_run):
    before = _snapshot(first_run)
    result = run_hsd(["baseline", "--out", first_run, "--resume", *_sets()])
    message = assert_refused(result, first_run / "checkpoints" / "last.pt")
    assert "stage 'teacher'" in message and "baseline-ce" in message
    result = run_hsd(["teacher", "--out", first_run, "--resume", *_sets("teacher.optim.lr=0.01")])
    message = assert_refused(result, first_run / "checkpoints" / "last.pt")
    assert "teacher.optim.lr 0.001 -> 0.01" in message
    result = run_hsd(["teacher", "--out", first_run, "--resume", *_sets("data.seed=3")])
    assert_refused(result, first_run / "checkpoints" / "last.pt")
    assert {k: v for k, v in _snapshot(first_run).items() if k != "metrics.jsonl"} == {
        k: v for k, v in before.items() if k != "metrics.jsonl"
    }


def test_resume_tolerates_a_partial_metrics_line_and_cleans_temporary_files(first_run, tmp_path):
    run = tmp_path / "run"
    for name, data in _snapshot(first_run).items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    metrics = run / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text(good + '{"stage": "teacher", "epoch": 2, "lo')  # killed while appending
    leftovers = [run / "checkpoints" / ".last.pt.abc123.tmp", run / "environment.json.tmp"]
    for tmp in leftovers:
        tmp.write_bytes(b"half written")
    assert RunDir(run).read_metrics() == [json.loads(good)]
    assert not any(tmp.exists() for tmp in leftovers)
    for tmp in leftovers:
        tmp.write_bytes(b"half written")
    result = run_hsd(["teacher", "--out", run, "--resume", *_sets("teacher.optim.epochs=1")])
    assert_no_crash(result)
    assert result.rc == 0, result
    assert metrics.read_text() == good  # the partial line dropped, the complete one kept
    assert not any(tmp.exists() for tmp in leftovers)
    resumed, original = load_checkpoint(run)["state_dict"], load_checkpoint(first_run)["state_dict"]
    assert resumed.keys() == original.keys()
    assert all(torch.equal(resumed[k], original[k]) for k in original)


def test_out_that_is_a_file_or_under_a_file(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("mine\n")
    for out in (afile, afile / "run"):
        for argv in (
            ["teacher", "--out", out, *_sets()],
            ["baseline", "--out", out, *_sets()],
            ["demo", "--quick", "--out", out],
        ):
            assert_refused(run_hsd(argv), out if out == afile else afile)
    assert afile.read_text() == "mine\n"
