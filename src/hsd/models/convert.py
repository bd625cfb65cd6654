"""Hybrid conversion: a QCFS ANN becomes a spiking network that starts from its knowledge.

Every :class:`~hsd.models.qcfs.QCFS` with clip ``lam`` becomes a :class:`QCFSNeuron`, a
multi-step integrate-and-fire neuron (a SpikingJelly 2.0 ``neuron.IFNode``) with

* threshold ``lam`` (the QCFS's learned value, kept under the same parameter name ``lam`` so the
  ANN's state dict loads into the SNN and checkpoints keep the learned thresholds);
* soft reset: ``v <- v - lam * spike`` (``v_reset=None``);
* membrane ``v = lam / 2`` at every reset;
* output ``lam * spike``.

For constant input ``z`` over T = L steps the mean output equals the QCFS output exactly (Bu et
al., ICLR 2022); for other T it approaches it.

Surrogate gradient: the spike is ``heaviside(u)`` with ``u = (v - lam) / lam`` (the membrane
normalised by the threshold) and SpikingJelly's ``PiecewiseQuadratic(alpha=1)`` (as
:class:`hsd.models.surrogate.Triangle`, the same gradient with a leaner backward), whose derivative
is the triangle ``max(0, 1 - |u|)`` (half-width 1, peak 1). Hence
``d(lam * spike)/dv = max(0, 1 - |v - lam| / lam)``: peak 1 at the threshold like the QCFS slope
``da/dz = 1``, whatever the layer's ``lam``.

Decisions:

* Conversion works on a deep copy; the teacher is never modified.
* Thresholds stay trainable during fine-tuning by default (``learn_threshold=True``: ``lam`` is an
  ``nn.Parameter``, gradients reach it through the output scale, the spike condition, the reset
  and ``v0 = lam / 2``); with ``learn_threshold=False`` it is a buffer (still saved, never trained).
  The threshold in use is ``max(lam, 1e-3)`` and :func:`clamp_thresholds` projects the parameters
  back to >= 1e-3 after an optimiser step, as for QCFS.
* BatchNorm stays (in eval mode it is a per-frame affine map, the same in both networks).
* Max pooling, ``nn.ReLU``/``nn.ReLU6`` modules and functional ReLU / max-pooling calls in a
  ``forward`` (found by tracing the model with ``torch.fx``) are refused with
  :class:`~hsd.errors.ConversionError`. A model that ``torch.fx`` cannot trace is converted with a
  warning saying that functional calls were not checked.
* Time first: a spiking neuron carries its membrane along the first axis of its input, so every
  activation must see the time-first tensor ``[T, B, ...]``. A network that folds time into the
  batch around its activations (``x.flatten(0, 1)`` before them) would make the neurons treat
  ``T * B`` as time and leak membrane between samples. :func:`convert_to_snn` therefore probes the
  converted network (:func:`check_time_first`) on a random input ``[3, 2, P, H, W]`` (in float64,
  eval mode, on a copy) and refuses it, naming the layer, when a neuron's input is not
  ``[3, 2, ...]`` or when a sample's output depends on the other sample of the batch. The input
  shape ``(P, H, W)`` is ``input_shape=``, else the ``hsd_input_shape`` that
  :func:`~hsd.models.registry.create_model` puts on the networks it builds, else the model's
  ``in_channels`` / ``input_size`` attributes; without any of them the probe is skipped with an
  :class:`~hsd.errors.HSDWarning`.
"""

from __future__ import annotations

import copy
import warnings

import torch
from spikingjelly.activation_based import functional, neuron
from torch import fx, nn

from hsd.errors import ConversionError, HSDWarning
from hsd.models.qcfs import MIN_THRESHOLD, QCFS, positive_threshold
from hsd.models.surrogate import Triangle

__all__ = [
    "QCFSNeuron",
    "check_convertible",
    "check_time_first",
    "clamp_thresholds",
    "convert_to_snn",
    "is_spiking",
    "reset_states",
]

_REFUSED_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)
_REFUSED_FUNCTIONS = frozenset(
    {"relu", "relu_", "relu6"}
    | {f"{p}max_pool{d}d" for p in ("", "_", "adaptive_") for d in (1, 2, 3)}
    | {f"max_pool{d}d_with_indices" for d in (1, 2, 3)}
    | {f"adaptive_max_pool{d}d_with_indices" for d in (1, 2, 3)}
)
_REFUSED_METHODS = frozenset({"relu", "relu_"})
_SPIKING_NEURONS = (neuron.BaseNode, neuron.SimpleBaseNode)


