"""Checkpoints: the one place that decides their format, how they are written and how they load.

Format (``hsd-checkpoint/1``), a dict of plain containers and tensors only, so it loads with
``torch.load(..., weights_only=True)`` and a file can never execute code when read:

* ``format``: the string above,
* ``model``: ``{"name": str, "kwargs": dict, "spiking": bool}`` (enough to rebuild the network),
* ``state_dict``: the network's weights,
* ``classes``: class names, ``num_classes`` is ``len(classes)``,
* ``stage``: "teacher", "converted", "distill" or "baseline",
* ``epoch``: epochs completed, ``metrics``: last validation metrics,
* ``config``: the resolved run configuration (``hsd.config.config_to_dict``),
* optional ``optimizer`` / ``scheduler`` state for resuming, ``rng`` states.

Writing is atomic: a temporary file in the same folder, flushed and fsynced, then renamed over the
target, so a crash never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from hsd.errors import CheckpointError

FORMAT = "hsd-checkpoint/1"

__all__ = ["FORMAT", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` (``format`` is added) atomically to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **payload}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check its format.

    Raises :class:`~hsd.errors.CheckpointError` naming the file when it is missing, truncated or
    corrupted, carries pickled code (refused, never executed), or is not an hsd checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise CheckpointError(f"{path}: run directory holds no checkpoints/best.pt or last.pt")
        path = found
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: the file contains objects other than tensors and plain "
            f"containers (possibly executable code), which hsd never unpickles ({exc})"
        ) from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an hsd checkpoint (expected format {FORMAT})")
    for key in ("model", "state_dict", "classes", "stage"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint lacks the '{key}' entry")
    payload["path"] = str(path)
    return payload
