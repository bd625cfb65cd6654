"""Exact resume: a training process killed with SIGKILL in the middle of an epoch continues from
its last checkpoint to the same weights as an uninterrupted run (CPU, deterministic mode)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import hsd.pipeline as pipeline
from hsd.config import load_config
from hsd.errors import CheckpointError
from hsd.train.checkpoint import load_checkpoint
from hsd.train.engine import TrainingError
from hsd.train.losses import make_loss

REPO = Path(__file__).resolve().parents[2]

# 96 training samples in batches of 4: 24 optimiser steps per epoch, a checkpoint after each.
SETTINGS = [
    "model.width=0.25",
    "data.limit=96",
    "data.batch_size=4",
    "teacher.optim.epochs=2",
    "checkpoint_every_steps=1",
    "progress=false",
    "threads=1",
]
STEPS_PER_EPOCH = 24


def _teacher(out: Path, *extra: str) -> list[str]:
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    return [
        sys.executable,
        "-m",
        "hsd.cli",
        "teacher",
        "--deterministic",
        "--out",
        str(out),
        *sets,
        *extra,
    ]


def _env() -> dict[str, str]:
    # the session's private HSD_CACHE_DIR (tests/conftest.py) and this checkout's package
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _mid_epoch_state(path: Path) -> dict | None:
    """The checkpoint at ``path`` when it was written in the middle of the second epoch."""
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path)
    except CheckpointError:  # replaced while being read on a slow filesystem
        return None
    return state if state["epoch"] == 1 and state.get("batches_done", 0) >= 1 else None


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in ("time", "seconds")} for x in lines]


def test_sigkill_in_the_middle_of_an_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight, victim = tmp_path / "straight", tmp_path / "victim"
    subprocess.run(_teacher(straight), env=_env(), check=True, capture_output=True, timeout=120)

    proc = subprocess.Popen(
        _teacher(victim), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 90
    try:
        while _mid_epoch_state(victim / "checkpoints" / "last.pt") is None:
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no mid-epoch checkpoint within 90 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(victim / "checkpoints" / "last.pt")
    assert killed_at["epoch"] == 1 and 1 <= killed_at["batches_done"] < STEPS_PER_EPOCH
    assert len(_metrics(victim)) == 1  # the second epoch never finished

    resumed = subprocess.run(
        _teacher(victim, "--resume"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"at epoch 1, batch {killed_at['batches_done']}" in resumed.stdout

    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(straight / "checkpoints" / name)
        b = load_checkpoint(victim / "checkpoints" / name)
        assert a["epoch"] == b["epoch"] == (2 if name == "last.pt" else a["epoch"])
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for key in a["state_dict"]:
            assert torch.equal(a["state_dict"][key], b["state_dict"][key]), (name, key)
    # the resumed epoch's metrics cover the whole epoch, not only the batches after the kill
    assert _metrics(victim) == _metrics(straight)
    env = json.loads((victim / "environment.json").read_text())
    assert env["deterministic"] is True and env["seed"] == 0 and env["world_size"] == 1


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)  # noqa: NPY002 (the legacy global state is what is saved)
    random.seed(3)
    state = pipeline._rng_state()
    draws = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    pipeline._set_rng_state(torch.load(path, weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(draws[0], again[0])
    assert np.array_equal(draws[1], again[1]) and draws[2] == again[2]


def test_a_non_finite_loss_stops_the_run_and_the_last_good_checkpoint_survives(
    tmp_path, monkeypatch
):
    cfg = load_config(overrides=[*SETTINGS, "data.limit=24", "checkpoint_every_steps=2"])
    ce = make_loss("ce")
    calls = {"n": 0}

    def nan_at_the_ninth_step(logits, labels, teacher_logits=None):
        calls["n"] += 1
        parts = ce(logits, labels)
        return {"loss": parts["loss"] * float("nan")} if calls["n"] == 9 else parts

    monkeypatch.setattr(pipeline, "make_loss", lambda *a, **k: nan_at_the_ninth_step)
    with pytest.raises(TrainingError, match=r"epoch 2, step 3"):  # 6 steps per epoch
        pipeline.train_teacher(cfg, tmp_path / "run")
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert (last["epoch"], last["batches_done"]) == (1, 2)  # steps 7 and 8 done, 9 failed
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["epoch"] == 1
