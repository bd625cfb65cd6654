"""Own networks: the model registry, import paths in model.name, and the time-first probe."""

import sys
import textwrap

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

from hsd.errors import ConfigError, ConversionError
from hsd.models import QCFS, check_convertible, convert_to_snn, create_model, list_models, register


class PerFrameFolded(nn.Module):
    """A plausible but wrong per-frame CNN: folds T into the batch for the WHOLE network, so its
    QCFS layers see ``[T*B, ...]``."""

    def __init__(self, *, in_channels=2, num_classes=3, input_size=8, **_):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1),
            QCFS(4, 2.0),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * (input_size // 2) ** 2, num_classes),
        )

    def forward(self, x):  # x: [T, B, P, H, W]
        t, b = x.shape[:2]
        return self.body(x.flatten(0, 1)).view(t, b, -1)


def make_proper(*, in_channels=2, num_classes=3, input_size=8, width=1.0, levels=4, **_):
    """The same network done right: stateless layers frame by frame, QCFS on [T, B, ...]."""
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(in_channels, 4, 3, padding=1)),
        QCFS(levels, 2.0),
        layer.SeqToANNContainer(
            nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * (input_size // 2) ** 2, num_classes)
        ),
    )


def test_folded_network_is_refused_naming_the_layer():
    net = PerFrameFolded()
    for call in (
        lambda: convert_to_snn(net, input_shape=(2, 8, 8)),
        lambda: check_convertible(net, input_shape=(2, 8, 8)),
    ):
        with pytest.raises(ConversionError, match=r"layer 'body\.1'.*\[6, 4, 8, 8\].*not time"):
            call()


def test_proper_network_converts_and_samples_are_independent():
    net = make_proper()
    check_convertible(net, input_shape=(2, 8, 8))
    snn = convert_to_snn(net, input_shape=(2, 8, 8))
    x = torch.rand(4, 3, 2, 8, 8) * 3
    with torch.no_grad():
        both = snn(x)
        from hsd.models import reset_states

        reset_states(snn)
        alone = snn(x[:, :1])
    assert both.shape == (4, 3, 3)
    assert torch.allclose(both[:, :1], alone, atol=1e-6)


def test_create_model_tags_the_input_shape_so_conversion_probes_it():
    net = create_model(f"{__name__}:PerFrameFolded", in_channels=2, num_classes=3, input_size=8)
    assert net.hsd_input_shape == (2, 8, 8)
    with pytest.raises(ConversionError, match=r"body\.1"):
        convert_to_snn(net)


def test_register_and_import_path(tmp_path, monkeypatch):
    register("tiny-test-net")(make_proper)
    assert "tiny-test-net" in list_models() and {"demo", "vggsnn"} <= set(list_models())
    net = create_model("tiny-test-net", in_channels=2, num_classes=5, input_size=8)
    assert net(torch.zeros(2, 1, 2, 8, 8)).shape == (2, 1, 5)
    with pytest.raises(ValueError, match="already registered"):
        register("tiny-test-net")(PerFrameFolded)
    (tmp_path / "mynets_probe.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            def make_net(*, in_channels, num_classes, input_size, **_):
                return nn.Linear(in_channels, num_classes)
            not_callable = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    net = create_model("mynets_probe:make_net", in_channels=2, num_classes=4, input_size=8)
    assert isinstance(net, nn.Linear) and net.out_features == 4
    with pytest.raises(ConfigError, match="'nowhere_mod'"):
        create_model("nowhere_mod:make", in_channels=2)
    with pytest.raises(ConfigError, match="has no 'missing'"):
        create_model("mynets_probe:missing")
    with pytest.raises(ConfigError, match="not callable"):
        create_model("mynets_probe:not_callable")
    with pytest.raises(ConfigError, match=r"unknown model 'nope'.*demo, .*import path"):
        create_model("nope")
    sys.modules.pop("mynets_probe", None)
