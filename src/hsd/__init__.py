"""hsd: low-latency event-camera recognition with Hybrid Step-wise Distillation SNNs.

Install it as ``pip install hsd-snn`` (the name ``hsd`` on the package index is another
project); import it as ``hsd``, run it as the ``hsd`` command.

Layers, lowest first (a layer never imports a higher one):
``events`` (numpy only) -> ``data`` (torch datasets) -> ``models`` -> ``train`` -> ``eval``
-> ``pipeline`` / ``cli``.

The names below are importable from ``hsd`` itself; each is loaded on first use (so ``import hsd``
does not import torch). Conventions shared by all of them: networks take time-first frames
``[T, B, P, H, W]`` (float event counts, P polarities) and return per-step logits ``[T, B, C]``;
call :func:`reset_states` (or use :func:`forward_sequence`) before every new sequence.

* Networks: :class:`QCFS` (the quantised clip-floor-shift activation of the ANN teacher),
  :func:`create_model`, :func:`register_model` (``hsd.models.register``), :func:`convert_to_snn`,
  :func:`check_convertible`, :func:`reset_states`.
* Training and scoring: :func:`forward_sequence`, :func:`skd_loss` (step-wise distillation at one
  T), :func:`anytime_skd_loss` (every prefix ``1..T``), :func:`prefix_accuracy`.
* Data: :func:`get_dataset`, :func:`register_dataset` (``hsd.data.register``),
  :func:`make_manifest`, :func:`load_frames`, :func:`make_loader` (``time_first=True`` yields
  ``[N, B, P, H, W]`` batches), :func:`read_events`.
* Recipes and stages: :func:`load_config`, :func:`prepare_data`, :func:`train_teacher`,
  :func:`distill`, :func:`evaluate_checkpoint`.
* Streaming: :class:`StreamClassifier`, :class:`ExitPolicy`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "QCFS": ("hsd.models", "QCFS"),
    "create_model": ("hsd.models", "create_model"),
    "register_model": ("hsd.models", "register"),
    "convert_to_snn": ("hsd.models", "convert_to_snn"),
    "check_convertible": ("hsd.models", "check_convertible"),
    "reset_states": ("hsd.models", "reset_states"),
    "forward_sequence": ("hsd.train.engine", "forward_sequence"),
    "prefix_accuracy": ("hsd.train.engine", "prefix_accuracy"),
    "skd_loss": ("hsd.train.losses", "skd_loss"),
    "anytime_skd_loss": ("hsd.train.losses", "anytime_skd_loss"),
    "get_dataset": ("hsd.data", "get_dataset"),
    "register_dataset": ("hsd.data", "register"),
    "make_manifest": ("hsd.data", "make_manifest"),
    "load_frames": ("hsd.data", "load_frames"),
    "make_loader": ("hsd.data", "make_loader"),
    "read_events": ("hsd.events", "read_events"),
    "load_config": ("hsd.config", "load_config"),
    "prepare_data": ("hsd.pipeline", "prepare_data"),
    "train_teacher": ("hsd.pipeline", "train_teacher"),
    "distill": ("hsd.pipeline", "distill"),
    "evaluate_checkpoint": ("hsd.pipeline", "evaluate_checkpoint"),
    "StreamClassifier": ("hsd.stream", "StreamClassifier"),
    "ExitPolicy": ("hsd.stream", "ExitPolicy"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hsd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
