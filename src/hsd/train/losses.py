"""Training objectives on per-step logits ``[T, B, C]``; each returns ``{"loss": total, ...parts}``
(scalar tensors). Logits are promoted to float32; labels are int64 class indices ``[B]``.

* :func:`skd_loss` - step-wise knowledge distillation (HSD)::

      L = CE(mean_t o_t, y) + alpha * (1/T) * sum_t tau^2 * KL(softmax(z/tau) || softmax(o_t/tau))

  with ``z`` the frozen teacher's logits ``[B, C]`` (its mean over all N frames), or per step
  ``z_t`` ``[T, B, C]`` (its mean over the first t + 1 frames: ``distill.teacher_target =
  "prefix"``). Parts ``ce``, ``kd`` (the second term without ``alpha``).
* :func:`kd_mean_loss` - the same with the KL on the mean output only (classic KD).
* :func:`tet_loss` - TET (Deng et al., ICLR 2022), as in its reference code::

      L = (1 - lamb) * (1/T) * sum_t CE(o_t, y) + lamb * mean((o - means)^2)

  (the MSE is over every element of ``[T, B, C]``). Parts ``ce`` (per-step term), ``mse``.
* :func:`ce_loss` - cross-entropy of the mean output. Part ``ce``.
* :func:`anytime_skd_loss` - step-wise distillation for a network that must be good at *every*
  prefix (early exit, streaming): the cross-entropy is taken on the running mean after each
  number of steps k = 1..T and averaged, the KD term is SKD's::

      L = sum_k w_k * CE(mean_{t<=k} o_t, y)
          + alpha * (1/T) * sum_t tau^2 * KL(softmax(z/tau) || softmax(o_t/tau))
          [+ self_kd * (1/(T-1)) * sum_{k<T} tau^2 * KL(softmax(m_T/tau) || softmax(m_k/tau))]

  (``m_k`` the running mean after k steps, ``m_T`` detached: the optional self-distillation
  term pulls the early prefixes towards the network's own full-length decision) with prefix
  weights ``w_k`` summing to 1: ``"uniform"`` (1/T each, the default) or
  ``"harmonic"`` (proportional to 1/k: the short prefixes, which see the fewest events and are
  the hardest, weigh most). Train it at T = N (``distill.steps`` = ``data.frames``) so that
  every prefix is covered.

KL reduction: ``"batchmean"`` (default) sums over classes and averages over the batch, the true
KL. ``"mean"`` reproduces the authors' ``nn.KLDivLoss()`` default, which also divides by the
number of classes C; offered only to reproduce their numbers.

The teacher's logits are always detached: gradients reach the student only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from hsd.errors import ConfigError

__all__ = [
    "LOSSES",
    "LossFn",
    "anytime_skd_loss",
    "ce_loss",
    "kd_mean_loss",
    "kl_divergence",
    "make_loss",
    "prefix_weight_vector",
    "skd_loss",
    "tet_loss",
]

LossFn = Callable[..., dict[str, torch.Tensor]]
LOSSES = ("anytime", "ce", "kd_mean", "skd", "tet")
_REDUCTIONS = ("batchmean", "mean")


def _check(student_logits: torch.Tensor, labels: torch.Tensor) -> None:
    if student_logits.dim() != 3:
        raise ValueError(f"expected per-step logits [T, B, C], got {tuple(student_logits.shape)}")
    if labels.shape != student_logits.shape[1:2]:
        raise ValueError(
            f"labels {tuple(labels.shape)} do not match the batch of logits "
            f"{tuple(student_logits.shape)}"
        )


def _check_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if teacher_logits.shape not in (student_logits.shape[1:], student_logits.shape):
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} must be [B, C] = "
            f"{tuple(student_logits.shape[1:])} or per step [T, B, C] = "
            f"{tuple(student_logits.shape)}"
        )


def _target(teacher_logits: torch.Tensor, t: int) -> torch.Tensor:
    """The teacher's ``[B, C]`` target of step ``t``: the one target, or row ``t`` of per-step
    targets ``[T, B, C]``."""
    return teacher_logits if teacher_logits.dim() == 2 else teacher_logits[t]


def kl_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    tau: float,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """``tau^2 * KL(softmax(teacher/tau) || softmax(student/tau))`` for ``[B, C]`` logits."""
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"KL reduction must be 'batchmean' or 'mean', got '{reduction}'")
    if not tau > 0:
        raise ConfigError(f"distillation temperature tau must be > 0, got {tau}")
    log_q = F.log_softmax(student_logits.float() / tau, dim=-1)
    log_p = F.log_softmax(teacher_logits.detach().float() / tau, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1).mean()
    if reduction == "mean":  # nn.KLDivLoss()'s elementwise mean: also divided by C
        kl = kl / student_logits.shape[-1]
    return tau**2 * kl


def ce_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Cross-entropy of the mean over T of ``student_logits [T, B, C]``."""
    _check(student_logits, labels)
    ce = F.cross_entropy(student_logits.float().mean(0), labels)
    return {"loss": ce, "ce": ce}


