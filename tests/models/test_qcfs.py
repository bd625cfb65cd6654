"""QCFS activation: hand-computed values, straight-through floor, gradients of lam, positivity."""

import pytest
import torch

from hsd.models import QCFS, clamp_thresholds
from hsd.models.qcfs import MIN_THRESHOLD


def test_forward_hand_computed():
    # L = 4, lam = 2: a(z) = 2 * clamp(floor(2 z + 1/2) / 4, 0, 1)
    q = QCFS(levels=4, init_threshold=2.0)
    z = torch.tensor([-1.0, 0.0, 0.2, 0.3, 0.74, 0.76, 1.0, 1.9, 3.0])
    expected = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 2.0, 2.0])
    assert torch.equal(q(z), expected)


def test_output_takes_only_the_l_plus_one_levels():
    q = QCFS(levels=8, init_threshold=4.0)
    out = q(torch.linspace(-3, 9, 1001))
    assert set(torch.unique(out).tolist()) == {0.5 * k for k in range(9)}


def test_floor_is_straight_through():
    # on a plateau of the staircase a true floor has zero slope; the straight-through one has 1
    q = QCFS(levels=4, init_threshold=2.0)
    z = torch.tensor([0.3, 0.6, 1.1, 1.4], requires_grad=True)
    q(z).sum().backward()
    assert torch.equal(z.grad, torch.ones(4))


def test_fused_backward_matches_autograd_reference():
    torch.manual_seed(0)
    z = (torch.randn(500) * 3 + 1).requires_grad_()
    weights = torch.randn(500)
    q = QCFS(levels=8, init_threshold=3.0)
    (q(z) * weights).sum().backward()
    lam = torch.tensor(3.0, requires_grad=True)
    z_ref = z.detach().clone().requires_grad_()
    u = z_ref * 8 / lam + 0.5
    ref = lam * torch.clamp((u + (torch.floor(u) - u).detach()) / 8, 0, 1)
    (ref * weights).sum().backward()
    assert torch.allclose(q(z).detach(), ref.detach(), atol=1e-6)
    assert torch.allclose(z.grad, z_ref.grad, atol=1e-6)
    assert q.lam.grad.item() == pytest.approx(lam.grad.item(), rel=1e-5)


def test_gradients_of_input_and_lam():
    # inside the clip: da/dz = 1, da/dlam = (a - z) / lam; above: 0 and 1; below: 0 and 0
    q = QCFS(levels=4, init_threshold=2.0)
    z = torch.tensor([-1.0, 0.3, 1.0, 3.0], requires_grad=True)
    out = q(z)
    assert torch.equal(out.detach(), torch.tensor([0.0, 0.5, 1.0, 2.0]))
    out[1].backward(retain_graph=True)
    assert z.grad.tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0])
    assert q.lam.grad.item() == pytest.approx((0.5 - 0.3) / 2.0)
    for i, dz, dlam in [(0, 0.0, 0.0), (2, 1.0, 0.0), (3, 0.0, 1.0)]:
        z.grad = None
        q.lam.grad = None
        out[i].backward(retain_graph=True)
        assert z.grad[i].item() == pytest.approx(dz)
        assert q.lam.grad.item() == pytest.approx(dlam)


def test_lam_stays_positive_after_a_step_that_would_make_it_negative():
    q = QCFS(levels=4, init_threshold=0.5)
    opt = torch.optim.SGD(q.parameters(), lr=10.0)
    z = torch.full((8,), 3.0)  # above the clip: d(sum a)/dlam = 8, so the step is -80
    q(z).sum().backward()
    opt.step()
    assert q.lam.item() < 0  # the raw parameter went negative ...
    assert q.threshold.item() == pytest.approx(MIN_THRESHOLD)  # ... the clip in use did not
    out = q(z)
    assert torch.isfinite(out).all() and out.min().item() >= 0
    q.lam.grad = None
    q(z).sum().backward()
    assert q.lam.grad.item() == pytest.approx(8.0)  # gradient still flows below the floor
    clamp_thresholds(q)  # what the engine does after every optimiser step
    assert q.lam.item() == pytest.approx(MIN_THRESHOLD)


@pytest.mark.parametrize("levels, threshold", [(0, 8.0), (4, 0.0), (4, -1.0)])
def test_bad_arguments_are_refused(levels, threshold):
    with pytest.raises(ValueError):
        QCFS(levels=levels, init_threshold=threshold)
