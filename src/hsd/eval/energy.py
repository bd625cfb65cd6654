"""Operation counts and the energy estimate of SNN papers, per layer.

Convention (Horowitz 2014, 45 nm, 32-bit float; used by TET, HSD and most SNN papers):

* a **MAC** (multiply-accumulate) costs ``E_MAC = 4.6 pJ``, an **AC** (accumulate) ``0.9 pJ``;
* the ANN does every MAC of every weight layer on every frame: ``T * MACs`` for T frames;
* in the SNN the **first weight layer** sees the input frames (event counts, not spikes), so it
  multiplies: ``T * MACs_1`` MACs;
* every **later weight layer is fed by spikes**: a presynaptic spike only adds the weight (the
  neuron's output scale ``lam`` folds into the next weights), so it does
  ``SOPs_l = T * rate_src * MACs_l`` accumulates, where ``rate_src`` is the firing rate
  (spikes per neuron per step, :class:`hsd.models.FiringRateMonitor`) of the spiking layer
  that feeds it, possibly through average pooling or flattening.

``MACs_l`` is the dense count for one frame and one sample, as ``thop`` / SpikingJelly's
``MACCounter`` count it: convolution ``C_out * H_out * W_out * C_in / groups * kH * kW``
(zero padding included), linear ``in_features * out_features``; biases, BatchNorm (an affine map
folded into the weights at inference), pooling and the neurons' own updates are not counted.
``rate * MACs`` is the expected event-driven count when the spikes are spread evenly over the
input map; an exact event-driven counter finds fewer at the padded borders (a few percent for 3x3
convolutions on maps of tens of pixels).

The feeding spiking layer is the activation (QCFS or spiking neuron) that ran last before the
weight layer: this assumes a feed-forward chain such as :class:`hsd.models.FrameNet` (no
residual branches). QCFS and the neuron that replaces it share the module name, so counts taken on
the ANN teacher apply to its converted SNN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hsd.models import QCFS, reset_states
from hsd.models.convert import _SPIKING_NEURONS

__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "EnergyEstimate",
    "LayerCost",
    "LayerEnergy",
    "count_macs",
    "energy_estimate",
    "synaptic_ops",
]

E_MAC_PJ = 4.6
E_AC_PJ = 0.9


@dataclass(frozen=True)
class LayerCost:
    """One weight layer: qualified module ``name``, ``kind`` ("conv" or "linear"), dense
    ``macs`` per frame per sample, and ``source``: the name of the activation layer feeding it
    (``None`` for a layer fed by the input frames)."""

    name: str
    kind: str
    macs: int
    source: str | None


@dataclass(frozen=True)
class LayerEnergy:
    """Per-sample cost of one weight layer over ``steps`` time steps: ``op`` is "MAC" (input
    layer) or "AC" (spike driven); ``ops`` the number of such operations; ``rate`` the
    presynaptic firing rate used (1.0 for the input layer); ``energy_pj`` in picojoules."""

    name: str
    op: str
    ops: float
    rate: float
    energy_pj: float


@dataclass(frozen=True)
class EnergyEstimate:
    """Per-sample SNN estimate over ``steps`` steps beside the ANN on the same ``steps`` frames.

    ``mac_ops`` / ``sops``: SNN multiply-accumulates (input layer) and synaptic accumulates;
    ``energy_pj``: SNN total; ``ann_macs`` / ``ann_energy_pj``: the ANN's ``steps * sum(MACs)``
    at 4.6 pJ each (or the ``e_mac_pj`` given).
    """

    steps: int
    layers: list[LayerEnergy]
    mac_ops: float
    sops: float
    energy_pj: float
    ann_macs: float
    ann_energy_pj: float

    @property
    def ratio(self) -> float:
        """SNN energy / ANN energy (below 1: the SNN is estimated cheaper)."""
        return self.energy_pj / self.ann_energy_pj if self.ann_energy_pj else math.nan


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> list[LayerCost]:
    """Dense MACs per frame and per sample of every ``nn.Conv2d`` / ``nn.Linear`` of ``model``,
    in execution order, with the activation layer that feeds each.

    ``input_shape``: ``(P, H, W)`` of one frame; ``model`` takes time-first ``[T, B, P, H, W]``
    float input (it is run once on zeros of shape ``[1, 1, P, H, W]`` in eval mode without
    gradients; its training mode and neuron states are restored / reset afterwards). Works on the
    ANN and on its converted SNN alike (same names, same counts).
    """
    costs: list[LayerCost] = []
    last_activation: list[str | None] = [None]
    handles = []

    def weight_hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            per_sample = out.numel() // out.shape[0]
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_in = module.in_channels // module.groups * kh * kw
                kind = "conv"
            else:
                fan_in = module.in_features
                kind = "linear"
            costs.append(LayerCost(name, kind, per_sample * fan_in, last_activation[0]))

        return record

    def activation_hook(name: str):
        def record(module: nn.Module, inputs: tuple[object, ...], out: object) -> None:
            last_activation[0] = name

        return record

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(weight_hook(name)))
        elif isinstance(module, (QCFS, *_SPIKING_NEURONS)):
            handles.append(module.register_forward_hook(activation_hook(name)))
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    try:
        model.eval()
        reset_states(model)
        with torch.no_grad():
            model(torch.zeros(1, 1, *input_shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        reset_states(model)
    if not costs:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to count")
    return costs


def _rate_of(layer: LayerCost, rates: Mapping[str, float]) -> float:
    if layer.source not in rates:
        raise ValueError(
            f"no firing rate for '{layer.source}', the spiking layer that feeds '{layer.name}' "
            f"(rates given for: {', '.join(sorted(rates)) or 'none'})"
        )
    rate = float(rates[layer.source])
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"firing rate of '{layer.source}' must be in [0, 1], got {rate}")
    return rate


def synaptic_ops(
    layers: Sequence[LayerCost], rates: Mapping[str, float], steps: int
) -> dict[str, float]:
    """``{layer name: SOPs per sample}`` of the spike-driven layers over ``steps`` time steps:
    ``steps * rate[source] * macs``. The input layer (``source`` None) is not listed: it does
    MACs. ``rates``: spikes per neuron per step, as :meth:`FiringRateMonitor.rates` returns."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return {
        layer.name: steps * _rate_of(layer, rates) * layer.macs
        for layer in layers
        if layer.source is not None
    }


