"""An own network named by import path goes through teacher, distillation, evaluation,
streaming and export (tiny settings on the embedded digits-dvs data)."""

import sys
import textwrap

import pytest

from hsd.config import load_config
from hsd.errors import CheckpointError, ConversionError
from hsd.pipeline import (
    distill,
    evaluate_checkpoint,
    model_from_checkpoint,
    prepare_data,
    train_teacher,
)
from hsd.train.checkpoint import load_checkpoint

NETS = textwrap.dedent(
    """
    from spikingjelly.activation_based import layer
    from torch import nn
    from hsd.models import QCFS

    def make_net(*, in_channels, num_classes, input_size, width=1.0, levels=8,
                 init_threshold=2.0, **_):
        c = max(2, int(8 * width))
        return nn.Sequential(
            layer.SeqToANNContainer(nn.Conv2d(in_channels, c, 3, padding=1), nn.BatchNorm2d(c)),
            QCFS(levels, init_threshold),
            layer.SeqToANNContainer(nn.AvgPool2d(4), nn.Flatten(),
                                    nn.Linear(c * (input_size // 4) ** 2, num_classes)),
        )

    class Folded(nn.Module):
        def __init__(self, *, in_channels, num_classes, input_size, **_):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), QCFS(8, 2.0),
                                      nn.AvgPool2d(4), nn.Flatten(),
                                      nn.Linear(4 * (input_size // 4) ** 2, num_classes))
        def forward(self, x):
            return self.body(x.flatten(0, 1)).view(x.shape[0], x.shape[1], -1)
    """
)
TINY = [
    "data.limit=40",
    "data.batch_size=20",
    "teacher.optim.epochs=1",
    "distill.optim.epochs=1",
    "distill.steps=2",
    "progress=false",
    "threads=1",
]


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    (tmp_path / "own_nets_pipeline.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "own_nets_pipeline"
    sys.modules.pop("own_nets_pipeline", None)


def test_own_network_through_every_stage(own_module, tmp_path):
    cfg = load_config(overrides=[*TINY, f"model.name={own_module}:make_net"])
    data = prepare_data(cfg)
    teacher = train_teacher(cfg, tmp_path / "teacher", data=data)
    assert load_checkpoint(teacher)["model"]["name"] == f"{own_module}:make_net"
    student = distill(cfg, teacher, tmp_path / "hsd", data=data)
    ckpt = load_checkpoint(student)
    assert ckpt["model"]["spiking"] and ckpt["model"]["name"] == f"{own_module}:make_net"
    net = model_from_checkpoint(ckpt)
    assert sum(p.numel() for p in net.parameters()) > 0
    result = evaluate_checkpoint(student, [1, 2], cfg=cfg, data=data, progress=False)
    assert set(result["accuracy"]) == {"1", "2"}
    assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values())

    from hsd.stream import StreamClassifier

    clf = StreamClassifier(student, frame_events=200)
    assert clf.classes == [str(c) for c in data.classes] and clf.frame_shape[0] == 2
    pytest.importorskip("onnx")
    from hsd.export import export_onnx

    export_onnx(student, tmp_path / "own.onnx")
    assert (tmp_path / "own.onnx").stat().st_size > 0
    with pytest.raises(CheckpointError, match="no class names"):
        StreamClassifier({"state_dict": ckpt["state_dict"]}, frame_events=200)

    sys.modules.pop(own_module)  # a checkpoint of a module that cannot be imported any more
    sys.path.remove(str(tmp_path))
    with pytest.raises(CheckpointError, match=f"unknown architecture '{own_module}:make_net'"):
        model_from_checkpoint(ckpt)


def test_folded_own_network_is_refused_at_distillation(own_module, tmp_path):
    cfg = load_config(overrides=[*TINY, f"model.name={own_module}:Folded"])
    data = prepare_data(cfg)
    teacher = train_teacher(cfg, tmp_path / "teacher", data=data)
    with pytest.raises(ConversionError, match=r"layer 'body\.1'.*not time"):
        distill(cfg, teacher, tmp_path / "hsd", data=data)
