"""Checkpoints: the one place that decides their format, how they are written and how they load.

Format (``hsd-checkpoint/2``), a dict of plain containers and tensors only, so it loads with
``torch.load(..., weights_only=True)`` and a file can never execute code when read:

* ``format``: the string above,
* ``model``: ``{"name": str, "kwargs": dict, "spiking": bool}`` (enough to rebuild the network;
  ``kwargs`` holds at least ``in_channels``, ``num_classes`` and ``input_size``),
* ``state_dict``: the network's weights (all finite),
* ``classes``: class names, ``num_classes`` is ``len(classes)``,
* ``stage``: "teacher", "converted", "distill-<loss>" or "baseline-<loss>",
* ``epoch``: epochs completed, ``metrics``: last validation metrics,
* ``config``: the resolved run configuration (``hsd.config.config_to_dict``),
* optional ``optimizer`` / ``scheduler`` state for resuming, ``rng`` states,
* ``digest``: ``{"sha256": hex}`` of everything above (every tensor's dtype, shape and bytes, every
  key and value, in order), written by :func:`save_checkpoint` and checked by
  :func:`load_checkpoint`: a flipped byte anywhere in a weight is reported, naming the file.

A ``hsd-checkpoint/2`` file must carry its digest: one that lacks it (a flipped byte in the key
``digest``, say) is refused. Checkpoints of the older format ``hsd-checkpoint/1`` (written
before digests existed) load with an :class:`~hsd.errors.HSDWarning` saying their contents
cannot be verified (decision: refusing them would strand every existing run; all the other
checks still apply to them, and a digest they do carry is checked).

Writing is atomic: a temporary file in the same folder, flushed and fsynced, then renamed over the
target, so a crash never leaves a half-written checkpoint under the real name; temporary files a
killed process left behind are removed by :func:`clean_temporary`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from hsd.errors import CheckpointError, ConfigError, HSDWarning
from hsd.runtime import admit

FORMAT = "hsd-checkpoint/2"
OLD_FORMATS = ("hsd-checkpoint/1",)  # before digests: loaded with a warning
STAGE_PATTERN = r"teacher|converted|distill-[a-z_]+|baseline-[a-z_]+"
_REQUIRED = ("model", "state_dict", "classes", "stage", "config")

__all__ = [
    "FORMAT",
    "STAGE_PATTERN",
    "clean_temporary",
    "digest",
    "load_checkpoint",
    "require",
    "save_checkpoint",
]


def _feed(h: Any, obj: Any) -> None:
    """Feed ``obj`` to the hash ``h`` canonically (type tags, lengths, tensor dtype/shape/bytes)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, list | tuple):
        h.update(b"L%d" % len(obj) if isinstance(obj, list) else b"U%d" % len(obj))
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d:" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"B%d:" % len(obj) + obj)
    elif isinstance(obj, bool) or obj is None:
        h.update(f"C{obj}".encode())
    elif isinstance(obj, int):
        h.update(f"I{obj};".encode())
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    else:
        h.update(f"O{type(obj).__name__}:{obj!r};".encode())


def digest(payload: dict[str, Any]) -> str:
    """SHA-256 of ``payload`` without its ``digest`` and ``path`` entries (hex)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k not in ("digest", "path")})
    return h.hexdigest()


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` (``format`` and ``digest`` are added) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        **{k: v for k, v in payload.items() if k not in ("digest", "path")},
    }
    payload["digest"] = {"sha256": digest(payload)}
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


def clean_temporary(folder: str | Path) -> list[Path]:
    """Remove the temporary files (``.<name>.<random>.tmp``) that a process killed while
    writing a checkpoint into ``folder`` left behind; returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed


def _resolve(path: Path) -> Path:
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.pt", path / "checkpoints" / "last.pt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise CheckpointError(
                f"{path}: run directory holds no checkpoints/best.pt or last.pt (did its training "
                "finish one epoch?)"
            )
        return found
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file; give a checkpoint or run directory")
    return path


