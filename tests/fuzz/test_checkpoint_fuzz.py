"""Seeded fuzzing of checkpoints under every command that reads one (evaluate, stream, export
onnx, convert, distill --teacher): flipped bytes, truncation, text and random bytes, wrong
architecture or shapes, NaN weights, missing entries, a tampered digest.

Every case is refused with ``hsd: error: <the checkpoint>: ...`` (exit 2), or, for a flipped
byte that changes nothing the checkpoint holds (zip padding), loads to exactly the original.
"""

from __future__ import annotations

import copy as copy_module
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsd.config import load_config
from hsd.errors import CheckpointError
from hsd.events.core import validate_events
from hsd.events.formats import write_atis_bin
from hsd.pipeline import convert_checkpoint, prepare_data, train_teacher
from hsd.train.checkpoint import digest, load_checkpoint, save_checkpoint

from .conftest import SEEDS, assert_no_crash, assert_refused, run_hsd

TINY = [
    "model.width=0.125",
    "data.limit=16",
    "data.batch_size=16",
    "teacher.optim.epochs=1",
    "progress=false",
    "threads=1",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt-fuzz")
    cfg = load_config(overrides=TINY)
    data = prepare_data(cfg)
    teacher = train_teacher(cfg, root / "teacher", data=data)
    converted = convert_checkpoint(teacher, root / "converted")
    rng = np.random.default_rng(0)
    n = 400
    events = validate_events(
        np.sort(rng.integers(0, 300_000, n)),
        rng.integers(0, 34, n),
        rng.integers(0, 34, n),
        rng.integers(0, 2, n),
        (34, 34),
    )
    recording = root / "rec.bin"
    write_atis_bin(recording, events)
    return {"teacher": teacher, "converted": converted, "recording": recording, "root": root}


def _commands(ckpt: Path, runs: dict, out: Path) -> list[list]:
    return [
        ["evaluate", ckpt, "--steps", "1,2", "--json"],
        ["stream", ckpt, runs["recording"], "--json"],
        ["export", "onnx", ckpt, out / "step.onnx"],
        ["convert", ckpt, "--out", out / "conv"],
        [
            "distill",
            "--teacher",
            ckpt,
            "--out",
            out / "dist",
            *[a for s in TINY for a in ("--set", s)],
        ],
    ]


def _edited(payload: dict, rng: random.Random) -> list[tuple[str, dict]]:
    """Payload edits saved with a valid digest: each is still a fault the loader must name."""
    state = payload["state_dict"]
    weights = [k for k, v in state.items() if v.is_floating_point() and v.numel() > 1]
    name = rng.choice(weights)
    cases = []

    def edit(label: str, change) -> None:
        copy = {k: v for k, v in payload.items() if k not in ("path", "digest", "format")}
        copy["config"] = copy_module.deepcopy(payload["config"])
        copy["classes"] = list(payload["classes"])
        copy["state_dict"] = dict(state)
        copy["model"] = {**payload["model"], "kwargs": dict(payload["model"]["kwargs"])}
        change(copy)
        cases.append((label, copy))

    def poison(value: float):
        def change(p):
            t = p["state_dict"][name].clone()
            t.view(-1)[rng.randrange(t.numel())] = value
            p["state_dict"][name] = t

        return change

    edit("a NaN weight", poison(float("nan")))
    edit("an infinite weight", poison(float("inf")))
    edit("another architecture", lambda p: p["model"].update(name="resnet50"))
    edit("wider than its weights", lambda p: p["model"]["kwargs"].update(width=0.5))
    edit("kwargs the network does not take", lambda p: p["model"]["kwargs"].update(depth=3))
    edit("a weight of the wrong shape", lambda p: p["state_dict"].update({name: torch.zeros(3)}))
    edit("a missing weight", lambda p: p["state_dict"].pop(name))
    edit("an extra weight", lambda p: p["state_dict"].update(extra=torch.zeros(2)))
    edit("no config", lambda p: p.pop("config"))
    edit("no classes", lambda p: p.pop("classes"))
    edit("no model", lambda p: p.pop("model"))
    edit("one class too few", lambda p: p.update(classes=p["classes"][:-1]))
    edit("duplicate classes", lambda p: p.update(classes=[p["classes"][0]] * len(p["classes"])))
    edit("an unknown stage", lambda p: p.update(stage="warmup"))
    edit("an invalid saved config", lambda p: p["config"]["data"].update(limit=-1))
    edit("a non-integer input size", lambda p: p["model"]["kwargs"].update(input_size=34.5))
    edit("fractional levels", lambda p: p["model"]["kwargs"].update(levels=2.5))
    edit("the spiking flag of another stage", lambda p: p["model"].update(spiking=True))
    weight = state[name]

    def replace(label: str, tensor) -> None:
        edit(label, lambda p: p["state_dict"].update({name: tensor}))

    replace("a complex weight", weight.to(torch.complex64))
    replace("an integer weight", weight.to(torch.int32))
    replace("a float64 weight beyond float32", weight.double() * 1e300 + 1e300)
    replace("a quantized weight", torch.quantize_per_tensor(weight.float(), 0.1, 0, torch.qint8))
    return cases


def _deep(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


def _forged(payload: dict, name: str, tensor) -> dict:
    """``payload`` with weight ``name`` replaced by a tensor hsd cannot hash (so the file is
    saved with a made-up digest): the loader must refuse it before touching its data."""
    copy = {k: v for k, v in payload.items() if k != "path"}
    copy["state_dict"] = {**payload["state_dict"], name: tensor}
    copy["digest"] = {"sha256": "0" * 64}
    return copy


def _raw(path: Path, payload: dict) -> None:
    torch.save(payload, path)


@pytest.mark.parametrize("seed", SEEDS)
def test_flipped_bytes_are_detected_or_change_nothing(seed, runs, tmp_path):
    rng = random.Random(seed)
    for which in ("teacher", "converted"):
        good = Path(runs[which])
        original = load_checkpoint(good)
        reference = digest(original)
        data = good.read_bytes()
        detected = 0
        for _ in range(120):
            i = rng.randrange(len(data))
            bad = tmp_path / f"flip-{which}.pt"
            flipped = bytearray(data)
            flipped[i] ^= 1 << rng.randrange(8)
            bad.write_bytes(bytes(flipped))
            try:
                loaded = load_checkpoint(bad)
            except CheckpointError as exc:
                assert str(bad) in str(exc)
                detected += 1
                continue
            assert digest(loaded) == reference, f"byte {i}: accepted with other contents"
        assert detected >= 60  # nearly every byte of a checkpoint is a weight


@pytest.mark.parametrize("seed", SEEDS)
def test_every_command_refuses_a_damaged_checkpoint_naming_it(seed, runs, tmp_path):
    rng = random.Random(100 + seed)
    good = Path(runs["teacher"])
    data = good.read_bytes()
    payload = load_checkpoint(good)
    bad = tmp_path / "bad.pt"
    writers = [
        ("empty", lambda: bad.write_bytes(b"")),
        ("text", lambda: bad.write_text("this is not a checkpoint\n" * 20)),
        ("random bytes", lambda: bad.write_bytes(rng.randbytes(4096))),
        ("zip magic then junk", lambda: bad.write_bytes(b"PK\x03\x04" + rng.randbytes(2000))),
        ("truncated", lambda: bad.write_bytes(data[: rng.randrange(1, len(data))])),
        ("truncated", lambda: bad.write_bytes(data[: rng.randrange(1, len(data))])),
        ("a foreign torch file", lambda: _raw(bad, {"weights": torch.zeros(3)})),
        ("a list", lambda: _raw(bad, [1, 2, 3])),
    ]

    def flip_a_weight() -> None:
        flipped = bytearray(data)
        while True:
            i = rng.randrange(len(data))
            flipped[i] ^= 0x10
            bad.write_bytes(bytes(flipped))
            try:
                load_checkpoint(bad)
            except CheckpointError:
                return
            flipped[i] ^= 0x10

    writers.append(("a flipped byte", flip_a_weight))

    def tampered() -> None:  # a weight edited, the old digest kept
        copy = {k: v for k, v in payload.items() if k != "path"}
        name = next(k for k, v in copy["state_dict"].items() if v.is_floating_point())
        copy["state_dict"] = {**copy["state_dict"], name: copy["state_dict"][name] + 1e-3}
        torch.save(copy, bad)

    writers.append(("a tampered weight", tampered))
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    shape = payload["state_dict"][name].shape
    for label, tensor in [
        ("a meta weight", torch.empty(shape, device="meta")),
        ("a sparse weight", payload["state_dict"][name].to_sparse()),
        ("a stride-0 weight of 10^10 elements", torch.zeros(1).expand(100_000, 100_000)),
    ]:
        writers.append((label, lambda t=tensor: _raw(bad, _forged(payload, name, t))))

    def nested() -> None:  # deeper than Python's recursion limit (the unpickler is iterative)
        copy = _forged(payload, name, payload["state_dict"][name])
        copy["metrics"] = _deep(5000)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(20_000)
        try:
            torch.save(copy, bad)
        finally:
            sys.setrecursionlimit(limit)

    writers.append(("nested 5000 deep", nested))
    for label, copy in _edited(payload, rng):
        writers.append((label, lambda copy=copy: save_checkpoint(copy, bad)))
    cases = 0
    for label, write in writers:
        write()
        for argv in _commands(bad, runs, tmp_path / "out"):
            result = run_hsd(argv)
            message = assert_refused(result, str(bad))
            assert "Traceback" not in message, label
            cases += 1
    assert cases >= 175  # 36 faults x 5 commands


def test_stage_checks_name_the_checkpoint(runs, tmp_path):
    converted = str(runs["converted"])
    message = assert_refused(run_hsd(["convert", converted, "--out", tmp_path / "c"]), converted)
    assert "already a spiking network" in message
    argv = ["distill", "--teacher", converted, "--out", tmp_path / "d"]
    message = assert_refused(run_hsd(argv), converted)
    assert "needs an ANN" in message
    folder = tmp_path / "empty-run"
    folder.mkdir()
    assert_refused(run_hsd(["evaluate", folder]), str(folder))


def test_an_old_checkpoint_without_digest_loads_with_a_warning_and_the_same_output(runs, tmp_path):
    good = Path(runs["converted"])
    reference = run_hsd(["evaluate", good, "--steps", "1,2", "--json", "--split", "val"])
    assert reference.rc == 0, reference
    payload = {k: v for k, v in load_checkpoint(good).items() if k not in ("path", "digest")}
    payload["format"] = "hsd-checkpoint/1"  # as written before digests existed
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    result = run_hsd(["evaluate", old, "--steps", "1,2", "--json", "--split", "val"])
    assert_no_crash(result)
    del payload["format"]
    save_checkpoint(payload, tmp_path / "new.pt")
    torch.save({k: v for k, v in torch.load(tmp_path / "new.pt").items() if k != "digest"}, old)
    message = assert_refused(run_hsd(["evaluate", old]), str(old))
    assert "lacks its digest" in message
    torch.save({**payload, "format": "hsd-checkpoint/1"}, old)
    assert result.rc == 0, result
    assert f"hsd: warning: {old}: written without a digest" in result.err
    strip = lambda text: text.replace(str(old), "X").replace(str(good), "X")  # noqa: E731
    assert strip(result.out) == strip(reference.out)


def test_export_works_at_both_ends_of_the_opset_range_and_not_beyond(runs, tmp_path):
    from hsd.export import ONNX_OPSETS

    low, high = ONNX_OPSETS
    for opset in (low, high):
        out = tmp_path / f"step{opset}.onnx"
        result = run_hsd(["export", "onnx", runs["converted"], out, "--opset", opset])
        assert result.rc == 0 and out.is_file(), result
    for opset in (low - 1, high + 1):
        argv = ["export", "onnx", runs["converted"], tmp_path / "x.onnx", "--opset", opset]
        assert_refused(run_hsd(argv), "--opset")
