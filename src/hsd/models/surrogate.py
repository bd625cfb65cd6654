"""The triangle surrogate gradient of hsd's spiking neurons, with a lean backward.

:class:`Triangle` is SpikingJelly's ``surrogate.PiecewiseQuadratic`` (forward: Heaviside step;
backward: ``max(0, alpha - alpha^2 |x|)``, a triangle of half-width ``1 / alpha``) with the same
gradient computed as one clamp instead of SpikingJelly's ``masked_fill_`` on a boolean mask,
which took about an eighth of a demo-network training step on the CPU (``torch.profiler``,
docs/benchmarks.md "Speed"). Values and gradients are equal to ``PiecewiseQuadratic``'s
(tested); everything else (``spiking=False``, ``alpha``) is inherited.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import surrogate

__all__ = ["Triangle"]


class _TriangleSpike(torch.autograd.Function):
    """Forward ``x >= 0`` as ``x``'s dtype; backward ``grad * max(0, alpha - alpha^2 |x|)``."""

    @staticmethod
    def forward(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, alpha = inputs
        ctx.save_for_backward(x)
        ctx.alpha = alpha

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        return grad_output * (alpha - alpha * alpha * x.abs()).clamp_min(0.0), None


class Triangle(surrogate.PiecewiseQuadratic):
    """``PiecewiseQuadratic(alpha)`` with a fused backward (see the module docstring)."""

    @staticmethod
    def spiking_function(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return _TriangleSpike.apply(x, alpha)