def energy_estimate(
    layers: Sequence[LayerCost],
    rates: Mapping[str, float],
    steps: int,
    *,
    e_mac_pj: float = E_MAC_PJ,
    e_ac_pj: float = E_AC_PJ,
) -> EnergyEstimate:
    """Per-sample energy of the SNN over ``steps`` steps (input layer as MACs at ``e_mac_pj``,
    spike-driven layers as SOPs at ``e_ac_pj``) and of the ANN on ``steps`` frames (every layer
    as MACs at ``e_mac_pj``). ``layers`` from :func:`count_macs`, ``rates`` as in
    :func:`synaptic_ops`."""
    sops = synaptic_ops(layers, rates, steps)
    rows = []
    for layer in layers:
        if layer.source is None:
            ops = float(steps * layer.macs)
            rows.append(LayerEnergy(layer.name, "MAC", ops, 1.0, ops * e_mac_pj))
        else:
            ops = sops[layer.name]
            rate = _rate_of(layer, rates)
            rows.append(LayerEnergy(layer.name, "AC", ops, rate, ops * e_ac_pj))
    mac_ops = sum(r.ops for r in rows if r.op == "MAC")
    ann_macs = float(steps * sum(layer.macs for layer in layers))
    return EnergyEstimate(
        steps=steps,
        layers=rows,
        mac_ops=mac_ops,
        sops=sum(sops.values()),
        energy_pj=sum(r.energy_pj for r in rows),
        ann_macs=ann_macs,
        ann_energy_pj=ann_macs * e_mac_pj,
    )