def skd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau: float = 2.0,
    alpha: float = 1.0,
    reduction: str = "batchmean",
) -> dict[str, torch.Tensor]:
    """Step-wise distillation (HSD): every step's logits are distilled from the teacher.

    ``student_logits``: ``[T, B, C]`` (per step, time first); ``teacher_logits``: ``[B, C]``
    (the ANN teacher's logits on the N-frame input), or ``[T, B, C]``, one target per step
    (``distill.teacher_target = "prefix"``); ``labels``: ``[B]`` class indices.
    Loss = CE(mean over T of the student's logits, labels) + ``alpha`` * mean over t of
    KL(softmax(teacher / ``tau``) || softmax(student_t / ``tau``)) (``tau`` default 2.0, the
    temperature; ``alpha`` default 1.0). Returns ``{"loss", "ce", "kd"}`` scalar tensors."""
    _check(student_logits, labels)
    _check_teacher(student_logits, teacher_logits)
    ce = F.cross_entropy(student_logits.float().mean(0), labels)
    steps = student_logits.shape[0]
    kd = torch.stack(
        [
            kl_divergence(
                student_logits[t], _target(teacher_logits, t), tau=tau, reduction=reduction
            )
            for t in range(steps)
        ]
    ).mean()
    return {"loss": ce + alpha * kd, "ce": ce, "kd": kd}