def _torch_load(path: Path, map_location: Any) -> Any:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); not a checkpoint")
    if head != b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: not an hsd checkpoint (not a PyTorch zip archive: it starts with {head!r})"
        )
    admit(2 * size, f"{path}: loading a {size}-byte checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: the file contains objects other than tensors and plain "
            f"containers (possibly executable code), which hsd never unpickles ({exc})"
        ) from None
    except MemoryError:
        raise CheckpointError(
            f"{path}: truncated or corrupted checkpoint (it declares more data than fits in memory)"
        ) from None
    except PermissionError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: truncated or corrupted checkpoint ({_short(exc)})"
        ) from None
    except Exception as exc:  # any other fault of the unpickler on damaged bytes
        raise CheckpointError(
            f"{path}: truncated or corrupted checkpoint ({type(exc).__name__}: {_short(exc)})"
        ) from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _tensor_fault(tensor: torch.Tensor) -> str:
    """What makes ``tensor`` unfit as a weight ('' if nothing): not dense, quantized, complex,
    without data (``meta``), or more elements than its storage holds (a stride-0 expansion:
    hashing or copying it would write out every element)."""
    if tensor.layout != torch.strided:
        return f"a {tensor.layout} tensor, not a dense one"
    if tensor.is_quantized:
        return f"a quantized {tensor.dtype} tensor"
    if tensor.is_complex():
        return f"a complex {tensor.dtype} tensor"
    if tensor.device.type == "meta":
        return "a tensor without data (meta device)"
    if (
        tensor.numel()
        and tensor.numel() * tensor.element_size() > tensor.untyped_storage().nbytes()
    ):
        return (
            f"of shape {tuple(tensor.shape)} over a storage of "
            f"{tensor.untyped_storage().nbytes()} bytes (overlapping strides)"
        )
    return ""


