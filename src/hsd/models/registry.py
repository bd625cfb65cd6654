"""Networks by name: the built-in backbones and your own.

A *model factory* is any callable taking the keyword arguments every built-in factory takes and
returning an ``nn.Module`` that maps time-first frames ``[T, B, in_channels, input_size,
input_size]`` (float, event counts) to per-step logits ``[T, B, num_classes]``:

* ``in_channels`` (int): polarity channels P of a frame (2 for every built-in dataset);
* ``num_classes`` (int): outputs C (the dataset's classes);
* ``input_size`` (int): height = width of a frame in pixels (``data.size``, else the sensor's);
* ``width`` (float): channel multiplier (``model.width``);
* ``levels`` (int): QCFS quantisation levels L (``model.levels``);
* ``init_threshold`` (float): initial QCFS clip lambda (``model.init_threshold``).

The factory should accept and may ignore ``width``/``levels``/``init_threshold``. Its activations
must be :class:`~hsd.models.qcfs.QCFS` modules that see the whole time-first tensor (apply the
stateless layers frame by frame, e.g. inside SpikingJelly's ``layer.SeqToANNContainer``), so that
:func:`~hsd.models.convert.convert_to_snn` can give their neurons membrane state across T (it
probes that and refuses a network whose activations see another layout).

``model.name`` in a recipe (``--set model.name=...``) is a registered name (:func:`register`,
:func:`list_models`) or an import path ``"package.module:make_net"``; checkpoints store that
string and the keyword arguments, so ``hsd evaluate``, ``hsd stream`` and ``hsd export onnx``
rebuild the same network (the module must be importable where they run).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from hsd.errors import ConfigError
from hsd.imports import import_object, is_import_path

__all__ = ["create_model", "list_models", "register", "resolve_model"]

F = TypeVar("F", bound=Callable[..., nn.Module])
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_BUILTIN_MODULES = ("hsd.models.backbones",)


def register(name: str) -> Callable[[F], F]:
    """Decorator: make a model factory (a function or an ``nn.Module`` class, see the module
    docstring for its keyword arguments) available as ``model.name: <name>``.

    ``@hsd.models.register("tiny")`` over ``def make_tiny(*, in_channels, num_classes,
    input_size, width=1.0, levels=8, init_threshold=2.0) -> nn.Module``. The module holding it
    must be imported before the name is used; on the command line give its import path instead
    (``--set model.name=mypkg.nets:make_tiny``) and no registration is needed."""
    if not name or is_import_path(name):
        raise ValueError(f"model name {name!r}: use a plain name without ':' or '.'")

    def decorate(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"register({name!r}): {factory!r} is not callable")
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_models() -> list[str]:
    """Registered model names, sorted (the built-ins: ``["demo", "vggsnn"]``)."""
    _load_builtin()
    return sorted(_REGISTRY)


def resolve_model(name: str) -> Callable[..., nn.Module]:
    """The factory of a registered ``name`` or of an import path ``"pkg.mod:factory"``;
    :class:`ConfigError` naming ``model.name`` otherwise."""
    _load_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not is_import_path(name):
        raise ConfigError(
            f"model.name: unknown model '{name}' (known: {', '.join(list_models())}, or an "
            "import path 'package.module:make_net')"
        )
    try:
        factory = import_object(name, "model.name")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not callable(factory):
        raise ConfigError(f"model.name {name!r}: {factory!r} is not callable")
    return factory


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the network ``name`` (registered name or import path) with ``kwargs``.

    The network is tagged with ``hsd_input_shape = (in_channels, input_size, input_size)`` when
    those are given, which :func:`~hsd.models.convert.convert_to_snn` uses to probe it.
    Raises :class:`ConfigError` when the factory rejects the arguments or returns no module."""
    factory = resolve_model(name)
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"model.name {name!r}: the factory does not take the keyword arguments "
            f"{', '.join(sorted(kwargs))} ({exc})"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model.name {name!r}: the factory returned {type(model).__name__}, not an nn.Module"
        )
    if all(k in kwargs for k in ("in_channels", "input_size")):
        size = int(kwargs["input_size"])  # type: ignore[call-overload]
        model.hsd_input_shape = (int(kwargs["in_channels"]), size, size)  # type: ignore[call-overload]
    return model
