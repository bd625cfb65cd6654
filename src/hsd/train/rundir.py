"""The run directory: the one place that decides where a run's files go, and that no run is lost.

::

    runs/<name>/
      config.yaml          resolved configuration (defaults + recipe + overrides)
      environment.json     seed, package versions, device, split-manifest hash
      manifest.json        the split used (sample keys per split, with its content hash)
      metrics.jsonl        one JSON object per line: per-epoch training/validation metrics
      checkpoints/last.pt  written every epoch (resume point)
      checkpoints/best.pt  the epoch with the best validation accuracy (never chosen on test)
      report.md, *.png     human-readable results

Never losing a run (:func:`prepare_run_dir`, called by every training stage before any work):

* a folder that already holds a run (a checkpoint or logged metrics) is refused, unless ``resume``
  (continue it from ``checkpoints/last.pt``, which must exist and load) or ``force`` (the old
  run is *moved aside* to ``<path>.old-<N>``, never deleted); ``replace`` (for the demo's and
  the benchmarks' own scratch folders only) writes over it;
* a path that is a file is refused;
* temporary files that a killed process left (``.last.pt.*.tmp``, ``*.json.tmp``) are removed;
* :meth:`RunDir.read_metrics` tolerates a partial last line (a process killed while appending).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from hsd import __version__
from hsd.config import Config, save_config
from hsd.errors import HSDWarning, RunDirError

__all__ = ["RunDir", "prepare_run_dir"]


def _holds_run(path: Path) -> list[str]:
    """What makes ``path`` a run worth keeping: checkpoints or logged metrics. A folder with only
    config.yaml / manifest.json / environment.json (a start that failed before its first
    epoch) holds nothing to lose and is written over."""
    found = []
    checkpoints = path / "checkpoints"
    if checkpoints.is_dir():
        found += [
            f"checkpoints/{p.name}" for p in sorted(checkpoints.iterdir()) if p.suffix == ".pt"
        ]
    metrics = path / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append("metrics.jsonl")
    return found


def _aside(path: Path) -> Path:
    n = 1
    while (path.parent / f"{path.name}.old-{n}").exists():
        n += 1
    return path.parent / f"{path.name}.old-{n}"


def prepare_run_dir(
    path: str | Path, *, resume: bool = False, force: bool = False, replace: bool = False
) -> Path:
    """Check (and for ``force`` clear) ``path`` before a training stage writes into it.

    Raises :class:`~hsd.errors.RunDirError` naming the path: it is a file; it holds a run and
    neither ``resume``, ``force`` nor ``replace`` is given; ``resume`` and there is no
    ``checkpoints/last.pt``. With ``force`` an existing run is renamed to ``<path>.old-<N>``
    (an :class:`~hsd.errors.HSDWarning` says where). Returns the path.
    """
    path = Path(path)
    if resume and force:
        raise RunDirError(
            f"{path}: give --resume (continue the run) or --force (start anew), not both"
        )
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path}: is a file, not a run directory; give a folder with --out")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise RunDirError(f"{path}: {parent} is a file, not a folder")
    try:
        found = _holds_run(path) if path.is_dir() else []
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read the folder ({exc.strerror or exc})") from None
    last = path / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise RunDirError(
                f"{path}: nothing to resume: {last} does not exist (the run never finished a "
                "checkpoint); start without --resume"
                + (" (add --force to move the folder aside)" if found else "")
            )
        return path
    if not found or replace:
        return path
    if not force:
        raise RunDirError(
            f"{path}: already holds a run ({', '.join(found)}); continue it with --resume, or "
            "give --force to move it aside and start anew (or choose another --out)"
        )
    target = _aside(path)
    try:
        path.rename(target)
    except OSError as exc:
        raise RunDirError(
            f"{path}: cannot move the old run aside ({exc.strerror or exc})"
        ) from None
    warnings.warn(f"{path}: moved the previous run aside to {target}", HSDWarning, stacklevel=2)
    return path


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: is a file, not a run directory; give a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.clean_temporary()

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

    def clean_temporary(self) -> list[Path]:
        """Remove temporary files a killed writer left (checkpoints' and JSON files')."""
        from hsd.train.checkpoint import clean_temporary

        removed = clean_temporary(self.checkpoints)
        for tmp in [*self.path.glob("*.json.tmp"), *self.path.glob(".*.tmp")]:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                continue
        return removed

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
        """The records of ``metrics.jsonl``. A partial last line (a process killed while
        appending) is dropped; other lines that are not JSON objects are skipped with an
        :class:`~hsd.errors.HSDWarning` naming the file and line."""
        if not self.metrics_path.is_file():
            return []
        text = self.metrics_path.read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif number < len(lines):  # not the unterminated last line: say so
                warnings.warn(
                    f"{self.metrics_path}: line {number} is not a JSON record; skipped",
                    HSDWarning,
                    stacklevel=2,
                )
        return records

    def write_json(self, name: str, obj: Any) -> Path:
        out = self.path / name
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
        tmp.replace(out)
        return out

    def write_text(self, name: str, text: str) -> Path:
        """Write ``name`` atomically (temporary file, then rename)."""
        out = self.path / name
        tmp = self.path / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        tmp.replace(out)
        return out
