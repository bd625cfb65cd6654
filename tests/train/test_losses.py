"""Losses against numbers computed independently with numpy (and one by hand)."""

import math

import numpy as np
import pytest
import torch

from hsd.errors import ConfigError
from hsd.train.losses import (
    anytime_skd_loss,
    ce_loss,
    kd_mean_loss,
    kl_divergence,
    make_loss,
    skd_loss,
    tet_loss,
)

STUDENT = np.array(
    [
        [[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]],  # t = 0
        [[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]],  # t = 1
    ]
)  # [T=2, B=2, C=3]
TEACHER = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # [B, C]
LABELS = np.array([0, 1])


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _ce(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean())


def _kl_batchmean(student: np.ndarray, teacher: np.ndarray, tau: float) -> float:
    log_p, log_q = _log_softmax(teacher / tau), _log_softmax(student / tau)
    return float(tau**2 * (np.exp(log_p) * (log_p - log_q)).sum(-1).mean())


def _t(x: np.ndarray, **kw) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32, **kw)


LABELS_T = torch.tensor(LABELS)


def test_uniform_logits_by_hand():
    zeros = torch.zeros(3, 2, 4)
    parts = skd_loss(zeros, torch.zeros(2, 4), torch.tensor([0, 3]), tau=2.0)
    assert parts["ce"].item() == pytest.approx(math.log(4))
    assert parts["kd"].item() == pytest.approx(0.0, abs=1e-7)
    assert parts["loss"].item() == pytest.approx(math.log(4))


def test_ce_of_the_mean_output():
    parts = ce_loss(_t(STUDENT), LABELS_T)
    assert parts["loss"].item() == pytest.approx(_ce(STUDENT.mean(0), LABELS), rel=1e-6)
    assert parts.keys() == {"loss", "ce"}


