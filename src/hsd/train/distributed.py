"""Multi-process training with ``torch.distributed``, started by ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in
every process; :func:`setup` reads them, joins the process group (NCCL on CUDA, gloo on CPU) and
picks the device (``cuda:LOCAL_RANK`` when CUDA is usable, else the CPU). Without those variables
(a plain ``hsd teacher ...``) everything here is a no-op for a single process of rank 0, so the
training code calls these helpers unconditionally.

Only rank 0 (:func:`is_main`) writes files and prints; metrics are summed over ranks with
:func:`all_reduce_sums`; :func:`broadcast_state` copies rank 0's weights and buffers to the others.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hsd.errors import ConfigError

__all__ = [
    "all_reduce_sums",
    "backend",
    "barrier",
    "broadcast_object",
    "broadcast_state",
    "cleanup",
    "env_world_size",
    "is_distributed",
    "is_main",
    "rank",
    "setup",
    "world_size",
]


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when absent, i.e. not started by ``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def backend() -> str | None:
    """The process group's backend ("nccl", "gloo"), None without a process group."""
    return str(dist.get_backend()) if is_distributed() else None


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on the process that writes files and prints (global rank 0)."""
    return rank() == 0


def setup(device_name: str = "auto", timeout_s: float = 1800.0) -> torch.device:
    """Join the process group described by the ``torchrun`` environment; return the device.

    ``device_name``: ``"auto"`` (CUDA when usable, else CPU), ``"cpu"`` or ``"cuda"``; under
    several processes a CUDA run uses ``cuda:LOCAL_RANK``, so naming one GPU (``"cuda:1"``) is
    refused there. A process group that already exists (e.g. made by a test) is used as it is.
    """
    wants_cuda = device_name.startswith("cuda") or (
        device_name == "auto" and torch.cuda.is_available()
    )
    if wants_cuda and not torch.cuda.is_available():
        raise ConfigError(f"device '{device_name}' requested but CUDA is not available")
    if env_world_size() > 1 and not dist.is_initialized():
        if not dist.is_available():
            raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
        dist.init_process_group(
            backend="nccl" if wants_cuda else "gloo",
            init_method="env://",
            timeout=timedelta(seconds=timeout_s),
        )
    if not wants_cuda:
        return torch.device("cpu" if device_name == "auto" else device_name)
    if is_distributed():
        if device_name not in ("auto", "cuda"):
            raise ConfigError(
                f"device '{device_name}': under torchrun every process uses cuda:LOCAL_RANK; "
                "set device=auto or device=cuda"
            )
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return torch.device(device_name if device_name != "auto" else "cuda")


def cleanup() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op for a single process)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sums(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum each value over all processes (float64); a single process gets its values back."""
    if not is_distributed():
        return dict(values)
    keys = sorted(values)
    total = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return dict(zip(keys, total.tolist(), strict=True))


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (pickled in memory between our own processes)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@torch.no_grad()
def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank ``src``'s, in place."""
    if not is_distributed():
        return
    for tensor in module.state_dict(keep_vars=True).values():
        dist.broadcast(tensor.data, src=src)
