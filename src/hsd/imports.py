"""Objects named by an import path (``"package.module:name"``): own networks and datasets.

The one place that turns such a string into an object, for ``model.name`` and ``data.dataset``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_object", "is_import_path"]


def is_import_path(name: str) -> bool:
    """True for ``"pkg.mod:attr"`` or a dotted ``"pkg.mod.attr"`` (built-in names have neither)."""
    return ":" in name or "." in name


def import_object(path: str, what: str) -> Any:
    """The object ``"pkg.mod:attr"`` (or ``"pkg.mod.attr"``) names, imported (which runs the
    module's code, like any ``import``). :class:`ValueError` says what failed (not an import path,
    module not found, no such attribute); ``what`` names the setting in the message."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{what} {path!r}: not an import path like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {path!r}: cannot import {module_name!r} ({exc})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what} {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj
