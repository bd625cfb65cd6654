"""Networks: the QCFS activation, backbones, ANN -> SNN conversion, firing-rate monitor.

Models know nothing of datasets. Every model maps time-first ``[T, B, P, H, W]`` float input to
per-step logits ``[T, B, C]``; call :func:`reset_states` before every new sequence.
Your own network: a factory registered with :func:`register` (or named by import path in
``model.name``), see :mod:`hsd.models.registry`.
"""

from hsd.models.backbones import VGGSNN, DemoNet, FrameNet
from hsd.models.convert import (
    QCFSNeuron,
    check_convertible,
    clamp_thresholds,
    convert_to_snn,
    is_spiking,
    reset_states,
)
from hsd.models.monitor import FiringRateMonitor, LayerActivity
from hsd.models.qcfs import QCFS
from hsd.models.registry import create_model, list_models, register, resolve_model

__all__ = [
    "QCFS",
    "VGGSNN",
    "DemoNet",
    "FiringRateMonitor",
    "FrameNet",
    "LayerActivity",
    "QCFSNeuron",
    "check_convertible",
    "clamp_thresholds",
    "convert_to_snn",
    "create_model",
    "is_spiking",
    "list_models",
    "register",
    "reset_states",
    "resolve_model",
]
