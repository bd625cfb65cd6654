"""The fused Triton QCFS integrate-and-fire kernel against the reference Python loop.

On a CPU the kernel runs through Triton's interpreter (``TRITON_INTERPRET=1``, set here before the
kernel module is (re)loaded); skipped, saying so, when triton is not installed (extra ``triton``).
"""

import importlib
import os

import pytest
import torch

from hsd.models import QCFSNeuron, reset_states

triton = pytest.importorskip("triton", reason="triton not installed (pip install 'hsd[triton]')")
if tuple(int(p) for p in triton.__version__.split(".")[:2]) < (3, 8):
    pytest.skip(
        f"triton {triton.__version__}: its interpreter fails with numpy >= 2.4; needs >= 3.8",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def kernel():
    """``hsd.models.qcfs_triton`` with its kernels built for the interpreter (CPU tensors)."""
    from hsd.models import qcfs_triton

    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    importlib.reload(qcfs_triton)
    assert qcfs_triton.available()
    yield qcfs_triton
    if old is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = old
    importlib.reload(qcfs_triton)


def _pair(lam: float, impl_a: str, impl_b: str):
    a, b = QCFSNeuron(lam), QCFSNeuron(lam)
    a.multistep_impl, b.multistep_impl = impl_a, impl_b
    return a, b


SHAPES = [(3,), (2, 5), (2, 3, 4, 5), (1, 1300)]  # the last spans two programs of BLOCK=1024


@pytest.mark.parametrize("steps", [1, 2, 4, 7])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_neuron_values_and_gradients_equal_the_loop(kernel, steps, shape):
    torch.manual_seed(steps * 100 + len(shape))
    lam = 0.5 + torch.rand(()).item() * 2
    loop, fused = _pair(lam, "loop", "triton")
    # inputs around the threshold so that spikes, silences and the surrogate's slope all occur
    x = (torch.randn(steps, *shape) * lam).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    grad_out = torch.randn(steps, *shape)

    out_ref = loop(x)
    out = fused(x2)
    assert out.shape == out_ref.shape
    assert torch.equal(out, out_ref)  # float32 throughout: the same spikes, the same values
    if out_ref.numel() >= 50:
        assert 0 < (out_ref > 0).float().mean() < 1
    torch.testing.assert_close(fused.v, loop.v, rtol=1e-6, atol=1e-6)

    (out_ref * grad_out).sum().backward()
    (out * grad_out).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.lam.grad, loop.lam.grad, rtol=1e-4, atol=1e-5)
    assert loop.lam.grad.abs() > 0  # the threshold is learnt (output scale, reset, v0)
    assert x.grad.abs().sum() > 0


def _loop_reference(x_seq, v0, lam, alpha):
    """The loop written with plain autograd ops (surrogate: triangle of slope alpha)."""
    from hsd.models.surrogate import Triangle

    sg = Triangle(alpha=alpha)
    v, outs = v0, []
    for x in x_seq.unbind(0):
        h = v + x
        out = sg((h - lam) / lam) * lam
        outs.append(out)
        v = h - out
    return torch.stack(outs), v


@pytest.mark.parametrize("alpha", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("steps", [1, 4, 7])
def test_kernel_gradients_through_initial_and_final_membrane(kernel, steps, alpha):
    """v0 in, v_T out (carried state): gradients of x, v0 and lam, with a loss on v_T too."""
    torch.manual_seed(steps)
    x = torch.randn(steps, 4, 33) * 1.5
    v0 = torch.rand(4, 33) * 1.5
    lam = torch.tensor(1.3)
    go, gv = torch.randn(steps, 4, 33), torch.randn(4, 33)
    grads = []
    for fn in (_loop_reference, kernel.multistep_if):
        xs, v0s, lams = (t.clone().requires_grad_() for t in (x, v0, lam))
        out, v_last = fn(xs, v0s, lams, alpha)
        ((out * go).sum() + (v_last * gv).sum()).backward()
        grads.append((out.detach(), v_last.detach(), xs.grad, v0s.grad, lams.grad))
    for ref, got in zip(*grads, strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    # the loss on the final membrane matters: without it the gradients differ
    assert grads[1][3].abs().sum() > 0


def test_kernel_without_threshold_gradient_and_in_half_precision(kernel):
    x = torch.randn(5, 2, 7, dtype=torch.bfloat16)
    v0 = torch.full((2, 7), 0.5, dtype=torch.bfloat16)
    lam = torch.tensor(1.0, dtype=torch.bfloat16)
    out, v_last = kernel.multistep_if(x, v0, lam)
    ref, ref_v = _loop_reference(x.float(), v0.float(), lam.float(), 1.0)
    assert out.dtype == torch.bfloat16 and v_last.dtype == torch.bfloat16
    # float32 inside the kernel: equal to the float32 loop on the bfloat16 inputs
    torch.testing.assert_close(out.float(), ref)
    torch.testing.assert_close(v_last.float(), ref_v, rtol=1e-2, atol=1e-2)


def test_auto_selects_the_loop_on_cpu_and_the_network_still_matches(kernel):
    from torch import nn

    net = nn.Sequential(nn.Linear(6, 8), QCFSNeuron(1.0), nn.Linear(8, 3))
    neuron = net[1]
    assert neuron.multistep_impl == "auto"
    assert not neuron._use_fused(torch.zeros(2, 6))  # CPU tensor: the reference loop
    x = torch.randn(4, 3, 6)

    def run(impl):
        neuron.multistep_impl = impl
        reset_states(net)
        net.zero_grad()
        from spikingjelly.activation_based import functional

        out = functional.multi_step_forward(x, net[0])
        out = neuron(out)
        out = functional.multi_step_forward(out, net[2])
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    out_a, grads_a = run("auto")
    out_t, grads_t = run("triton")
    torch.testing.assert_close(out_t, out_a)
    for a, t in zip(grads_a, grads_t, strict=True):
        torch.testing.assert_close(t, a, rtol=1e-4, atol=1e-5)
