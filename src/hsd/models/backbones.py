"""Backbones that run frame by frame on time-first input ``[T, B, P, H, W]`` -> ``[T, B, C]``.

Stateless layers (convolution, BatchNorm, average pooling, flatten, dropout, linear) sit in
SpikingJelly's ``layer.SeqToANNContainer``, which folds time into the batch, so the ANN teacher
processes every frame independently (BatchNorm statistics are taken over ``T * B`` frames). The
activations are :class:`~hsd.models.qcfs.QCFS` modules applied to the whole ``[T, B, ...]``
tensor; :func:`hsd.models.convert.convert_to_snn` swaps them for multi-step spiking neurons, which
carry membrane state across T. One definition, both networks.

Convolutions have no bias (each is followed by BatchNorm, whose shift makes a bias redundant).
Pooling is 2x2 average pooling only: max pooling does not convert. Dropout, when enabled, is
``nn.Dropout`` before the classifier, drawn independently per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikingjelly.activation_based import layer
from torch import Tensor, nn

from hsd.errors import ConfigError
from hsd.models.qcfs import QCFS
from hsd.models.registry import register

__all__ = ["POOL", "VGGSNN", "DemoNet", "FrameNet"]

POOL = "pool"


def _scaled(width: float, channels: int) -> int:
    return max(1, round(channels * width))


def _check_time_first(module: nn.Module, args: tuple[object, ...]) -> None:
    """Forward pre-hook: refuse anything but ``[T, B, in_channels, H, W]`` input."""
    x = args[0]
    if not isinstance(x, Tensor) or x.dim() != 5 or x.shape[2] != module.in_channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{type(module).__name__} expects time-first input [T, B, {module.in_channels}, H, W], "
            f"got {shape}"
        )


class FrameNet(nn.Module):
    """Conv-BN-QCFS stack described by ``plan`` (ints: 3x3 conv widths before scaling by
    ``width``; ``"pool"``: 2x2 average pooling), then one linear layer on the flattened
    features. ``forward``: ``[T, B, in_channels, input_size, input_size]`` float ->
    ``[T, B, num_classes]``."""

    def __init__(
        self,
        plan: Sequence[int | str],
        *,
        in_channels: int,
        num_classes: int,
        input_size: int,
        width: float,
        levels: int,
        init_threshold: float,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1 or width <= 0 or not 0.0 <= dropout < 1.0:
            raise ConfigError(
                f"{type(self).__name__}: need in_channels >= 1, num_classes >= 1, width > 0 and "
                f"0 <= dropout < 1 (got {in_channels}, {num_classes}, {width}, {dropout})"
            )
        pools = sum(1 for item in plan if item == POOL)
        if input_size < 2**pools:
            raise ConfigError(
                f"{type(self).__name__}: input_size {input_size} is below {2**pools} "
                f"({pools} 2x2 poolings)"
            )
        blocks: list[nn.Module] = []
        channels, size = in_channels, input_size
        for item in plan:
            if item == POOL:
                blocks.append(layer.SeqToANNContainer(nn.AvgPool2d(2)))
                size //= 2
                continue
            out = _scaled(width, int(item))
            blocks.append(
                layer.SeqToANNContainer(
                    nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                )
            )
            blocks.append(QCFS(levels, init_threshold))
            channels = out
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(channels * size * size, num_classes))
        self.classifier = layer.SeqToANNContainer(*head)
        self.in_channels = in_channels
        self.input_size = input_size
        self.num_classes = num_classes
        self.register_forward_pre_hook(_check_time_first)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``[T, B, P, H, W]`` -> per-step logits ``[T, B, num_classes]``."""
        return self.classifier(self.features(x))


@register("vggsnn")
class VGGSNN(FrameNet):
    """The VGGSNN of TET / HSD (48x48 input): widths 64,128,pool,256,256,pool,512,512,pool,
    512,512,pool, each 3x3 conv followed by BatchNorm and the activation, 2x2 average pooling
    and one linear layer (``512*width * (input_size // 16)^2 -> num_classes``)."""

    PLAN = (64, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL)

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        input_size: int = 48,
        width: float = 1.0,
        levels: int = 8,
        init_threshold: float = 8.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            self.PLAN,
            in_channels=in_channels,
            num_classes=num_classes,
            input_size=input_size,
            width=width,
            levels=levels,
            init_threshold=init_threshold,
            dropout=dropout,
        )


@register("demo")
class DemoNet(FrameNet):
    """A small network for the demo and CPU tests: widths 32,pool,64,pool,128,pool + linear
    (113,677 parameters at 34x34 input, 2 polarities, 10 classes, width 1)."""

    PLAN = (32, POOL, 64, POOL, 128, POOL)

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        input_size: int = 34,
        width: float = 1.0,
        levels: int = 8,
        init_threshold: float = 8.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            self.PLAN,
            in_channels=in_channels,
            num_classes=num_classes,
            input_size=input_size,
            width=width,
            levels=levels,
            init_threshold=init_threshold,
            dropout=dropout,
        )
