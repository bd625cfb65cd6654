"""``torch.compile`` for the networks of the training stages and of ``hsd evaluate``.

One key decides it, ``compile`` (``true``, ``false`` or ``auto``, default ``auto``):

* ``true``: compile; ``false``: eager;
* ``auto``: compile a **training** network when the run takes at least :data:`AUTO_MIN_STEPS`
  optimiser steps (epochs x batches per epoch) on a CPU or CUDA device, where the one-off
  compilation (measured 12-37 s for hsd's SNNs on the 2-core CPU of issue 12) is paid back by
  1.2-1.3x faster training steps; eager for shorter runs (tests, smoke runs, the demo's small
  stages) and for evaluation, which runs each sequence length once.

Compiled graphs are cached on disk (inductor's FX graph cache) under ``<hsd cache>/inductor``
(``$HSD_CACHE_DIR``, else ``~/.cache/hsd``) unless ``TORCHINDUCTOR_CACHE_DIR`` is already set, so a
second run of the same network pays the compilation once. The compiled module shares its
parameters with the eager one: checkpoints are written from the eager module, unchanged.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from hsd.data.paths import cache_dir

__all__ = ["AUTO_MIN_STEPS", "compile_network", "wants_compile"]

AUTO_MIN_STEPS = 2000


def wants_compile(mode: str, device: torch.device, *, train_steps: int | None) -> bool:
    """Whether ``compile=mode`` compiles a network on ``device``.

    ``train_steps``: optimiser steps of the training run, ``None`` for evaluation.
    """
    if mode == "true":
        return True
    if mode == "false":
        return False
    if mode != "auto":
        raise ValueError(f"compile must be 'true', 'false' or 'auto', got {mode!r}")
    return (
        train_steps is not None and train_steps >= AUTO_MIN_STEPS and device.type in ("cpu", "cuda")
    )


def compile_network(net: nn.Module, *, backend: str = "inductor") -> nn.Module:
    """``torch.compile(net, dynamic=False)`` with inductor's graph cache under hsd's cache folder.

    Static shapes: with dynamic shapes inductor failed on the SNN's time loop ("cannot determine
    truth value of Relational", torch 2.13 CPU); a new batch or T recompiles once instead.
    ``backend``: torch.compile's backend; ``"eager"`` (graph capture only, no code generation)
    serves smoke runs and tests that need the compiled path's behaviour, not its speed."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "inductor")
    import torch._inductor.config  # here, not at import: it imports triton where installed

    torch._inductor.config.fx_graph_cache = True  # (the default in recent torch; made explicit)
    return torch.compile(net, dynamic=False, backend=backend)
