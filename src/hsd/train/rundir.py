"""The run directory: the one place that decides where a run's files go.

::

    runs/<name>/
      config.yaml          resolved configuration (defaults + recipe + overrides)
      environment.json     seed, package versions, device, split-manifest hash
      manifest.json        the split used (sample keys per split, with its content hash)
      metrics.jsonl        one JSON object per line: per-epoch training/validation metrics
      checkpoints/last.pt  written every epoch (resume point)
      checkpoints/best.pt  the epoch with the best validation accuracy (never chosen on test)
      report.md, *.png     human-readable results
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from hsd import __version__
from hsd.config import Config, save_config

__all__ = ["RunDir"]


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def save_config(self, cfg: Config) -> None:
        save_config(cfg, self.path / "config.yaml")

    def save_environment(self, *, seed: int, device: str, manifest_hash: str | None) -> None:
        import numpy
        import spikingjelly
        import torch

        env = {
            "hsd": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "torch": torch.__version__,
            "spikingjelly": getattr(spikingjelly, "__version__", "2.0.0"),
            "numpy": numpy.__version__,
            "cuda": torch.version.cuda,
            "device": device,
            "seed": seed,
            "manifest_hash": manifest_hash,
        }
        self.write_json("environment.json", env)

    def log(self, record: dict[str, Any]) -> None:
        record = {"time": round(time.time(), 3), **record}
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line]

    def write_json(self, name: str, obj: Any) -> Path:
        out = self.path / name
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
        tmp.replace(out)
        return out

    def write_text(self, name: str, text: str) -> Path:
        out = self.path / name
        out.write_text(text)
        return out
