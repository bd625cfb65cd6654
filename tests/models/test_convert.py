"""ANN -> SNN conversion: exactness, the teacher stays intact, state, refusals, thresholds."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import layer
from torch import nn

from hsd.errors import ConversionError
from hsd.models import (
    QCFS,
    DemoNet,
    QCFSNeuron,
    clamp_thresholds,
    convert_to_snn,
    create_model,
    is_spiking,
    reset_states,
)
from hsd.models.qcfs import MIN_THRESHOLD


def _constant(z: torch.Tensor, steps: int) -> torch.Tensor:
    return z.unsqueeze(0).expand(steps, *z.shape).contiguous()


@pytest.mark.parametrize("levels, lam", [(8, 4.0), (4, 2.5), (16, 8.0), (1, 1.0)])
def test_if_neuron_matches_qcfs_exactly_at_t_equals_l(levels, lam):
    qcfs = QCFS(levels, lam)
    torch.manual_seed(levels)
    grid = torch.arange(-2 * lam, 2 * lam, lam / (4 * levels))  # includes every level boundary
    z = torch.cat([grid, torch.randn(2000) * lam + lam / 2])
    snn = convert_to_snn(nn.Sequential(qcfs))
    reset_states(snn)
    with torch.no_grad():
        mean = snn(_constant(z, levels)).mean(0)
        assert (mean - qcfs(z)).abs().max().item() <= 1e-6


def test_neuron_dynamics_hand_computed():
    # lam = 1, v0 = 0.5, constant input 0.3: v = 0.8, 1.1 -> spike (v = 0.1), 0.4, 0.7, 1.0 -> spike
    snn = convert_to_snn(nn.Sequential(QCFS(4, 1.0)))
    reset_states(snn)
    out = snn(torch.full((5, 1), 0.3))
    assert out.flatten().tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_multi_step_forward_equals_step_by_step_with_gradients():
    """The unrolled multi-step update equals T single-step calls, outputs and gradients."""
    torch.manual_seed(1)
    x = (torch.randn(6, 3, 5) + 0.4).requires_grad_(True)
    multi = QCFSNeuron(1.5)
    single = QCFSNeuron(1.5)
    single.step_mode = "s"
    multi.reset()
    out_multi = multi(x)
    out_multi.pow(2).sum().backward()
    grad_x, grad_lam = x.grad.clone(), multi.lam.grad.clone()
    x.grad = None
    single.reset()
    out_single = torch.stack([single(x[t]) for t in range(x.shape[0])])
    out_single.pow(2).sum().backward()
    assert torch.equal(out_multi, out_single)
    assert torch.equal(multi.v, single.v)
    torch.testing.assert_close(grad_x, x.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad_lam, single.lam.grad, rtol=1e-5, atol=1e-6)


def test_surrogate_is_a_triangle_normalised_by_the_threshold():
    # T = 1, lam = 2, v = 1 + x: d(out)/dx = max(0, 1 - |v - lam| / lam)
    snn = convert_to_snn(nn.Sequential(QCFS(4, 2.0)))
    x = torch.tensor([[1.5, -1.0, 1.0, 0.5, 4.0]], requires_grad=True)
    reset_states(snn)
    snn(x).sum().backward()
    assert x.grad.flatten().tolist() == pytest.approx([0.75, 0.0, 1.0, 0.75, 0.0])


def _nontrivial_demo(levels: int = 8) -> DemoNet:
    torch.manual_seed(0)
    ann = DemoNet(width=0.125, levels=levels, init_threshold=1.0)
    for m in ann.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.0, 0.5)
    return ann.eval()


def test_network_gap_shrinks_with_more_steps():
    ann = _nontrivial_demo(levels=8)
    snn = convert_to_snn(ann).eval()
    frame = torch.rand(1, 4, 2, 34, 34, generator=torch.Generator().manual_seed(1)) * 2
    gaps = {}
    with torch.no_grad():
        reference = ann(frame).mean(0)
        assert reference.abs().mean() > 0.05  # the network is active, not all-zero
        for steps in (1, 2, 4, 8, 16, 32):
            reset_states(snn)
            mean = snn(frame.expand(steps, -1, -1, -1, -1)).mean(0)
            gaps[steps] = (mean - reference).abs().mean().item()
    assert gaps[32] < gaps[4] < gaps[1]
    assert gaps[8] < 0.1 * gaps[1]  # T = L: the first layer is exact, the rest nearly so


def test_teacher_is_untouched_and_student_has_no_qcfs():
    ann = _nontrivial_demo()
    x = torch.rand(3, 2, 2, 34, 34)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    with torch.no_grad():
        out_before = ann(x)
    snn = convert_to_snn(ann)
    with torch.no_grad():
        snn.features[1].lam.fill_(5.0)  # training the student must not reach the teacher
        snn.features[0][0].weight.add_(1.0)
    after = ann.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        assert torch.equal(ann(x), out_before)
    assert not is_spiking(ann) and is_spiking(snn)
    assert not any(isinstance(m, QCFS) for m in snn.modules())
    assert sum(isinstance(m, QCFSNeuron) for m in snn.modules()) == 3
    assert sum(isinstance(m, QCFS) for m in ann.modules()) == 3


def test_thresholds_come_from_lam_and_the_state_dict_round_trips():
    ann = _nontrivial_demo()
    with torch.no_grad():
        for i, m in enumerate(q for q in ann.modules() if isinstance(q, QCFS)):
            m.lam.fill_(0.75 + i)
    snn = convert_to_snn(ann)
    neurons = [m for m in snn.modules() if isinstance(m, QCFSNeuron)]
    assert [n.v_threshold.item() for n in neurons] == [0.75, 1.75, 2.75]
    assert snn.state_dict().keys() == ann.state_dict().keys()
    # a checkpoint of the SNN restores the learned thresholds into a fresh conversion
    fresh = convert_to_snn(_nontrivial_demo().train())
    fresh.load_state_dict(snn.state_dict())
    fresh.eval()
    x = torch.rand(4, 2, 2, 34, 34)
    with torch.no_grad():
        reset_states(snn)
        reset_states(fresh)
        assert torch.equal(snn(x), fresh(x))


def test_threshold_learning_can_be_switched_off():
    ann = _nontrivial_demo()
    learned = convert_to_snn(ann)
    fixed = convert_to_snn(ann, learn_threshold=False)
    assert any(n.endswith("lam") for n, _ in learned.named_parameters())
    assert not any(n.endswith("lam") for n, _ in fixed.named_parameters())
    assert any(n.endswith("lam") for n, _ in fixed.named_buffers())
    assert fixed.state_dict().keys() == learned.state_dict().keys()


def test_threshold_gets_gradients_and_is_kept_positive():
    snn = convert_to_snn(nn.Sequential(QCFS(4, 1.0)))
    reset_states(snn)
    snn(torch.full((4, 2), 0.7)).sum().backward()
    neuron = snn[0]
    assert neuron.lam.grad is not None and neuron.lam.grad.item() != 0
    with torch.no_grad():
        neuron.lam.fill_(-3.0)
    assert neuron.v_threshold.item() == pytest.approx(MIN_THRESHOLD)
    clamp_thresholds(snn)
    assert neuron.lam.item() == pytest.approx(MIN_THRESHOLD)


def test_reset_makes_runs_repeatable():
    snn = convert_to_snn(_nontrivial_demo()).eval()
    x = torch.rand(4, 2, 2, 34, 34, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        reset_states(snn)
        first = snn(x)
        reset_states(snn)
        second = snn(x)
        third = snn(x)  # no reset: the membranes carry over from the previous sequence
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_reset_is_harmless_on_an_ann():
    ann = _nontrivial_demo()
    x = torch.rand(2, 2, 2, 34, 34)
    with torch.no_grad():
        a = ann(x)
        reset_states(ann)
        assert torch.equal(ann(x), a)


class _Block(nn.Module):
    def __init__(self, act: str) -> None:
        super().__init__()
        self.conv = layer.SeqToANNContainer(nn.Conv2d(2, 2, 3, padding=1))
        self.act = QCFS()
        self.kind = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.kind == "F.relu":
            x = F.relu(x)
        elif self.kind == "torch.relu":
            x = torch.relu(x)
        elif self.kind == ".relu()":
            x = x.relu()
        elif self.kind == "max_pool2d":
            x = F.max_pool2d(x.flatten(0, 1), 2)
        return self.act(x)


class _Net(nn.Module):
    def __init__(self, act: str) -> None:
        super().__init__()
        self.block = _Block(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("F.relu", "functional call relu() in the forward of 'block' (_Block)"),
        ("torch.relu", "functional call relu() in the forward of 'block' (_Block)"),
        (".relu()", "tensor method .relu() in the forward of 'block' (_Block)"),
        ("max_pool2d", "max_pool2d() in the forward of 'block' (_Block)"),
    ],
)
def test_functional_relu_and_max_pool_are_refused(kind, expected):
    net = _Net(kind)
    with pytest.raises(ConversionError, match=r"cannot convert _Net") as info:
        convert_to_snn(net)
    assert expected in str(info.value)
    assert isinstance(net.block.act, QCFS)  # nothing was modified


def test_plain_block_converts():
    assert is_spiking(convert_to_snn(_Net("none")))


@pytest.mark.parametrize(
    "module, expected",
    [
        (nn.MaxPool2d(2), "layer '1' is MaxPool2d"),
        (layer.MaxPool2d(2, step_mode="m"), "layer '1' is MaxPool2d"),
        (nn.AdaptiveMaxPool2d(1), "layer '1' is AdaptiveMaxPool2d"),
        (nn.ReLU(), "layer '1' is ReLU"),
    ],
)
def test_max_pool_and_relu_modules_are_refused(module, expected):
    net = nn.Sequential(QCFS(), module)
    with pytest.raises(ConversionError) as info:
        convert_to_snn(net)
    assert expected in str(info.value)


def test_nothing_to_convert_is_refused():
    with pytest.raises(ConversionError, match="no QCFS activation"):
        convert_to_snn(nn.Sequential(nn.Linear(2, 2)))
    snn = convert_to_snn(create_model("demo", width=0.125))
    with pytest.raises(ConversionError, match="already spiking"):
        convert_to_snn(snn)


def test_shared_qcfs_is_refused():
    q = QCFS()
    with pytest.raises(ConversionError, match=r"used at several places \(0, 1\)"):
        convert_to_snn(nn.Sequential(q, q))


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = QCFS()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.act(x)
        return x


def test_untraceable_model_converts_with_a_clear_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snn = convert_to_snn(_Untraceable())
    assert is_spiking(snn)
    messages = [str(w.message) for w in caught]
    assert any("cannot be traced with torch.fx" in m and "NOT checked" in m for m in messages)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_triangle_surrogate_equals_spikingjelly_piecewise_quadratic(alpha):
    from spikingjelly.activation_based import surrogate

    from hsd.models.surrogate import Triangle

    grid = torch.linspace(-3, 3, 601)  # includes 0 and both ends of the triangle
    x = torch.cat([grid, torch.randn(1000) * 2]).requires_grad_(True)
    ours, theirs = Triangle(alpha=alpha), surrogate.PiecewiseQuadratic(alpha=alpha)
    out = ours(x)
    (out * torch.arange(len(x))).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    expected = theirs(x)
    (expected * torch.arange(len(x))).sum().backward()
    assert torch.equal(out, expected)
    torch.testing.assert_close(grad, x.grad, rtol=0, atol=1e-5)
