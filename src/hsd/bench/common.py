"""What every benchmark records beside its numbers: the machine and the command line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "add_network_args",
    "command_line",
    "cpu_model",
    "machine",
    "parse_ints",
    "write_record",
]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> dict[str, object]:
    """What the numbers were measured on."""
    info: dict[str, object] = {
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg_1min": os.getloadavg()[0],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def command_line() -> str:
    """The command this process was started with, as typed from the repository root: a script
    under ``benchmarks/`` as ``.venv/bin/python benchmarks/...``, the CLI as ``hsd ...``."""
    first, *rest = sys.argv
    if first.endswith(".py"):
        script = Path(first)
        if script.is_absolute():
            try:
                script = script.relative_to(Path.cwd())
            except ValueError:
                pass
        return shlex.join([".venv/bin/python", str(script), *rest])
    return shlex.join([Path(first).name, *rest])


def record_header(
    device: torch.device, dataset: str, config: Any, overrides: Any
) -> dict[str, Any]:
    """The fields every accuracy record starts with: the command, the UTC date, the machine,
    the dataset (and whether it is emulated: the embedded digits-dvs), the recipe and the
    overrides."""
    import datetime as dt

    return {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(device),
        "dataset": dataset,
        "emulated": dataset == "digits-dvs",
        "config": None if config is None else str(config),
        "overrides": overrides,
    }


def parse_ints(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``."""
    return [int(item) for item in text.split(",") if item]


def write_record(path: Path, record: dict[str, Any], what: str = "raw numbers") -> dict[str, Any]:
    """Write a benchmark's ``record`` as indented JSON to ``path`` (folders made), say where,
    and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{what} written to {path}")
    return record


def add_network_args(parser: argparse.ArgumentParser) -> None:
    """The options that choose what the speed and memory benchmarks measure: time steps,
    networks, batch sizes and the VGGSNN width."""
    parser.add_argument("--steps", type=parse_ints, default=[1, 2, 4, 8], help="e.g. 1,2,4,8")
    parser.add_argument("--networks", default="demo,vggsnn", help="comma-separated")
    parser.add_argument("--demo-batch", type=int, default=16)
    parser.add_argument("--vgg-batch", type=int, default=2)
    parser.add_argument("--vgg-width", type=float, default=1.0)