def anytime_skd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau: float = 2.0,
    alpha: float = 1.0,
    reduction: str = "batchmean",
    prefix_weights: str = "uniform",
    self_kd: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Step-wise distillation with the cross-entropy on every prefix's running mean, the
    prefixes weighted ``prefix_weights`` ("uniform" or "harmonic", see the module docstring),
    so the network is good after any number of steps ``1..T``.

    Shapes and the KD term as in :func:`skd_loss`: ``student_logits [T, B, C]``,
    ``teacher_logits [B, C]``, ``labels [B]``. Returns ``{"loss", "ce", "kd"}``."""
    parts = skd_loss(
        student_logits, teacher_logits, labels, tau=tau, alpha=alpha, reduction=reduction
    )
    logits = student_logits.float()
    steps, batch = logits.shape[:2]
    counts = torch.arange(1, steps + 1, device=logits.device, dtype=logits.dtype)
    running = logits.cumsum(0) / counts[:, None, None]
    per_prefix = F.cross_entropy(
        running.reshape(steps * batch, -1), labels.repeat(steps), reduction="none"
    ).reshape(steps, batch)
    weights = prefix_weight_vector(prefix_weights, steps).to(logits.device)
    ce = (weights * per_prefix.mean(1)).sum()
    out = {"loss": ce + alpha * parts["kd"], "ce": ce, "kd": parts["kd"]}
    if self_kd > 0 and steps > 1:
        final = running[-1].detach()
        own = torch.stack(
            [
                kl_divergence(running[k], final, tau=tau, reduction=reduction)
                for k in range(steps - 1)
            ]
        ).mean()
        out["loss"] = out["loss"] + self_kd * own
        out["self_kd"] = own
    return out


def prefix_weight_vector(kind: str, steps: int) -> torch.Tensor:
    """Weights ``[steps]`` of the prefixes k = 1..steps, summing to 1: "uniform" or "harmonic"
    (proportional to 1/k)."""
    if kind == "uniform":
        return torch.full((steps,), 1.0 / steps)
    if kind == "harmonic":
        inverse = 1.0 / torch.arange(1, steps + 1, dtype=torch.float32)
        return inverse / inverse.sum()
    raise ConfigError(f"prefix_weights must be 'uniform' or 'harmonic', got {kind!r}")


def kd_mean_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau: float = 2.0,
    alpha: float = 1.0,
    reduction: str = "batchmean",
) -> dict[str, torch.Tensor]:
    """Distillation of the mean output over T only."""
    _check(student_logits, labels)
    _check_teacher(student_logits, teacher_logits)
    mean = student_logits.float().mean(0)
    ce = F.cross_entropy(mean, labels)
    target = teacher_logits if teacher_logits.dim() == 2 else teacher_logits[-1]
    kd = kl_divergence(mean, target, tau=tau, reduction=reduction)
    return {"loss": ce + alpha * kd, "ce": ce, "kd": kd}


def tet_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    lamb: float = 1e-3,
    means: float = 1.0,
) -> dict[str, torch.Tensor]:
    """TET: per-step cross-entropy averaged over T, weighted ``1 - lamb``, plus ``lamb`` x the
    MSE of all outputs to the constant ``means``."""
    _check(student_logits, labels)
    logits = student_logits.float()
    steps, batch = logits.shape[:2]
    per_step = F.cross_entropy(logits.reshape(steps * batch, -1), labels.repeat(steps))
    mse = F.mse_loss(logits, torch.full_like(logits, means))
    return {"loss": (1 - lamb) * per_step + lamb * mse, "ce": per_step, "mse": mse}


def make_loss(name: str, **kwargs: Any) -> LossFn:
    """A callable ``(student_logits, labels, teacher_logits=None) -> dict`` by name.

    ``"ce"`` (no options), ``"skd"``, ``"kd_mean"`` and ``"anytime"`` (``tau``, ``alpha``,
    ``reduction``, and for "anytime" ``prefix_weights``; need ``teacher_logits``), ``"tet"``
    (``lamb``, ``means``). Options are checked here, once.
    """
    if name == "ce":
        if kwargs:
            raise ConfigError(f"the 'ce' loss takes no options, got {sorted(kwargs)}")

        def ce(student_logits, labels, teacher_logits=None):
            return ce_loss(student_logits, labels)

        return ce
    if name in ("skd", "kd_mean", "anytime"):
        unknown = (
            set(kwargs)
            - {"tau", "alpha", "reduction"}
            - ({"prefix_weights", "self_kd"} if name == "anytime" else set())
        )
        if unknown:
            raise ConfigError(f"the '{name}' loss has no option(s) {sorted(unknown)}")
        if kwargs.get("reduction", "batchmean") not in _REDUCTIONS:
            raise ConfigError(f"KL reduction must be 'batchmean' or 'mean': {kwargs['reduction']}")
        prefix_weight_vector(kwargs.get("prefix_weights", "uniform"), 1)  # refuse unknown kinds
        if not kwargs.get("tau", 2.0) > 0:
            raise ConfigError(f"distillation temperature tau must be > 0, got {kwargs['tau']}")
        fn = {"skd": skd_loss, "kd_mean": kd_mean_loss, "anytime": anytime_skd_loss}[name]

        def distill(student_logits, labels, teacher_logits=None):
            if teacher_logits is None:
                raise ValueError(f"the '{name}' loss needs the teacher's logits")
            return fn(student_logits, teacher_logits, labels, **kwargs)

        return distill
    if name == "tet":
        unknown = set(kwargs) - {"lamb", "means"}
        if unknown:
            raise ConfigError(f"the 'tet' loss has no option(s) {sorted(unknown)}")

        def tet(student_logits, labels, teacher_logits=None):
            return tet_loss(student_logits, labels, **kwargs)

        return tet
    raise ConfigError(f"unknown loss '{name}' (known: {', '.join(LOSSES)})")
