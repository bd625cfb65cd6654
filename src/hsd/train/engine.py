"""Training and evaluation loops shared by every stage (teacher, distillation, baselines).

Conventions:

* networks take time-first input ``[T, B, P, H, W]`` and return per-step logits ``[T, B, C]``;
* :func:`forward_sequence` resets neuron state before every new sequence (the one place that
  does), so two identical calls give identical outputs;
* the prediction after T steps is the argmax of the mean of the first T per-step logits. Because a
  spiking network's output at step t depends only on frames 0..t (and the ANN teacher's on frame t
  alone), one forward pass over N frames yields the prediction at *every* prefix T <= N:
  :func:`predict_step_logits` + :func:`prefix_accuracy`;
* the teacher, when present, is frozen, in eval mode, under ``no_grad``;
* a non-finite loss stops the run with :class:`TrainingError` naming the epoch and step;
* under ``torchrun`` the trained network arrives wrapped in ``DistributedDataParallel`` (which
  averages gradients over processes) and epoch metrics are summed over processes.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hsd.config import OptimConfig
from hsd.errors import HSDError
from hsd.models import clamp_thresholds, reset_states
from hsd.progress import bars_enabled
from hsd.train.distributed import all_reduce_sums
from hsd.train.feed import FrameFeed

LossFn = Callable[..., dict[str, torch.Tensor]]

__all__ = [
    "TrainingError",
    "autocast",
    "build_optimizer",
    "build_scheduler",
    "forward_sequence",
    "new_tally",
    "predict_step_logits",
    "prefix_accuracy",
    "resolve_device",
    "set_deterministic",
    "train_one_epoch",
]


class TrainingError(HSDError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when one is usable, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HSDError(f"device '{name}' requested but CUDA is not available")
    return device


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-iteration schedule: cosine from ``lr`` to 0 over all iterations, or constant."""
    total = max(1, cfg.epochs * max(1, steps_per_epoch))
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda it: 0.5 * (1.0 + math.cos(math.pi * min(it, total) / total))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)


