"""Datasets by name: ``get_dataset("nmnist", root)``, or by import path.

A dataset class (a subclass of :class:`~hsd.data.base.EventDataset`) registers itself with
:func:`register`; its constructor takes the local root folder as first argument (``None`` only
for datasets that need no files, ``needs_root = False``) and keyword options.

``name`` may also be an import path ``"package.module:ClassName"`` (or ``"package.module.Class"``):
the module is imported and the class used as it is, so a dataset of your own works with every
command (``hsd teacher --set data.dataset=mypkg.data:MyDataset``) without registering it. An
import path runs the code of that module, like any ``import``; it is never read from a checkpoint
without your config naming it.

Where the root comes from, first found wins (:func:`default_root`): the ``root`` argument
(``--root`` / ``data.root``), the environment variable ``HSD_<NAME>_ROOT`` (the name
upper-cased, ``-`` and ``.`` as ``_``: ``HSD_NMNIST_ROOT``, ``HSD_CIFAR10DVS_ROOT``), then
``$HSD_DATA_DIR/<name>``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hsd.data.base import EventDataset
from hsd.errors import DatasetError
from hsd.imports import import_object, is_import_path

__all__ = [
    "default_root",
    "get_dataset",
    "list_datasets",
    "register",
    "resolve_dataset",
    "root_variable",
]

_REGISTRY: dict[str, type[EventDataset]] = {}
D = TypeVar("D", bound=type[EventDataset])


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make ``cls`` available as ``get_dataset(name, ...)`` and as
    ``data.dataset: <name>`` in a recipe. ``cls`` must subclass
    :class:`~hsd.data.base.EventDataset`; the name is stored as ``cls.name``.

    The module holding the class must be imported before the name is used; on the command line
    give the import path instead (``data.dataset=mypkg.data:MyDataset``) to skip registering."""

    def decorate(cls: D) -> D:
        if not (isinstance(cls, type) and issubclass(cls, EventDataset)):
            raise TypeError(f"register({name!r}): {cls!r} is not an EventDataset subclass")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"dataset name {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


_BUILTIN_MODULES = ("hsd.data.datasets", "hsd.data.digits", "hsd.data.folder")


def _load_builtin() -> None:
    """Import the modules whose classes register the built-in datasets."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def resolve_dataset(name: str) -> type[EventDataset]:
    """The dataset class for a registered ``name`` or an import path (see the module docstring).

    Raises :class:`DatasetError` for an unknown name, an import path that does not import, or an
    object that is not an :class:`EventDataset` subclass."""
    _load_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not is_import_path(name):
        raise DatasetError(
            f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}, or an import "
            "path 'package.module:DatasetClass'"
        )
    try:
        cls = import_object(name, "dataset")
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if not (isinstance(cls, type) and issubclass(cls, EventDataset)):
        raise DatasetError(f"dataset {name!r}: {cls!r} is not a subclass of hsd.data.EventDataset")
    if not cls.name:
        cls.name = name
    return cls


def root_variable(name: str) -> str:
    """The environment variable of dataset ``name``'s root: ``HSD_NMNIST_ROOT`` for nmnist."""
    return "HSD_" + re.sub(r"[^A-Za-z0-9]", "_", name.rsplit(":", 1)[-1]).upper() + "_ROOT"


def default_root(name: str) -> Path | None:
    """The root of dataset ``name`` from the environment, or None: ``$HSD_<NAME>_ROOT``, else
    ``$HSD_DATA_DIR/<name>`` (see the module docstring)."""
    value = os.environ.get(root_variable(name))
    if value:
        return Path(value).expanduser()
    folder = os.environ.get("HSD_DATA_DIR")
    if folder:
        return Path(folder).expanduser() / name
    return None


def get_dataset(name: str, root: str | Path | None = None, **opts: Any) -> EventDataset:
    """Open dataset ``name`` (registered name or import path) at the local folder ``root``
    (``None``: from the environment, :func:`default_root`); options are dataset specific.

    Raises :class:`DatasetError` for an unknown name, a missing root or a wrong layout.
    """
    cls = resolve_dataset(name)
    path = None if root is None else Path(root).expanduser()
    if path is None and cls.needs_root:
        path = default_root(cls.name)
        if path is None:
            raise DatasetError(
                f"{cls.name}: no dataset folder given; pass --root DIR, set data.root, or set "
                f"the environment variable {root_variable(cls.name)} (or HSD_DATA_DIR, the "
                f"folder holding {cls.name}/)"
                + (f"\nexpected layout:\n{cls.layout.strip(chr(10))}" if cls.layout else "")
            )
    try:
        inspect.signature(cls).bind(path, **opts)
    except TypeError as exc:
        raise DatasetError(f"{cls.name}: invalid options {sorted(opts)}: {exc}") from None
    return cls(path, **opts)