def _check_structure(payload: Any, path: Path) -> None:
    if (
        isinstance(payload, dict)
        and payload
        and "format" not in payload
        and all(isinstance(v, torch.Tensor) for v in payload.values())
    ):
        raise CheckpointError(
            f"{path}: a plain state dict (weights only, {len(payload)} tensors): it does not say "
            "which network, classes or frames it belongs to, so hsd cannot rebuild it; use a "
            "checkpoint hsd wrote (hsd teacher / convert / distill / baseline), or build your "
            "network in Python and call model.load_state_dict(torch.load(path))"
        )
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, *OLD_FORMATS):
        raise CheckpointError(f"{path}: not an hsd checkpoint (expected format {FORMAT})")
    for key in _REQUIRED:
        if key not in payload:
            raise CheckpointError(
                f"{path}: checkpoint lacks the '{key}' entry (not written by hsd, or damaged)"
            )
    model = payload["model"]
    if not (
        isinstance(model, dict)
        and isinstance(model.get("name"), str)
        and isinstance(model.get("kwargs"), dict)
        and isinstance(model.get("spiking"), bool)
    ):
        raise CheckpointError(
            f"{path}: the 'model' entry must be {{name: str, kwargs: dict, spiking: bool}}"
        )
    kwargs = model["kwargs"]
    for key in ("in_channels", "num_classes", "input_size"):
        if not _positive_int(kwargs.get(key)):
            raise CheckpointError(
                f"{path}: model.kwargs.{key} must be a positive integer, got {kwargs.get(key)!r}"
            )
    state = payload["state_dict"]
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: the 'state_dict' entry holds no weights")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: state_dict entry {name!r} is not a named tensor")
        fault = _tensor_fault(tensor)
        if fault:
            raise CheckpointError(f"{path}: weight '{name}' is {fault}; hsd writes none such")
    classes = payload["classes"]
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise CheckpointError(f"{path}: 'classes' must be a non-empty list of distinct names")
    if kwargs["num_classes"] != len(classes):
        raise CheckpointError(
            f"{path}: the network has {kwargs['num_classes']} outputs but 'classes' lists "
            f"{len(classes)} names"
        )
    stage = payload["stage"]
    if not isinstance(stage, str) or not re.fullmatch(STAGE_PATTERN, stage):
        raise CheckpointError(f"{path}: unknown stage {stage!r}")
    if model["spiking"] != (stage != "teacher"):
        raise CheckpointError(
            f"{path}: stage '{stage}' is {'an ANN' if stage == 'teacher' else 'a spiking network'}"
            f" but model.spiking is {model['spiking']} (damaged or forged)"
        )
    if not isinstance(payload["config"], dict):
        raise CheckpointError(f"{path}: the 'config' entry must be a mapping")
    from hsd.config import config_from_dict

    try:
        config_from_dict(payload["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its saved config is not valid ({exc})") from None


def _check_digest(payload: dict[str, Any], path: Path) -> None:
    recorded = payload.get("digest")
    if recorded is None and payload["format"] == FORMAT:
        raise CheckpointError(
            f"{path}: lacks its digest (damaged: every {FORMAT} checkpoint carries one); its "
            "weights cannot be trusted. Use another checkpoint or retrain"
        )
    if recorded is None:
        warnings.warn(
            f"{path}: written without a digest (by an older hsd); its weights cannot be verified",
            HSDWarning,
            stacklevel=3,
        )
        return
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        raise CheckpointError(f"{path}: its 'digest' entry is damaged")
    if digest(payload) != recorded["sha256"]:
        raise CheckpointError(
            f"{path}: digest mismatch: the file changed after it was written (a flipped byte, a "
            "damaged copy); its weights cannot be trusted. Use another checkpoint or retrain"
        )


def _check_finite(payload: dict[str, Any], path: Path) -> None:
    for name, tensor in payload["state_dict"].items():
        if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{path}: weight '{name}' holds NaN or infinite values; the network is unusable "
                "(use an earlier checkpoint or retrain)"
            )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check it: format, entries and their
    types, digest, finite weights, saved config.

    ``path`` may be a run directory (its ``checkpoints/best.pt``, else ``last.pt``). Raises
    :class:`~hsd.errors.CheckpointError` naming the file when it is missing, empty, truncated or
    corrupted, carries pickled code (refused, never executed), is not an hsd checkpoint, lacks an
    entry, fails its digest or holds non-finite weights. The returned dict has ``path`` added.
    """
    path = _resolve(Path(path))
    payload = _torch_load(path, map_location)
    try:
        _check_structure(payload, path)
        _check_digest(payload, path)
    except RecursionError:
        raise CheckpointError(f"{path}: nested too deeply; not an hsd checkpoint") from None
    _check_finite(payload, path)
    payload["path"] = str(path)
    return payload


def require(
    ckpt: dict[str, Any],
    purpose: str,
    *,
    spiking: bool | None = None,
    stages: tuple[str, ...] | None = None,
    classes: list[str] | None = None,
) -> None:
    """Refuse a checkpoint that is not what ``purpose`` (``"hsd export onnx"``) needs: a spiking
    network or an ANN, one of ``stages`` (prefixes such as ``"distill"`` match
    ``"distill-skd"``), the class list ``classes``. Messages name the checkpoint."""
    where = ckpt.get("path", "<checkpoint>")
    stage = ckpt["stage"]
    if spiking is not None and bool(ckpt["model"]["spiking"]) != spiking:
        kind = "a spiking network" if spiking else "an ANN (the teacher, before conversion)"
        have = "a spiking network" if ckpt["model"]["spiking"] else "an ANN"
        raise CheckpointError(
            f"{where}: {purpose} needs {kind}; this checkpoint ({stage}) is {have}"
        )
    if stages is not None and not any(stage == s or stage.startswith(s + "-") for s in stages):
        raise CheckpointError(
            f"{where}: {purpose} needs a checkpoint of stage {' or '.join(stages)}, this one is "
            f"'{stage}'"
        )
    if classes is not None and list(ckpt["classes"]) != list(classes):
        mine = ckpt["classes"]
        raise CheckpointError(
            f"{where}: its classes ({len(mine)}: {', '.join(map(str, mine[:5]))}"
            f"{'...' if len(mine) > 5 else ''}) are not the {len(classes)} classes of the data "
            f"({', '.join(map(str, classes[:5]))}{'...' if len(classes) > 5 else ''})"
        )