class QCFSNeuron(neuron.IFNode):
    """Integrate-and-fire neuron converted from a QCFS layer (see the module docstring).

    Input and output ``[T, B, ...]`` float (step mode ``"m"``); output is ``lam * spike``.
    ``v_threshold`` reads the threshold in use (``max(lam, 1e-3)``, a scalar tensor); assigning
    it sets ``lam``.
    """

    def __init__(self, threshold: float, *, learn_threshold: bool = True) -> None:
        super().__init__(
            v_threshold=float(threshold),
            v_reset=None,
            surrogate_function=Triangle(alpha=1.0),
            detach_reset=False,
            step_mode="m",
        )
        if not learn_threshold:
            lam = self._parameters.pop("lam")
            self.register_buffer("lam", lam.detach())
        self.learn_threshold = learn_threshold

    @property
    def v_threshold(self) -> torch.Tensor:
        return positive_threshold(self.lam)

    @v_threshold.setter
    def v_threshold(self, value: float) -> None:
        if "lam" in self._parameters or "lam" in self._buffers:
            with torch.no_grad():
                self.lam.fill_(float(value))
        else:
            self.lam = nn.Parameter(torch.tensor(float(value)))

    def materialize_states(
        self,
        inputs: tuple[torch.Tensor, ...],
        states: tuple[object, ...],
        step_mode: str,
    ) -> tuple[object, ...]:
        """A fresh membrane (after a reset, or for a new input shape) starts at ``lam / 2``."""
        x = inputs[0][0] if step_mode == "m" else inputs[0]
        v = states[0]
        if not isinstance(v, torch.Tensor) or v.shape != x.shape:
            v = torch.zeros_like(x) + 0.5 * self.v_threshold.to(x.dtype)
        elif v.dtype != x.dtype or v.device != x.device:
            v = v.to(dtype=x.dtype, device=x.device)
        return (v, *states[1:])

    def _update(
        self, v: torch.Tensor, x: torch.Tensor, lam: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: integrate ``x``, fire ``lam * spike``, subtract it; -> (output, new v)."""
        v = v + x
        out = self.surrogate_function((v - lam) / lam) * lam
        return out, v - out

    def single_step_functional_forward(
        self,
        inputs: tuple[torch.Tensor, ...],
        states: tuple[object, ...],
        **kwargs: object,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        lam = self.v_threshold.to(inputs[0].dtype)
        out, v = self._update(states[0], inputs[0], lam)
        return (out,), (v, *states[1:])

    def multi_step_functional_forward(
        self,
        inputs: tuple[torch.Tensor, ...],
        states: tuple[object, ...],
        **kwargs: object,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        # The threshold (and its straight-through graph) is computed once per sequence, and the
        # steps come from ``unbind``, whose backward stacks the step gradients once (indexing
        # ``x[t]`` would allocate and zero-fill a full ``[T, B, ...]`` gradient for every step).
        lam = self.v_threshold.to(inputs[0].dtype)
        v = states[0]
        outputs = []
        for x in inputs[0].unbind(0):
            out, v = self._update(v, x, lam)
            outputs.append(out)
        return (torch.stack(outputs),), (v, *states[1:])

    def extra_repr(self) -> str:
        return (
            f"threshold={float(self.v_threshold.detach()):.4g}, "
            f"learn_threshold={self.learn_threshold}, soft reset, v0=threshold/2, "
            "output=threshold*spike, step_mode=m"
        )


class _LeafTracer(fx.Tracer):
    """Traces user ``forward`` code; torch, SpikingJelly and QCFS modules stay opaque."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (QCFS, *_SPIKING_NEURONS)) or type(m).__module__.startswith(
            "spikingjelly"
        ):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _where(node: fx.Node, model: nn.Module) -> str:
    """``in the forward of 'name' (Class)`` for the module whose forward made the call."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return f"in the forward of '<root>' ({type(model).__name__})"
    name, (_, cls) = next(reversed(stack.items()))
    return f"in the forward of '{name}' ({getattr(cls, '__name__', cls)})"


def _functional_problems(model: nn.Module) -> list[str]:
    try:
        graph = _LeafTracer().trace(model)
    except Exception as exc:  # any tracing failure only weakens the check, never blocks it
        warnings.warn(
            f"{type(model).__name__}.forward cannot be traced with torch.fx "
            f"({type(exc).__name__}: {exc}); functional ReLU / max-pooling calls in forward "
            "code were NOT checked before conversion",
            stacklevel=4,
        )
        return []
    problems = []
    for node in graph.nodes:
        if node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            if name in _REFUSED_FUNCTIONS:
                problems.append(f"functional call {name}() {_where(node, model)}")
        elif node.op == "call_method" and node.target in _REFUSED_METHODS:
            problems.append(f"tensor method .{node.target}() {_where(node, model)}")
    return problems


def check_convertible(model: nn.Module, *, input_shape: tuple[int, int, int] | None = None) -> None:
    """Raise :class:`ConversionError` naming every obstacle to conversion: max pooling or ReLU
    modules, functional ReLU / max-pooling calls, no QCFS at all, a QCFS used at two places,
    and (when the frame shape ``(P, H, W)`` is known: ``input_shape``, else as in
    :func:`convert_to_snn`) activations that do not see time as the first axis of
    ``[T, B, ...]`` (:func:`check_time_first`, run on a spiking copy; ``model`` is untouched)."""
    _check_static(model)
    shape = input_shape if input_shape is not None else _input_shape(model)
    if shape is not None:
        check_time_first(_spiking_copy(model, True), tuple(int(s) for s in shape))


def _check_static(model: nn.Module) -> None:
    problems = [
        f"layer '{name or '<root>'}' is {type(module).__name__}"
        for name, module in model.named_modules()
        if isinstance(module, _REFUSED_MODULES)
    ]
    places: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, QCFS):
            places.setdefault(id(module), []).append(name)
    problems += [
        f"one QCFS module is used at several places ({', '.join(names)}); each needs its own "
        "neuron state"
        for names in places.values()
        if len(names) > 1
    ]
    if not places:
        what = "it is already spiking" if is_spiking(model) else "no QCFS activation"
        problems.append(f"the network has nothing to convert ({what})")
    problems += _functional_problems(model)
    if problems:
        raise ConversionError(
            f"cannot convert {type(model).__name__} to a spiking network: "
            + "; ".join(problems)
            + ". Only QCFS activations and average pooling convert."
        )


def convert_to_snn(
    model: nn.Module,
    *,
    learn_threshold: bool = True,
    input_shape: tuple[int, int, int] | None = None,
) -> nn.Module:
    """A spiking copy of ``model`` with every QCFS replaced by a :class:`QCFSNeuron` whose
    threshold is that QCFS's ``max(lam, 1e-3)``. ``model`` itself is left untouched.

    ``model`` maps ``[T, B, P, H, W]`` to ``[T, B, C]``; ``input_shape`` is ``(P, H, W)`` of one
    frame (default: ``model.hsd_input_shape``, set by :func:`hsd.models.create_model`), used to
    probe that every neuron sees time first (:func:`check_time_first`). Raises
    :class:`~hsd.errors.ConversionError` naming every obstacle (:func:`check_convertible`) or
    the layer that does not see time first."""
    _check_static(model)
    snn = _spiking_copy(model, learn_threshold)
    shape = input_shape if input_shape is not None else _input_shape(model)
    if shape is None:
        warnings.warn(
            f"{type(model).__name__}: no input_shape to probe with, so it was NOT checked that "
            "its activations see time as the first axis (pass input_shape=(P, H, W))",
            HSDWarning,
            stacklevel=2,
        )
    else:
        check_time_first(snn, tuple(int(s) for s in shape))
    return snn


_PROBE_T, _PROBE_B = 3, 2


def _spiking_copy(model: nn.Module, learn_threshold: bool) -> nn.Module:
    """A deep copy of ``model`` with each QCFS replaced by its :class:`QCFSNeuron`."""
    snn = copy.deepcopy(model)
    targets = [(name, m) for name, m in snn.named_modules() if isinstance(m, QCFS)]
    for name, qcfs in targets:
        parent_name, _, child_name = name.rpartition(".")
        parent = snn.get_submodule(parent_name)
        spiking = QCFSNeuron(float(qcfs.threshold.detach()), learn_threshold=learn_threshold)
        spiking.to(qcfs.lam.device).train(qcfs.training)
        setattr(parent, child_name, spiking)
    return snn


def _input_shape(model: nn.Module) -> tuple[int, int, int] | None:
    """``(P, H, W)`` from ``hsd_input_shape``, else from ``in_channels`` and ``input_size``
    attributes (the built-in backbones have both), else None."""
    shape = getattr(model, "hsd_input_shape", None)
    if shape is not None:
        return tuple(shape)
    channels, size = getattr(model, "in_channels", None), getattr(model, "input_size", None)
    if isinstance(channels, int) and isinstance(size, int):
        return channels, size, size
    return None


def check_time_first(snn: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Refuse a spiking network whose neurons do not see time as the first axis.

    Runs a copy of ``snn`` (eval mode, float64, CPU) on a random non-negative input
    ``[3, 2, *input_shape]`` and on its first sample alone ``[3, 1, *input_shape]``. Raises
    :class:`~hsd.errors.ConversionError` naming the first neuron whose input is not
    ``[3, 2, ...]`` (time folded into the batch, or batch first), or, when the shapes are right,
    the first layer whose output for sample 0 changes with the other sample (membrane leaking
    between samples), or the network output when that is where they differ."""
    probe = copy.deepcopy(snn).to(device="cpu", dtype=torch.float64).eval()
    neurons = [(n, m) for n, m in probe.named_modules() if isinstance(m, _SPIKING_NEURONS)]
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((_PROBE_T, _PROBE_B, *input_shape), generator=generator, dtype=torch.float64)
    x = x * 2.0

    def run(inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, ...]]]:
        seen: dict[str, tuple[torch.Tensor, ...]] = {}

        def record(name: str):
            def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
                seen.setdefault(name, (args[0], out))  # the first call of each neuron

            return hook

        hooks = [m.register_forward_hook(record(name)) for name, m in neurons]
        try:
            reset_states(probe)
            with torch.no_grad():
                out = probe(inputs)
        except Exception as exc:
            raise ConversionError(
                f"cannot probe {type(snn).__name__} with time-first input "
                f"{list(inputs.shape)} ([T, B, P, H, W]): {type(exc).__name__}: {exc}"
            ) from None
        finally:
            for h in hooks:
                h.remove()
            reset_states(probe)
        return out, seen

    out, seen = run(x)
    for name, _ in neurons:
        if name not in seen:
            continue
        shape = tuple(seen[name][0].shape)
        if shape[:2] != (_PROBE_T, _PROBE_B):
            raise ConversionError(
                f"cannot convert {type(snn).__name__}: layer '{name}' sees input of shape "
                f"{list(shape)} for time-first input [T={_PROBE_T}, B={_PROBE_B}, ...]; its first "
                "axis is not time (time folded into the batch?), so its spiking neurons would "
                "carry membrane state across samples. Keep the activations on the [T, B, ...] "
                "tensor and apply the other layers frame by frame (e.g. inside SpikingJelly's "
                "layer.SeqToANNContainer)"
            )
    alone, seen_alone = run(x[:, :1])
    for name, _ in neurons:
        if name in seen and name in seen_alone:
            if not torch.allclose(seen[name][1][:, :1], seen_alone[name][1], atol=1e-9):
                raise ConversionError(
                    f"cannot convert {type(snn).__name__}: the output of layer '{name}' for one "
                    "sample changes with the other samples of the batch; its neurons must see "
                    "[T, B, ...] with each sample on its own position of axis 1"
                )
    if not (
        isinstance(out, torch.Tensor)
        and out.dim() >= 2
        and tuple(out.shape[:2]) == (_PROBE_T, _PROBE_B)
    ):
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConversionError(
            f"cannot convert {type(snn).__name__}: for input [T={_PROBE_T}, B={_PROBE_B}, ...] "
            f"it returns {got}; it must return per-step logits [T, B, C]"
        )
    if not torch.allclose(out[:, :1], alone, atol=1e-9):
        raise ConversionError(
            f"cannot convert {type(snn).__name__}: its output for one sample changes with the "
            "other samples of the batch (outside its spiking neurons)"
        )


def is_spiking(model: nn.Module) -> bool:
    """True when ``model`` holds at least one SpikingJelly spiking neuron."""
    return any(isinstance(m, _SPIKING_NEURONS) for m in model.modules())


def reset_states(model: nn.Module) -> None:
    """Reset every stateful module before a new sequence (neurons: membrane to ``lam / 2``).

    Wraps ``spikingjelly.activation_based.functional.reset_net``; a no-op for an ANN.
    """
    functional.reset_net(model)


@torch.no_grad()
def clamp_thresholds(model: nn.Module) -> None:
    """Project every QCFS clip and trainable neuron threshold back to >= 1e-3 in place.

    Call after each optimiser step (the engine does) so the raw parameters never drift below the
    floor that the forward pass applies anyway.
    """
    for module in model.modules():
        if isinstance(module, (QCFS, QCFSNeuron)):
            module.lam.clamp_(min=MIN_THRESHOLD)
