"""Firing rates of the spiking layers, measured with forward hooks (for reports and energy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import TracebackType

import torch
from torch import nn

from hsd.models.convert import _SPIKING_NEURONS

__all__ = ["FiringRateMonitor", "LayerActivity"]


@dataclass
class LayerActivity:
    """What one neuron layer did while monitored.

    ``spikes``: total spikes; ``neuron_steps``: total neuron x time-step x sample slots;
    ``neurons``: neurons per sample (the layer's output size per step); ``samples``: sequences
    seen (summed over forward calls); ``steps``: time steps of the last forward call.
    """

    spikes: float = 0.0
    neuron_steps: float = 0.0
    neurons: int = 0
    samples: int = 0
    steps: int = 0

    @property
    def rate(self) -> float:
        """Mean spikes per neuron per time step (0 when nothing was recorded)."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0


class FiringRateMonitor:
    """Counts the spikes of every spiking neuron layer of ``model`` while attached.

    Use as a context manager (``with FiringRateMonitor(snn) as mon: ...``) or call
    :meth:`attach` / :meth:`detach`. Records survive detaching; :meth:`reset` clears them.
    A spike is any non-zero output (converted neurons emit ``lam * spike``). Layers are keyed by
    qualified module name. Multi-step layers see ``[T, B, ...]``; single-step ones ``[B, ...]``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers: dict[str, nn.Module] = {
            name: m for name, m in model.named_modules() if isinstance(m, _SPIKING_NEURONS)
        }
        if not self.layers:
            raise ValueError(
                f"{type(model).__name__} has no spiking neuron layer to monitor "
                "(convert it with hsd.models.convert_to_snn first)"
            )
        self.activity: dict[str, LayerActivity] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self.reset()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple[object, ...], output: torch.Tensor) -> None:
            out = output.detach()
            multi = getattr(module, "step_mode", "s") == "m"
            steps, samples = (out.shape[0], out.shape[1]) if multi else (1, out.shape[0])
            layer = self.activity[name]
            layer.spikes += float(torch.count_nonzero(out))
            layer.neuron_steps += float(out.numel())
            layer.neurons = math.prod(out.shape[2:] if multi else out.shape[1:])
            layer.samples += samples
            layer.steps = steps

        return record

    def attach(self) -> FiringRateMonitor:
        if not self._handles:
            self._handles = [
                module.register_forward_hook(self._hook(name))
                for name, module in self.layers.items()
            ]
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FiringRateMonitor:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.activity = {name: LayerActivity() for name in self.layers}

    def rates(self) -> dict[str, float]:
        """``{layer name: mean spikes per neuron per time step}`` for layers that ran."""
        return {n: a.rate for n, a in self.activity.items() if a.neuron_steps}

    def neurons(self) -> dict[str, int]:
        """``{layer name: neurons per sample}`` for layers that ran."""
        return {n: a.neurons for n, a in self.activity.items() if a.neuron_steps}
