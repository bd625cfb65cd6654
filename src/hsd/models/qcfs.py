"""QCFS activation (quantization-clip-floor-shift, Bu et al., ICLR 2022).

With ``L`` levels and a learnable per-layer clip ``lam``::

    a(z) = lam * clamp(floor(z * L / lam + 1/2) / L, 0, 1)

``floor`` passes its gradient straight through (the backward pass treats it as the identity), so
with ``q = floor(z * L / lam + 1/2)``:

* ``0 <= q <= L`` (inside the clip): ``da/dz = 1`` and ``da/dlam = (a - z) / lam``;
* ``q > L`` (above): ``da/dz = 0`` and ``da/dlam = 1``;
* ``q < 0`` (below): both 0.

These are the gradients of the QCFS reference code. The forward and backward are one fused
autograd function (:func:`qcfs`) that saves only ``z`` and ``q``, which keeps activation memory
low for the large backbones.

Positivity of ``lam``: the forward pass uses ``max(lam, MIN_THRESHOLD)`` with a straight-through
gradient (:func:`positive_threshold`), so the clip in use is always >= 1e-3 while the raw
parameter keeps receiving gradients; :func:`hsd.models.clamp_thresholds`, called by the training
engine after every optimiser step, projects the parameter itself back to >= 1e-3. The value in
use is :attr:`QCFS.threshold`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MIN_THRESHOLD", "QCFS", "positive_threshold", "qcfs"]

MIN_THRESHOLD = 1e-3


class _QCFSFunction(torch.autograd.Function):
    """Fused QCFS; saves ``z``, ``lam`` and the unclamped level index ``q`` for the backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, z: torch.Tensor, lam: torch.Tensor, levels: int
    ) -> torch.Tensor:
        q = torch.mul(z, levels / lam).add_(0.5).floor_()
        ctx.save_for_backward(z, lam, q)
        ctx.levels = levels
        return q.clamp(0, levels).mul_(lam / levels)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        z, lam, q = ctx.saved_tensors
        levels = ctx.levels
        grad_z = grad * ((q >= 0) & (q <= levels))
        grad_lam = None
        if ctx.needs_input_grad[1]:
            grad_lam = (
                torch.dot(grad.reshape(-1), q.clamp(0, levels).reshape(-1)) / levels
                - torch.dot(grad_z.reshape(-1), z.reshape(-1)) / lam
            ).reshape(lam.shape)
        return grad_z, grad_lam, None


def qcfs(z: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """``lam * clamp(floor(z * levels / lam + 1/2) / levels, 0, 1)``, straight-through floor.

    ``z``: any shape, float; ``lam``: scalar tensor > 0 of the same dtype; returns ``z``'s shape.
    """
    return _QCFSFunction.apply(z, lam, levels)


def positive_threshold(lam: torch.Tensor) -> torch.Tensor:
    """Exactly ``max(lam, MIN_THRESHOLD)`` in value, with the identity's gradient."""
    return lam.detach().clamp_min(MIN_THRESHOLD) + (lam - lam.detach())


DEFAULT_INIT_THRESHOLD = 2.0
"""Initial clip ``lam`` of :class:`QCFS` when none is given: the value of ``model.init_threshold``
in hsd's config (``hsd.config``; a test keeps the two equal) and of the CPU recipes (``demo``,
``nmnist``). The paper's VGGSNN recipes set 8.0 explicitly."""


class QCFS(nn.Module):
    """Quantized clip-floor-shift activation; element-wise, any input shape.

    ``levels``: number of quantization steps L (>= 1). ``init_threshold``: initial clip ``lam``
    (> 0, default :data:`DEFAULT_INIT_THRESHOLD` = 2.0), a scalar ``nn.Parameter`` named ``lam``.
    """

    def __init__(self, levels: int = 8, init_threshold: float = DEFAULT_INIT_THRESHOLD) -> None:
        super().__init__()
        if isinstance(levels, bool) or int(levels) != levels or int(levels) < 1:
            raise ValueError(f"QCFS levels must be a whole number >= 1, got {levels}")
        if not init_threshold > 0:
            raise ValueError(f"QCFS init_threshold must be > 0, got {init_threshold}")
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(init_threshold)))

    @property
    def threshold(self) -> torch.Tensor:
        """The clip value in use: ``max(lam, 1e-3)``, scalar tensor (differentiable)."""
        return positive_threshold(self.lam)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return qcfs(z, self.threshold.to(z.dtype), self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}"
