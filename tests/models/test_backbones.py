"""Backbones: shapes, hand-counted parameters, factory, per-frame independence of the ANN."""

import itertools

import pytest
import torch
from torch import nn

from hsd.errors import ConfigError
from hsd.models import QCFS, VGGSNN, DemoNet, create_model, list_models


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv_bn_qcfs(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + 2 * c_out + 1  # bias-free 3x3 conv, BN weight+bias, QCFS lam


def test_vggsnn_parameter_count_at_width_1():
    widths = [2, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(_conv_bn_qcfs(a, b) for a, b in itertools.pairwise(widths))
    linear = 512 * 3 * 3 * 10 + 10
    assert convs + linear == 9_268_754
    assert _count(VGGSNN()) == convs + linear


def test_demonet_parameter_count():
    convs = _conv_bn_qcfs(2, 32) + _conv_bn_qcfs(32, 64) + _conv_bn_qcfs(64, 128)
    linear = 128 * 4 * 4 * 10 + 10  # 34 -> 17 -> 8 -> 4
    assert _count(DemoNet()) == convs + linear == 113_677


def test_vggsnn_shapes_at_48_tiny_width():
    model = VGGSNN(width=1 / 16, num_classes=7).eval()
    assert model.classifier[-1].in_features == 32 * 3 * 3
    with torch.no_grad():
        out = model(torch.rand(3, 2, 2, 48, 48))
    assert out.shape == (3, 2, 7)


def test_demonet_shapes_and_other_sizes():
    with torch.no_grad():
        assert DemoNet(width=0.25).eval()(torch.rand(4, 5, 2, 34, 34)).shape == (4, 5, 10)
        net = DemoNet(in_channels=1, num_classes=11, input_size=48, width=0.25).eval()
        assert net(torch.rand(2, 3, 1, 48, 48)).shape == (2, 3, 11)


def test_pooling_is_average_and_every_conv_has_bn_and_qcfs():
    model = VGGSNN(width=1 / 16)
    assert not any(isinstance(m, nn.modules.pooling._MaxPoolNd) for m in model.modules())
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 4
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 8
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    qcfs = [m for m in model.modules() if isinstance(m, QCFS)]
    assert len(qcfs) == 8 and all(q.levels == 8 and q.lam.item() == 8.0 for q in qcfs)


def test_ann_processes_every_frame_independently():
    model = DemoNet(width=0.25, init_threshold=1.0).eval()
    x = torch.rand(4, 2, 2, 34, 34) * 2
    with torch.no_grad():
        out = model(x)
        assert torch.allclose(model(x.flip(0)), out.flip(0), atol=1e-6)
        assert torch.allclose(model(x[2:3]), out[2:3], atol=1e-6)


def test_factory():
    assert list_models() == ["demo", "vggsnn"]
    model = create_model("vggsnn", width=1 / 16, levels=4, init_threshold=2.0, dropout=0.1)
    assert isinstance(model, VGGSNN)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.1 for m in model.modules())
    assert all(q.levels == 4 for q in model.modules() if isinstance(q, QCFS))
    assert isinstance(create_model("demo"), DemoNet)
    with pytest.raises(ConfigError, match=r"unknown model 'resnet'.*demo, vggsnn"):
        create_model("resnet")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_size": 8}, "input_size 8 is below 16"),
        ({"width": 0.0}, "width > 0"),
        ({"dropout": 1.0}, "dropout < 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VGGSNN(**kwargs)


@pytest.mark.parametrize("shape", [(2, 2, 34, 34), (1, 2, 3, 34, 34)])
def test_input_must_be_time_first_with_the_right_channels(shape):
    with pytest.raises(ValueError, match=r"expects time-first input \[T, B, 2, H, W\]"):
        DemoNet(width=0.25)(torch.rand(shape))
