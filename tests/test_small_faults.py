"""Small faults of issue 14, each pinned: swapped ``hsd stream`` arguments, an ANN streamed or
exported, the QCFS default in one place, a teacher of another dataset."""

from pathlib import Path

import pytest

from hsd.cli import main
from hsd.config import ModelConfig
from hsd.errors import CheckpointError
from hsd.models.qcfs import DEFAULT_INIT_THRESHOLD, QCFS


def test_qcfs_default_threshold_is_the_configs():
    assert QCFS().lam.item() == DEFAULT_INIT_THRESHOLD == ModelConfig().init_threshold


def test_swapped_stream_arguments_are_named(tmp_path, capsys):
    rec = tmp_path / "rec.bin"
    rec.write_bytes(bytes(10))
    ckpt = tmp_path / "snn.pt"
    ckpt.write_bytes(b"x")
    assert main(["stream", str(rec), str(ckpt), "--frame-events", "10"]) == 2
    err = capsys.readouterr().err
    assert "the arguments look swapped" in err and "hsd stream CHECKPOINT SOURCE" in err


@pytest.fixture(scope="module")
def ann_checkpoint(tmp_path_factory) -> Path:
    from tests.test_export import _save

    return _save(tmp_path_factory.mktemp("ann") / "ann.pt", spiking=False)


def test_streaming_an_ann_is_refused(ann_checkpoint):
    from hsd.stream import StreamClassifier

    with pytest.raises(CheckpointError, match=r"is an ANN .*stream a spiking network"):
        StreamClassifier(ann_checkpoint, frame_events=100)


def test_exporting_an_ann_says_so(ann_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx")
    assert main(["export", "onnx", str(ann_checkpoint), str(tmp_path / "a.onnx")]) == 0
    assert "is an ANN (no membranes)" in capsys.readouterr().err


def test_teacher_of_another_dataset_is_named(ann_checkpoint, tmp_path):
    from hsd.config import load_config
    from hsd.errors import ConfigError
    from hsd.pipeline import distill

    trained_on = load_config().data.dataset
    other = "nmnist" if trained_on != "nmnist" else "digits-dvs"
    cfg = load_config(overrides=[f"data.dataset={other}"])
    with pytest.raises(ConfigError, match=f"trained on dataset '{trained_on}', this run uses"):
        distill(cfg, ann_checkpoint, tmp_path / "out")
