"""Datasets by name: ``get_dataset("nmnist", root)``.

A dataset class registers itself with :func:`register`; its constructor takes the local root
(``None`` only for datasets that need no files) and keyword options.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hsd.data.base import EventDataset
from hsd.errors import DatasetError

__all__ = ["get_dataset", "list_datasets", "register"]

_REGISTRY: dict[str, type[EventDataset]] = {}
D = TypeVar("D", bound=type[EventDataset])


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make ``cls`` available as ``get_dataset(name, ...)``."""

    def decorate(cls: D) -> D:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"dataset name {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


_BUILTIN_MODULES = ("hsd.data.datasets", "hsd.data.digits")


def _load_builtin() -> None:
    """Import the modules whose classes register the built-in datasets."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_dataset(name: str, root: str | Path | None = None, **opts: Any) -> EventDataset:
    """Open dataset ``name`` at the local folder ``root`` (options are dataset specific).

    Raises :class:`DatasetError` for an unknown name, a missing root or a wrong layout.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    cls = _REGISTRY[name]
    path = None if root is None else Path(root).expanduser()
    try:
        inspect.signature(cls).bind(path, **opts)
    except TypeError as exc:
        raise DatasetError(f"{name}: invalid options {sorted(opts)}: {exc}") from None
    return cls(path, **opts)
