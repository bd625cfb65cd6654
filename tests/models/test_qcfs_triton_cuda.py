"""The fused Triton kernel compiled for a GPU, against the reference loop on the same GPU.

Skipped, saying so, without CUDA or triton (run by benchmarks/gpu_check.sh on a GPU machine).
The CPU tests of the same kernel (through Triton's interpreter) are in test_qcfs_triton.py.
"""

import pytest
import torch

from hsd.models import QCFSNeuron, convert_to_snn, create_model, reset_states

pytest.importorskip("triton", reason="triton not installed (pip install 'hsd[triton]')")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)


@pytest.mark.parametrize("steps", [1, 2, 4, 7, 10])
@pytest.mark.parametrize("shape", [(3,), (8, 64, 12, 12), (2, 5000)])
def test_cuda_kernel_equals_loop(steps, shape):
    from hsd.models import qcfs_triton

    torch.manual_seed(steps)
    loop, fused = QCFSNeuron(1.7), QCFSNeuron(1.7)
    loop.multistep_impl = "loop"
    loop.cuda(), fused.cuda()
    x = (torch.randn(steps, *shape, device="cuda") * 1.7).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    assert fused._use_fused(x2), "auto must select the kernel on CUDA"
    g = torch.randn_like(x)
    ref, out = loop(x), fused(x2)
    assert torch.equal(out, ref)
    (ref * g).sum().backward()
    (out * g).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.lam.grad, loop.lam.grad, rtol=1e-4, atol=1e-4)
    assert qcfs_triton.available()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_vggsnn_under_autocast_fused_close_to_loop(dtype):
    torch.manual_seed(0)
    snn = convert_to_snn(create_model("vggsnn", num_classes=10, in_channels=2)).cuda()
    x = torch.rand(4, 2, 2, 48, 48, device="cuda")
    outs = []
    for impl in ("loop", "auto"):
        for m in snn.modules():
            if isinstance(m, QCFSNeuron):
                m.multistep_impl = impl
        reset_states(snn)
        snn.zero_grad()
        with torch.autocast("cuda", dtype=dtype):
            y = snn(x)
        y.float().mean().backward()
        outs.append((y.float().detach(), next(snn.parameters()).grad.clone()))
    (y_loop, g_loop), (y_fused, g_fused) = outs
    assert torch.isfinite(y_fused).all() and torch.isfinite(g_fused).all()
    # float32 membrane inside the kernel vs rounded per step in the loop: close, not equal
    torch.testing.assert_close(y_fused, y_loop, rtol=0.1, atol=0.1)
    assert (g_fused - g_loop).norm() <= 0.2 * g_loop.norm()