def forward_sequence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reset neuron state, then run ``x [T, B, P, H, W]`` -> logits ``[T, B, C]``."""
    reset_states(model)
    return model(x)


def set_deterministic(enabled: bool) -> None:
    """Turn PyTorch's deterministic algorithms on (bit-exact reruns and resumes) or off.

    Also pins cuDNN to deterministic kernels and sets ``CUBLAS_WORKSPACE_CONFIG``, which
    deterministic cuBLAS needs (it takes effect when CUDA has not yet been used).
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def autocast(device: torch.device, amp: str = "none") -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: ``amp`` "bf16" or "fp16" on CUDA, else a no-op.

    Raises :class:`~hsd.errors.HSDError` for mixed precision on another device than CUDA.
    """
    if amp == "none":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise HSDError(f"amp={amp} needs a CUDA device; this run is on {device} (set amp=none)")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type="cuda", dtype=dtype)


def new_tally() -> dict[str, Any]:
    """Running totals of an epoch: ``sums`` of loss parts x samples, ``correct``, ``seen``."""
    return {"sums": {}, "correct": 0, "seen": 0}


def train_one_epoch(
    model: nn.Module,
    feed: FrameFeed,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    device: torch.device,
    epoch: int,
    input_key: str = "student",
    teacher: nn.Module | None = None,
    grad_clip: float = 0.0,
    progress: bool = True,
    desc: str = "train",
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    start_step: int = 0,
    tally: dict[str, Any] | None = None,
    amp: str = "none",
    scaler: torch.amp.GradScaler | None = None,
    teacher_target: str = "stream",
) -> dict[str, float]:
    """One pass over ``feed``; returns mean loss parts and training accuracy.

    ``model`` may be wrapped in ``DistributedDataParallel``; the returned metrics are then summed
    over all processes (every rank gets the same numbers). ``input_key``: which batch tensor the
    trained network sees ("student" or "teacher", the latter for training the ANN teacher on all
    N frames). ``teacher``: frozen network whose mean logits over the batch's N frames are passed
    to ``loss_fn`` as ``teacher_logits``. ``on_step(step, tally)`` is called after every
    optimiser step with the batches done so far and the running totals (mid-epoch checkpoints);
    a resumed epoch passes them back as ``start_step`` and ``tally``. ``amp``: mixed precision
    on CUDA ("bf16" or "fp16"; fp16 needs ``scaler``). ``teacher_target``: "stream" passes the
    teacher's mean logits over all N frames ``[B, C]``; "prefix" its running means over the
    first t + 1 frames for each of the student's T steps ``[T, B, C]`` (prefix protocol).
    """
    if teacher_target not in ("stream", "prefix"):
        raise ValueError(f"teacher_target must be 'stream' or 'prefix', got {teacher_target!r}")
    model.train()
    if teacher is not None:
        teacher.eval()
    tally = copy.deepcopy(tally) if tally is not None else new_tally()
    sums: dict[str, float] = tally["sums"]
    bar = tqdm(feed, desc=desc, leave=False, disable=not bars_enabled(progress), dynamic_ncols=True)
    step = start_step
    for batch in bar:
        batch = batch.to(device)
        x = getattr(batch, input_key)
        teacher_logits = None
        with autocast(device, amp):
            if teacher is not None:
                with torch.no_grad():
                    per_frame = forward_sequence(teacher, batch.teacher)
                    teacher_logits = per_frame.mean(0)
            logits = forward_sequence(model, x)
            if teacher_logits is not None and teacher_target == "prefix":
                steps = logits.shape[0]
                counts = torch.arange(1, steps + 1, device=per_frame.device, dtype=per_frame.dtype)
                teacher_logits = per_frame[:steps].cumsum(0) / counts[:, None, None]
            parts = loss_fn(logits, batch.labels, teacher_logits=teacher_logits)
        loss = parts["loss"]
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{desc}: loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                "stopping (the last good checkpoint is kept)"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        clamp_thresholds(model)
        scheduler.step()
        step += 1
        b = batch.labels.shape[0]
        tally["seen"] += b
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * b
        tally["correct"] += int((logits.detach().mean(0).argmax(1) == batch.labels).sum())
        seen = tally["seen"]
        bar.set_postfix(loss=f"{sums['loss'] / seen:.3f}", acc=f"{tally['correct'] / seen:.3f}")
        if on_step is not None:
            on_step(step, tally)
    totals = all_reduce_sums(
        {
            **{f"sum_{k}": v for k, v in sums.items()},
            "correct": tally["correct"],
            "seen": tally["seen"],
        },
        device,
    )
    seen = max(totals["seen"], 1.0)
    out = {key: totals[f"sum_{key}"] / seen for key in sums}
    out["acc"] = totals["correct"] / seen
    out["samples"] = float(totals["seen"])
    return out


@torch.no_grad()
def predict_step_logits(
    model: nn.Module,
    feed: FrameFeed,
    *,
    device: torch.device,
    input_key: str = "teacher",
    progress: bool = False,
    desc: str = "eval",
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Per-step logits of every sample in ``feed``.

    Returns ``(logits [S, T, C] float32 on CPU, labels [S], index [S])`` in feed order.
    """
    model.eval()
    outs, labels, index = [], [], []
    for batch in tqdm(
        feed, desc=desc, leave=False, disable=not bars_enabled(progress), dynamic_ncols=True
    ):
        batch = batch.to(device)
        logits = forward_sequence(model, getattr(batch, input_key))
        outs.append(logits.float().transpose(0, 1).cpu())
        labels.append(batch.labels.cpu())
        index.append(batch.index)
    return torch.cat(outs), torch.cat(labels), np.concatenate(index)


def prefix_accuracy(step_logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Accuracy after each number of steps: ``acc[t-1]`` uses the mean of steps ``1..t``.

    ``step_logits``: ``[S, T, C]``; ``labels``: ``[S]``. Returns T floats in [0, 1].
    """
    cumulative = step_logits.cumsum(1)  # argmax of the running sum == argmax of the mean
    predictions = cumulative.argmax(2)  # [S, T]
    return (predictions == labels[:, None]).float().mean(0).tolist()
