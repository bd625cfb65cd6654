"""Networks: the QCFS activation, backbones, ANN -> SNN conversion, firing-rate monitor.

Models know nothing of datasets. Every model maps time-first ``[T, B, P, H, W]`` float input to
per-step logits ``[T, B, C]``; call :func:`reset_states` before every new sequence.
"""

from hsd.models.backbones import VGGSNN, DemoNet, FrameNet, create_model, list_models
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
    "reset_states",
]
