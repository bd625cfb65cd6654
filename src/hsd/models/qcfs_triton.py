"""Fused multi-step QCFS integrate-and-fire: all T steps of one layer in one Triton kernel.

The reference is the Python loop of
:meth:`hsd.models.convert.QCFSNeuron.multi_step_functional_forward`
(one autograd graph per step). Per element, with threshold ``lam`` (the value in use, > 0) and the
triangle surrogate of half-width ``1 / alpha``, step ``t`` computes::

    h_t = v_{t-1} + x_t
    u_t = (h_t - lam) / lam,   s_t = [u_t >= 0],   out_t = lam * s_t,   v_t = h_t - out_t

The backward kernel walks t = T-1 .. 0 and computes exactly what autograd computes on that loop
(the same formula terms in the same order), with ``g = grad_out_t - grad_v_t`` (``v_t = h_t -
out_t`` sends ``-grad_v_t`` into ``out_t``) and ``sg = max(0, alpha - alpha^2 |u_t|)``::

    grad_u = g * lam * sg
    grad_h = grad_v_t + grad_u / lam            (-> grad x_t and grad v_{t-1})
    grad_lam += g * s_t - grad_u / lam - grad_u * (h_t - lam) / lam^2

``grad_lam`` is summed per element over t in the kernel and over elements by one ``torch.sum``
(deterministic, no atomics). The initial membrane ``v0`` is an input with its own gradient, so the
``v0 = lam / 2`` reset of :class:`QCFSNeuron` (built outside) keeps its path to ``lam`` through
autograd, and the final membrane is an output with a gradient, as in the loop.

Arithmetic is float32 inside the kernel; inputs and outputs keep the input dtype (for float16 /
bfloat16 the membrane is accumulated in float32, slightly more accurate than the loop, which rounds
every step to the input dtype; for float32 the values are the loop's). The saved ``h`` is stored
in the input dtype, like the loop's saved tensors.

Shapes: ``x_seq [T, *S]`` (time first), ``v0 [*S]``, ``lam`` a 0-d tensor; returns
``(out_seq [T, *S], v_T [*S])``.

Triton is an optional dependency (extra ``triton``), imported on first use; :func:`available` says
whether it imports.
On a CPU the kernels run through Triton's interpreter when ``TRITON_INTERPRET=1`` is set before
the kernels are first used (the tests set it and reload this module); :class:`QCFSNeuron` selects
the kernel on its own only for CUDA tensors, outside ``torch.compile``.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["BLOCK", "available", "multistep_if"]

BLOCK = 1024  # elements per program; each program loops over all T steps


@functools.cache
def _kernels():
    """Import triton and define the two kernels, once (lazily: ``import hsd`` stays light).

    Returns ``(triton, forward_kernel, backward_kernel)``; raises ImportError without triton.
    """
    import triton
    import triton.language as tl

    @triton.jit
    def _if_forward(
        x_ptr, v0_ptr, lam_ptr, out_ptr, h_ptr, vt_ptr, N, T,
        SAVE_H: tl.constexpr, BLOCK_SIZE: tl.constexpr,
    ):  # fmt: skip
        offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < N
        lam = tl.load(lam_ptr).to(tl.float32)
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        for t in tl.range(0, T):
            idx = t * N + offs
            h = v + tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            s = tl.where((h - lam) / lam >= 0.0, 1.0, 0.0)
            out = s * lam
            tl.store(out_ptr + idx, out.to(out_ptr.dtype.element_ty), mask=mask)
            if SAVE_H:
                tl.store(h_ptr + idx, h.to(h_ptr.dtype.element_ty), mask=mask)
            v = h - out
        tl.store(vt_ptr + offs, v.to(vt_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _if_backward(
        gout_ptr, gvt_ptr, h_ptr, lam_ptr, gx_ptr, gv0_ptr, glam_ptr, N, T, alpha,
        HAS_GVT: tl.constexpr, BLOCK_SIZE: tl.constexpr,
    ):  # fmt: skip
        offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offs < N
        lam = tl.load(lam_ptr).to(tl.float32)
        if HAS_GVT:
            gv = tl.load(gvt_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            gv = tl.full([BLOCK_SIZE], 0.0, tl.float32)
        acc = tl.full([BLOCK_SIZE], 0.0, tl.float32)
        for i in tl.range(0, T):
            idx = (T - 1 - i) * N + offs
            go = tl.load(gout_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            h = tl.load(h_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            u = (h - lam) / lam
            s = tl.where(u >= 0.0, 1.0, 0.0)
            sg = tl.maximum(alpha - alpha * alpha * tl.abs(u), 0.0)
            g = go - gv
            gu = g * lam * sg
            gh = gv + gu / lam
            acc += g * s - gu / lam - gu * (h - lam) / (lam * lam)
            tl.store(gx_ptr + idx, gh.to(gx_ptr.dtype.element_ty), mask=mask)
            gv = gh
        tl.store(gv0_ptr + offs, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
        tl.store(glam_ptr + offs, acc, mask=mask)

    return triton, _if_forward, _if_backward


def available() -> bool:
    """Whether triton imports here (checked once; the kernels are then defined)."""
    try:
        _kernels()
    except Exception:  # ImportError, or a triton build that fails on this machine
        return False
    return True


class _MultiStepIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, v0, lam, alpha):  # type: ignore[override]
        x_seq = x_seq.contiguous()
        v0 = v0.to(x_seq.dtype).expand(x_seq.shape[1:]).contiguous()
        lam32 = lam.detach().to(device=x_seq.device, dtype=torch.float32).reshape(())
        steps = x_seq.shape[0]
        n = v0.numel()
        out = torch.empty_like(x_seq)
        v_last = torch.empty_like(v0)
        save_h = any(ctx.needs_input_grad[:3])
        h = torch.empty_like(x_seq) if save_h else out  # ``out`` is a dummy pointer if unused
        if n and steps:
            triton, _if_forward, _ = _kernels()
            grid = (triton.cdiv(n, BLOCK),)
            _if_forward[grid](x_seq, v0, lam32, out, h, v_last, n, steps, save_h, BLOCK)
        else:
            v_last.copy_(v0)
        if save_h:
            ctx.save_for_backward(h, lam32)
        ctx.alpha = float(alpha)
        ctx.lam_shape = lam.shape
        ctx.lam_dtype = lam.dtype
        return out, v_last

    @staticmethod
    def backward(ctx, grad_out, grad_v_last):  # type: ignore[override]
        h, lam32 = ctx.saved_tensors
        steps = h.shape[0]
        n = h[0].numel() if steps else 0
        if grad_out is None:
            grad_out = torch.zeros_like(h)
        grad_out = grad_out.contiguous()
        has_gvt = grad_v_last is not None
        gvt = grad_v_last.contiguous() if has_gvt else grad_out  # dummy pointer if absent
        grad_x = torch.empty_like(h)
        grad_v0 = torch.empty(h.shape[1:], dtype=h.dtype, device=h.device)
        part = torch.empty(n, dtype=torch.float32, device=h.device)
        if n and steps:
            triton, _, _if_backward = _kernels()
            grid = (triton.cdiv(n, BLOCK),)
            _if_backward[grid](
                grad_out, gvt, h, lam32, grad_x, grad_v0, part, n, steps, ctx.alpha,
                has_gvt, BLOCK,
            )  # fmt: skip
        else:
            grad_v0 = grad_v_last if has_gvt else torch.zeros_like(grad_v0)
            part.zero_()
        grad_lam = part.sum().to(ctx.lam_dtype).reshape(ctx.lam_shape)
        return grad_x, grad_v0, grad_lam, None


def multistep_if(
    x_seq: torch.Tensor, v0: torch.Tensor, lam: torch.Tensor, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """All T steps of the QCFS integrate-and-fire neuron in one kernel (module docstring).

    ``x_seq``: ``[T, *S]`` float; ``v0``: membrane before step 0, broadcastable to ``S``;
    ``lam``: 0-d threshold tensor (> 0; gradients reach it); ``alpha``: the triangle surrogate's
    slope. Returns ``(out_seq [T, *S], v_T [*S])``. Raises ``RuntimeError`` if triton is absent.
    """
    if not available():
        raise RuntimeError("the fused QCFS kernel needs triton (pip install 'hsd[triton]')")
    if x_seq.dim() < 1:
        raise ValueError(f"x_seq must be [T, ...], got shape {tuple(x_seq.shape)}")
    return _MultiStepIF.apply(x_seq, v0, lam, alpha)
