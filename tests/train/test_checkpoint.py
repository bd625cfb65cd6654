import os
import pickle

import pytest
import torch

from hsd.errors import CheckpointError
from hsd.train.checkpoint import FORMAT, load_checkpoint, save_checkpoint


def _payload():
    return {
        "model": {
            "name": "demo",
            "kwargs": {"in_channels": 2, "num_classes": 2, "input_size": 8, "width": 0.5},
            "spiking": False,
        },
        "state_dict": {"w": torch.arange(6.0).reshape(2, 3)},
        "classes": ["a", "b"],
        "stage": "teacher",
        "epoch": 3,
        "config": {},
    }


def test_round_trip_loads_with_weights_only(tmp_path):
    path = save_checkpoint(_payload(), tmp_path / "ckpt" / "best.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(6.0).reshape(2, 3))
    assert loaded["epoch"] == 3
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_run_directory_resolves_to_best(tmp_path):
    save_checkpoint(_payload(), tmp_path / "checkpoints" / "best.pt")
    assert load_checkpoint(tmp_path)["path"].endswith("best.pt")


def test_truncated_checkpoint_is_reported(tmp_path):
    path = save_checkpoint(_payload(), tmp_path / "c.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        torch.save(
            {**_payload(), "format": FORMAT, "hook": Payload()}, handle, pickle_module=pickle
        )
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(
        CheckpointError,
        match=r"a plain state dict \(weights only, 1 tensors\): it does not say which network",
    ):
        load_checkpoint(path)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(_payload(), tmp_path / "last.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({**_payload(), "epoch": 4}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