@pytest.mark.parametrize("tau, alpha", [(2.0, 1.0), (10.0, 0.5), (1.0, 2.0)])
def test_skd_matches_numpy(tau, alpha):
    parts = skd_loss(_t(STUDENT), _t(TEACHER), LABELS_T, tau=tau, alpha=alpha)
    ce = _ce(STUDENT.mean(0), LABELS)
    kd = np.mean([_kl_batchmean(STUDENT[t], TEACHER, tau) for t in range(2)])
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert parts["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(ce + alpha * kd, rel=1e-5)


def test_kd_mean_matches_numpy():
    parts = kd_mean_loss(_t(STUDENT), _t(TEACHER), LABELS_T, tau=2.0, alpha=1.0)
    kd = _kl_batchmean(STUDENT.mean(0), TEACHER, 2.0)
    assert parts["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(_ce(STUDENT.mean(0), LABELS) + kd, rel=1e-5)
    # KD of the mean differs from the step-wise KD (the mean hides a deviating step)
    assert parts["kd"].item() < skd_loss(_t(STUDENT), _t(TEACHER), LABELS_T)["kd"].item()


@pytest.mark.parametrize("loss", [skd_loss, kd_mean_loss])
def test_reduction_mean_divides_the_kd_part_by_the_classes(loss):
    batchmean = loss(_t(STUDENT), _t(TEACHER), LABELS_T, reduction="batchmean")
    mean = loss(_t(STUDENT), _t(TEACHER), LABELS_T, reduction="mean")
    assert mean["kd"].item() == pytest.approx(batchmean["kd"].item() / 3, rel=1e-6)
    assert mean["ce"].item() == pytest.approx(batchmean["ce"].item())


def test_skd_with_one_step_equals_kd_mean():
    one = _t(STUDENT[1:])
    skd = skd_loss(one, _t(TEACHER), LABELS_T, tau=3.0, alpha=0.7)
    kd = kd_mean_loss(one, _t(TEACHER), LABELS_T, tau=3.0, alpha=0.7)
    for key in ("loss", "ce", "kd"):
        assert skd[key].item() == pytest.approx(kd[key].item(), rel=1e-6)


@pytest.mark.parametrize("name", ["skd", "kd_mean"])
def test_gradients_reach_the_student_only(name):
    student = _t(STUDENT, requires_grad=True)
    teacher = _t(TEACHER, requires_grad=True)
    make_loss(name, tau=2.0)(student, LABELS_T, teacher_logits=teacher)["loss"].backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_tet_matches_numpy():
    parts = tet_loss(_t(STUDENT), LABELS_T, lamb=0.1, means=1.0)
    per_step = np.mean([_ce(STUDENT[t], LABELS) for t in range(2)])
    mse = float(((STUDENT - 1.0) ** 2).mean())
    assert parts["ce"].item() == pytest.approx(per_step, rel=1e-6)
    assert parts["mse"].item() == pytest.approx(mse, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(0.9 * per_step + 0.1 * mse, rel=1e-6)
    plain = tet_loss(_t(STUDENT), LABELS_T, lamb=0.0)
    assert plain["loss"].item() == pytest.approx(per_step, rel=1e-6)


def test_make_loss_names_and_signature():
    s, z = _t(STUDENT), _t(TEACHER)
    assert make_loss("ce")(s, LABELS_T)["loss"].item() == pytest.approx(
        ce_loss(s, LABELS_T)["loss"].item()
    )
    assert make_loss("ce")(s, LABELS_T, teacher_logits=z).keys() == {"loss", "ce"}
    skd = make_loss("skd", tau=2.0, alpha=1.0, reduction="batchmean")(s, LABELS_T, teacher_logits=z)
    assert skd["loss"].item() == pytest.approx(skd_loss(s, z, LABELS_T)["loss"].item())
    tet = make_loss("tet", lamb=1e-3)(s, LABELS_T)
    assert tet["loss"].item() == pytest.approx(tet_loss(s, LABELS_T)["loss"].item())
    with pytest.raises(ValueError, match="'kd_mean' loss needs the teacher's logits"):
        make_loss("kd_mean")(s, LABELS_T)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("focal", {}, "unknown loss 'focal'"),
        ("ce", {"tau": 2.0}, "'ce' loss takes no options"),
        ("skd", {"beta": 1.0}, "no option"),
        ("skd", {"reduction": "sum"}, "batchmean"),
        ("kd_mean", {"tau": 0.0}, "tau must be > 0"),
        ("tet", {"tau": 1.0}, "no option"),
    ],
)
def test_make_loss_refuses_bad_configuration(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_loss(name, **kwargs)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"per-step logits \[T, B, C\], got \(2, 3\)"):
        ce_loss(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="do not match"):
        ce_loss(torch.zeros(1, 2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"teacher logits \(2, 4\) must be \[B, C\]"):
        skd_loss(torch.zeros(1, 2, 3), torch.zeros(2, 4), torch.tensor([0, 1]))


def test_anytime_loss_on_a_hand_computed_case():
    """T = 2, B = 1, C = 2: CE on the running means after 1 and 2 steps, SKD's KD term."""
    o = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])  # [T=2, B=1, C=2]
    z = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([0])
    tau, alpha = 1.0, 0.5
    # running means: [2, 0] after step 1, [1, 0] after step 2
    ce1 = -math.log(math.exp(2) / (math.exp(2) + 1))
    ce2 = -math.log(math.exp(1) / (math.exp(1) + 1))
    p = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]

    def kl(q):
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))

    q1 = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]
    q2 = [0.5, 0.5]
    kd = (kl(q1) + kl(q2)) / 2
    out = anytime_skd_loss(o, z, y, tau=tau, alpha=alpha)
    assert out["ce"].item() == pytest.approx((ce1 + ce2) / 2, rel=1e-5)
    assert out["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert out["loss"].item() == pytest.approx((ce1 + ce2) / 2 + alpha * kd, rel=1e-5)
    # harmonic prefix weights 1/k normalised: 2/3 on the first prefix, 1/3 on the second
    out = anytime_skd_loss(o, z, y, tau=tau, alpha=alpha, prefix_weights="harmonic")
    assert out["ce"].item() == pytest.approx(2 / 3 * ce1 + 1 / 3 * ce2, rel=1e-5)
    assert out["kd"].item() == pytest.approx(kd, rel=1e-5)
    with pytest.raises(ConfigError, match="prefix_weights must be 'uniform' or 'harmonic'"):
        make_loss("anytime", prefix_weights="linear")
    with pytest.raises(ConfigError, match="has no option"):
        make_loss("skd", prefix_weights="harmonic")


def test_anytime_equals_skd_at_one_step():
    torch.manual_seed(0)
    o, z, y = torch.randn(1, 4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    a = anytime_skd_loss(o, z, y, tau=2.0)
    b = skd_loss(o, z, y, tau=2.0)
    assert torch.allclose(a["loss"], b["loss"])


@pytest.mark.parametrize("name", ["skd", "anytime", "kd_mean"])
def test_per_step_targets_equal_to_one_target_give_the_same_loss(name):
    g = torch.Generator().manual_seed(3)
    student = torch.randn(4, 5, 7, generator=g)
    teacher = torch.randn(5, 7, generator=g)
    labels = torch.randint(0, 7, (5,), generator=g)
    fn = make_loss(name, tau=2.0, alpha=0.7)
    one = fn(student, labels, teacher_logits=teacher)
    per_step = fn(student, labels, teacher_logits=teacher.expand(4, 5, 7).clone())
    for key in one:
        torch.testing.assert_close(per_step[key], one[key])


def test_per_step_targets_distil_each_step_from_its_own_target():
    g = torch.Generator().manual_seed(4)
    student = torch.randn(3, 2, 5, generator=g)
    targets = torch.randn(3, 2, 5, generator=g)
    labels = torch.tensor([1, 4])
    got = skd_loss(student, targets, labels, tau=1.5, alpha=1.0)["kd"]
    want = sum(kl_divergence(student[t], targets[t], tau=1.5) for t in range(3)) / 3
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r"per step \[T, B, C\]"):
        skd_loss(student, targets[:2], labels)


def test_self_distillation_pulls_the_early_prefixes_towards_the_final_decision():
    g = torch.Generator().manual_seed(5)
    student = torch.randn(4, 3, 6, generator=g, requires_grad=True)
    teacher = torch.randn(3, 6, generator=g)
    labels = torch.tensor([0, 2, 5])
    off = anytime_skd_loss(student, teacher, labels)
    assert "self_kd" not in off
    on = anytime_skd_loss(student, teacher, labels, self_kd=0.5)
    running = student.detach().cumsum(0) / torch.arange(1, 5)[:, None, None]
    want = sum(kl_divergence(running[k], running[-1], tau=2.0) for k in range(3)) / 3
    torch.testing.assert_close(on["self_kd"], want)
    torch.testing.assert_close(on["loss"], off["loss"] + 0.5 * want)
    # the target is detached: the self term alone sends no gradient to the last step
    (grad,) = torch.autograd.grad(on["self_kd"], student)
    assert torch.all(grad[-1] == 0) and grad[0].abs().sum() > 0
    with pytest.raises(ConfigError, match="self_kd"):
        make_loss("skd", self_kd=0.5)
