"""Benchmark: peak memory of one training step against T (BPTT keeps every step's activations).

For the demo network and VGGSNN-48, each of the three variants of ``bench_speed.py`` (``ann``:
the QCFS network on T frames; ``snn``: its conversion; ``loop``: the plain PyTorch time loop of
the same neurons) and each T, a fresh worker process builds the network and the batch, runs one
warm-up training step (forward, cross-entropy of the mean logits, backward, SGD step), then
measures the second step two ways:

* ``peak``: on CPU, the rise of the process's resident set (peak ``VmHWM`` after the step minus
  ``VmRSS`` before it; the peak is reset through ``/proc/self/clear_refs`` first). The worker
  runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns every block of 64 KiB or more
  to the system when it is freed and the resident set follows the live tensors. On CUDA:
  ``torch.cuda.max_memory_allocated`` minus the allocation before the step.
* ``saved``: bytes of the activations autograd keeps for the backward pass (tensors packed by
  ``torch.autograd.graph.saved_tensors_hooks`` during the forward, each storage counted once,
  parameters excluded): exact and independent of the allocator; this is what BPTT grows with T.

Run from the repository root:

    .venv/bin/python benchmarks/bench_memory.py

Prints a table and writes the raw numbers to ``docs/benchmarks/memory.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from hsd.bench.common import add_network_args, command_line, machine, write_record
from hsd.bench.speed import VARIANTS, build_variants, make_input, train_fn

MIB = 2**20


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} line")
    return int(match.group(1))


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def measure(network: str, variant: str, steps: int, batch: int, width: float, device: str) -> dict:
    """One configuration, in this process: ``{"peak_bytes", "saved_bytes", ...}``."""
    dev = torch.device(device)
    model = build_variants(network, width)[variant].to(dev).train()
    x = make_input(network, steps, batch).to(dev)
    y = torch.arange(batch, device=dev) % 10
    step = train_fn(model, x, y)
    step()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
    else:
        _reset_peak_rss()
        before = _status_kib("VmRSS") * 1024
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - before
    else:
        peak = _status_kib("VmHWM") * 1024 - before
    return {
        "network": network,
        "variant": variant,
        "steps": steps,
        "batch": batch,
        "width": width,
        "peak_bytes": peak,
        "saved_bytes": sum(saved.values()),
        "before_bytes": before,
    }


def run_worker(config: dict, threads: int) -> dict:
    """``measure(**config)`` in a fresh Python process with the malloc setting above."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hsd.bench.memory",
            "--threads",
            str(threads),
            "--worker",
            json.dumps(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory worker {config} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope_mib_per_step(rows: list[dict], key: str) -> float:
    """Least-squares slope of ``key`` (MiB) against T."""
    ts = [r["steps"] for r in rows]
    ys = [r[key] / MIB for r in rows]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mean_t) ** 2 for t in ts)
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / var


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: ``--quick`` measures the demo network
    only, at T = 1, 2, 4."""
    quick_args = ["--networks", "demo", "--steps", "1,2,4"]
    return ["--out", str(out / "memory.json"), *(quick_args if quick else [])]


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_args(parser)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/memory.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        result = measure(**json.loads(args.worker))
        print(json.dumps(result))
        return result
    if args.tiny:
        args.networks, args.steps, args.demo_batch, args.variants = "demo", [1, 2], 2, "snn"
    variants = args.variants.split(",")
    rows = []
    for network in args.networks.split(","):
        vgg = network == "vggsnn"
        for steps in args.steps:
            for variant in variants:
                config = {
                    "network": network,
                    "variant": variant,
                    "steps": steps,
                    "batch": args.vgg_batch if vgg else args.demo_batch,
                    "width": args.vgg_width if vgg else 1.0,
                    "device": args.device,
                }
                rows.append(run_worker(config, args.threads))
                r = rows[-1]
                print(
                    f"{network:<7} T={steps:<2} B={r['batch']:<3} {variant:<5} "
                    f"peak {r['peak_bytes'] / MIB:8.1f} MiB  "
                    f"saved {r['saved_bytes'] / MIB:8.1f} MiB",
                    flush=True,
                )
    growth = {
        f"{network}/{variant}": {
            key: slope_mib_per_step(sel, key)
            for key in ("peak_bytes", "saved_bytes")
            if len({r["steps"] for r in sel}) > 1
        }
        for network in args.networks.split(",")
        for variant in variants
        if (sel := [r for r in rows if r["network"] == network and r["variant"] == variant])
    }
    record = {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(torch.device(args.device)),
        "method": "peak: VmHWM - VmRSS of the 2nd training step in a fresh process "
        "(MALLOC_MMAP_THRESHOLD_=65536), cuda: max_memory_allocated; saved: autograd saved "
        "tensors, unique storages, parameters excluded",
        "results": rows,
        "mib_per_time_step": growth,
    }
    return write_record(args.out, record, "raw numbers")


if __name__ == "__main__":
    main()
