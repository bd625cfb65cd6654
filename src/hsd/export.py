"""Hand a trained network to deployment runtimes: ONNX (one step, explicit state), NIR (refused).

ONNX: :func:`export_onnx` writes one time step of the network as a stateless graph

    (frame [B, P, H, W], membrane_0, ..., membrane_{K-1}) -> (logits [B, C], membrane_0_next, ...)

with the membrane of every :class:`~hsd.models.QCFSNeuron` (in module order) as an explicit
input and output, so any ONNX runtime can run the spiking network step by step: start from
:func:`onnx_initial_state` (every membrane at its threshold / 2, as after a reset), feed each
output membrane back as the next step's input, and decide on the mean of the step logits. An ANN
checkpoint exports with no membranes (one frame -> its logits). The batch size ``B`` is fixed at
export time (the time-folding containers bake it into reshapes). The graph carries metadata:
``hsd.classes``, ``hsd.membrane_layers``, ``hsd.initial_membranes`` (threshold / 2 per layer),
``hsd.data`` (how events become frames) and ``hsd.stage``. Needs the optional ``onnx`` package
(``pip install 'hsd-snn[export]'``, which also brings ``onnxruntime`` for running it).

NIR (decision: refused). Checked against NIR 1.0.8's definitions (``nir.IF``, ``nir.LIF``,
``nir.CubaLIF``, ``nir.Threshold``, ``nir.I``): its spiking neurons fire when ``v > v_threshold``,
then *set* ``v`` to ``v_reset`` (hard reset, the overshoot is lost), and no node carries an
initial membrane potential (runtimes start at zero). hsd's neurons (SpikingJelly ``IFNode``,
``v_reset=None``) fire when ``v >= threshold``, *subtract* the threshold (soft reset: the overshoot
carries over, which is what makes the mean output approach the QCFS activation) and start at
threshold / 2 after every reset. No affine rewrite bridges the gap: the output scale
``threshold * spike`` could be folded into the next layer's weights, but neither a shift of
``v`` nor a rescaling turns a hard reset into a soft one or gives a non-zero start; a soft reset
built by hand from ``I`` + ``Threshold`` + a negative feedback edge would rely on how each
runtime delays a cycle (NIR leaves that, and the time step of its continuous-time equations, to
the runtime) and still could not start at threshold / 2. A QCFS ANN has no NIR primitive at all
(quantised clip-floor-shift). A NIR graph would therefore silently compute something else, so
:func:`export_nir` refuses with the exact mismatches (:func:`nir_obstacles`) instead of writing
one, and hsd has no ``nir`` extra.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from hsd.errors import HSDError, install_hint
from hsd.models import QCFS, QCFSNeuron, reset_states
from hsd.pipeline import model_from_checkpoint
from hsd.train.checkpoint import load_checkpoint

__all__ = [
    "ExportError",
    "OnnxExport",
    "OnnxStep",
    "export_nir",
    "export_onnx",
    "nir_obstacles",
    "onnx_initial_state",
]


ONNX_OPSETS = (13, 20)  # opsets the TorchScript exporter writes for these networks


class ExportError(HSDError, ValueError):
    """A network cannot be exported to the requested format, or a needed package is missing."""


def _neurons(model: nn.Module) -> list[tuple[str, QCFSNeuron]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, QCFSNeuron)]


class OnnxStep(nn.Module):
    """One step of a time-first network with explicit neuron state.

    ``forward(frame [B, P, H, W], *membranes) -> (logits [B, C], *new_membranes)``; membranes
    follow :attr:`layers` order. Holds its own eval-mode copy of ``model``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        named = _neurons(self.model)
        self.layers = [name for name, _ in named]
        self._neurons = [neuron for _, neuron in named]

    def forward(self, frame: torch.Tensor, *membranes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(membranes) != len(self._neurons):
            raise ValueError(f"expected {len(self._neurons)} membranes, got {len(membranes)}")
        for neuron, v in zip(self._neurons, membranes, strict=True):
            neuron.v = v
        logits = self.model(frame[None])[0]
        return (logits, *(neuron.v for neuron in self._neurons))

    @torch.no_grad()
    def initial_state(self, frame_shape: tuple[int, ...], batch_size: int) -> list[torch.Tensor]:
        """Membranes after a reset (threshold / 2), shapes found by a dry run on zeros."""
        reset_states(self.model)
        self.model(torch.zeros(1, batch_size, *frame_shape))
        state = [
            torch.full_like(neuron.v, 0.5 * float(neuron.v_threshold)) for neuron in self._neurons
        ]
        reset_states(self.model)
        return state


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote: the file, input and output names, membrane shapes."""

    path: Path
    inputs: list[str]
    outputs: list[str]
    membrane_shapes: list[tuple[int, ...]]
    layers: list[str]


def export_onnx(
    checkpoint: str | Path | dict[str, Any],
    out: str | Path,
    *,
    batch_size: int = 1,
    opset: int = 17,
) -> OnnxExport:
    """Write one step of the checkpoint's network to ``out`` (see the module docstring).

    Uses the TorchScript-based exporter (``dynamo=False``), which needs only ``onnx``.
    """
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs the 'onnx' package: " + install_hint("export")
        ) from None
    if batch_size < 1:
        raise ExportError(f"batch_size must be >= 1, got {batch_size}")
    if not ONNX_OPSETS[0] <= opset <= ONNX_OPSETS[1]:
        raise ExportError(
            f"opset {opset}: these networks export with ONNX opsets {ONNX_OPSETS[0]} to "
            f"{ONNX_OPSETS[1]} (aten::unflatten needs 13)"
        )
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    step = OnnxStep(model_from_checkpoint(ckpt))
    kwargs = ckpt["model"]["kwargs"]
    side = int(kwargs["input_size"])
    frame_shape = (int(kwargs["in_channels"]), side, side)
    state = step.initial_state(frame_shape, batch_size)
    names = [f"membrane_{i}" for i in range(len(state))]
    inputs = ["frame", *names]
    outputs = ["logits", *(f"{name}_next" for name in names)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            torch.onnx.export(
                step,
                (torch.zeros(batch_size, *frame_shape), *state),
                str(out),
                input_names=inputs,
                output_names=outputs,
                opset_version=opset,
                dynamo=False,
            )
        except OSError:
            raise
        except Exception as exc:  # the exporter's own errors (unsupported operator, opset)
            where = ckpt.get("path", "<checkpoint>")
            raise ExportError(
                f"{where}: ONNX export at opset {opset} failed ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]})"
            ) from None
    graph = onnx.load(str(out))
    metadata = {
        "hsd.classes": [str(c) for c in ckpt["classes"]],
        "hsd.membrane_layers": step.layers,
        "hsd.initial_membranes": [float(v.flatten()[0]) for v in state],
        "hsd.data": (ckpt.get("config") or {}).get("data", {}),
        "hsd.stage": ckpt["stage"],
    }
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(graph, str(out))
    return OnnxExport(
        path=out,
        inputs=inputs,
        outputs=outputs,
        membrane_shapes=[tuple(v.shape) for v in state],
        layers=step.layers,
    )


def onnx_initial_state(session: Any) -> dict[str, np.ndarray]:
    """Initial membranes for an ``onnxruntime.InferenceSession`` of an exported step:
    ``{"membrane_i": float32 array}``, each filled with its layer's threshold / 2."""
    meta = session.get_modelmeta().custom_metadata_map
    values = json.loads(meta["hsd.initial_membranes"])
    membranes = [i for i in session.get_inputs() if i.name.startswith("membrane_")]
    return {
        i.name: np.full(i.shape, value, dtype=np.float32)
        for i, value in zip(membranes, values, strict=True)
    }


def nir_obstacles(model: nn.Module) -> list[str]:
    """Why ``model`` cannot be written as a NIR graph that computes what it computes: one line per
    mismatch with NIR 1.0's neuron definitions (see the module docstring)."""
    problems = []
    neurons = _neurons(model)
    if neurons:
        where = f"{len(neurons)} integrate-and-fire layers ({neurons[0][0]}, ...)"
        problems.append(
            f"{where} use a soft reset (v <- v - threshold after a spike, the overshoot kept), "
            "while NIR's IF/LIF neurons reset to a fixed v_reset (hard reset)"
        )
        problems.append(
            "their membranes start at threshold / 2 after a reset; NIR nodes carry no initial "
            "membrane potential (runtimes start at 0)"
        )
        problems.append("they fire when v >= threshold; NIR's neurons fire when v > v_threshold")
    if any(isinstance(m, QCFS) for m in model.modules()):
        problems.append("QCFS activations (quantised clip-floor-shift) have no NIR primitive")
    return problems


def export_nir(checkpoint: str | Path | dict[str, Any], out: str | Path) -> NoReturn:
    """Refuse with :class:`ExportError` naming every obstacle (:func:`nir_obstacles`): every hsd
    network has QCFS activations or neurons converted from them, none of which NIR expresses, and
    a graph that computes something else would be worse than none. ``out`` is never written."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    problems = nir_obstacles(model_from_checkpoint(ckpt))
    where = ckpt.get("path", "checkpoint")
    raise ExportError(
        f"{where}: cannot be exported to NIR ({out} not written): "
        + "; ".join(problems or ["the network holds no layer NIR can express"])
        + ". Use ONNX export (hsd export onnx), which keeps the exact neuron model."
    )
