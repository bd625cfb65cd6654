"""Datasets, split manifests, the frame cache, augmentation and PyTorch loaders.

``get_dataset(name, root)`` opens a local dataset (never downloads); ``make_manifest`` /
``kfold_manifests`` split it by sample key; ``load_frames`` integrates every sample once into a
memory-mapped cache; ``make_loader`` batches cached frames for PyTorch. The torch-dependent
names (``Augment``, ``FrameDataset``, ``make_loader``) are imported on first use, so inspecting
datasets does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from hsd.data.base import EventDataset, Sample
from hsd.data.cache import FrameArrays, FrameCache, load_frames
from hsd.data.paths import cache_dir
from hsd.data.registry import get_dataset, list_datasets, register
from hsd.data.splits import Manifest, kfold_manifests, make_manifest

__all__ = [
    "Augment",
    "EventDataset",
    "FrameArrays",
    "FrameCache",
    "FrameDataset",
    "Manifest",
    "Sample",
    "cache_dir",
    "get_dataset",
    "kfold_manifests",
    "list_datasets",
    "load_frames",
    "make_loader",
    "make_manifest",
    "register",
]

_LAZY = {
    "Augment": "hsd.data.augment",
    "FrameDataset": "hsd.data.torch_data",
    "make_loader": "hsd.data.torch_data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hsd.data' has no attribute {name!r}")
