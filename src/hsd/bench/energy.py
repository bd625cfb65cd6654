"""Benchmark: synaptic operations and estimated energy per sample, from measured firing rates.

A trained spiking network (an hsd checkpoint, ``--checkpoint``; an ANN checkpoint is converted)
runs over the official Test split of an N-MNIST folder (``--root``; 10 equal-event-count
frames, ``prefix`` protocol: after T steps it has seen the first T frames) while
``hsd.models.FiringRateMonitor`` counts its spikes. ``hsd.eval.energy`` turns the rates into
per-layer MACs (input layer) and SOPs (spike-driven layers) and into the energy of SNN papers
(4.6 pJ per MAC, 0.9 pJ per AC), beside the ANN on the same T frames. A second SOP count is taken
from the inputs the weight layers actually receive (non-zero inputs x fan-out, as an
event-driven counter does), which differs where average pooling sits between neuron and layer.
Without ``--checkpoint`` an untrained converted demo network is used (its rates mean nothing;
a tooling check only).

Check against SpikingJelly's operation counter (``spikingjelly.activation_based.op_counter``):
its ``SynOpCounter`` counts only binary (0/1) spike inputs, and hsd's neurons emit
``threshold * spike`` that average pooling then mixes, so the check runs on a separate converted
network whose neurons feed the next layer directly and whose thresholds are 1 (binary output):
conv 2->16, conv 16->32 (3x3, no pooling), linear, on the same frames; ``MACCounter`` checks the
dense MACs on its ANN.

Run from the repository root:

    .venv/bin/python benchmarks/bench_energy.py --checkpoint RUN_DIR_OR_CKPT

Prints tables and writes the raw numbers to ``docs/benchmarks/energy.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hsd.bench.common import command_line, machine, parse_ints, write_record
from hsd.data import get_dataset, load_frames
from hsd.data.registry import default_root
from hsd.eval.energy import count_macs, energy_estimate
from hsd.events.frames import FrameSpec
from hsd.models import (
    FiringRateMonitor,
    FrameNet,
    convert_to_snn,
    create_model,
    is_spiking,
    reset_states,
)
from hsd.pipeline import model_from_checkpoint
from hsd.train.checkpoint import load_checkpoint


def _default_root() -> Path | None:
    """N-MNIST's folder from the environment (``$HSD_NMNIST_ROOT``, else ``$HSD_DATA_DIR/nmnist``;
    :func:`hsd.data.registry.default_root`), None when unset: ``hsd bench energy`` then falls back
    to synthetic frames, so it runs from any folder."""
    return default_root("nmnist")


def load_test_frames(root: Path, n_frames: int, split_by: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Official Test split: frames ``[N, S, 2, 34, 34]`` float32 (time first) and labels."""
    dataset = get_dataset("nmnist", root)
    arrays = load_frames(dataset, FrameSpec(n_frames=n_frames, split_by=split_by), progress=False)
    test = np.array([i for i, s in enumerate(dataset.samples) if s.split == "test"])
    frames = torch.from_numpy(np.asarray(arrays.frames[test], dtype=np.float32))
    return frames.transpose(0, 1).contiguous(), torch.from_numpy(arrays.labels[test])


def synthetic_frames(steps: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    frames = torch.poisson(torch.full((steps, samples, 2, 34, 34), 0.3), generator=g)
    return frames, torch.arange(samples) % 10


def run_monitored(
    snn: nn.Module, frames: torch.Tensor, batch: int
) -> tuple[dict[str, float], dict[str, float], torch.Tensor]:
    """Firing rates, per weight layer the mean non-zero inputs x fan-out per sample (an
    event-driven count), and the logits ``[T, S, C]``."""
    event_ops: dict[str, float] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            x = inputs[0]
            if isinstance(module, nn.Conv2d):
                fan_out = out.numel() * module.in_channels // module.groups
                fan_out *= module.kernel_size[0] * module.kernel_size[1]
                ops = fan_out * float(torch.count_nonzero(x)) / x.numel()
            else:
                ops = float(torch.count_nonzero(x)) * module.out_features
            event_ops[name] = event_ops.get(name, 0.0) + ops

        return record

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in snn.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    logits = []
    snn.eval()
    with FiringRateMonitor(snn) as monitor, torch.no_grad():
        for start in range(0, frames.shape[1], batch):
            reset_states(snn)
            logits.append(snn(frames[:, start : start + batch]))
    for h in handles:
        h.remove()
    samples = frames.shape[1]
    return monitor.rates(), {k: v / samples for k, v in event_ops.items()}, torch.cat(logits, 1)


def spikingjelly_check(frames: torch.Tensor, batch: int) -> dict[str, object]:
    """hsd's MAC and SOP counts against SpikingJelly's MACCounter / SynOpCounter per layer."""
    try:
        from spikingjelly.activation_based.op_counter import (
            DispatchCounterMode,
            MACCounter,
            SynOpCounter,
        )
    except ImportError as error:
        return {"available": False, "reason": f"{type(error).__name__}: {error}"}
    torch.manual_seed(0)
    ann = FrameNet(
        (16, 32), in_channels=2, num_classes=10, input_size=34, width=1.0, levels=8,
        init_threshold=1.0,
    ).eval()  # fmt: skip
    snn = convert_to_snn(ann).eval()
    layers = count_macs(ann, tuple(frames.shape[2:]))
    mac_counter = MACCounter()
    with DispatchCounterMode([mac_counter]), torch.no_grad():
        ann(frames[:1, :1] + 0.5)  # non-binary input: every layer counted as MACs
    sj_macs = {c.name: sum(mac_counter.get_counts()[f"FrameNet.{c.name}"].values()) for c in layers}
    steps, samples = frames.shape[0], frames.shape[1]
    syn_counter = SynOpCounter()
    with DispatchCounterMode([syn_counter]), FiringRateMonitor(snn) as monitor, torch.no_grad():
        for start in range(0, samples, batch):
            reset_states(snn)
            snn(frames[:, start : start + batch])
    est = energy_estimate(layers, monitor.rates(), steps)
    counts = syn_counter.get_counts()
    rows = []
    for cost, row in zip(layers, est.layers, strict=True):
        sj = sum(counts.get(f"FrameNet.{cost.name}", {}).values()) / samples
        rows.append(
            {
                "layer": cost.name,
                "hsd_macs": cost.macs,
                "sj_macs": sj_macs[cost.name],
                "rate": row.rate if row.op == "AC" else None,
                "hsd_sops": row.ops if row.op == "AC" else None,
                "sj_sops": sj if row.op == "AC" else None,
            }
        )
    return {"available": True, "steps": steps, "samples": samples, "layers": rows}


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: ``--quick`` is ``--tiny`` (synthetic
    frames); otherwise the HSD network of the accuracy benchmark's first nmnist seed when that
    ran into ``out`` (an untrained network otherwise)."""
    args = ["--out", str(out / "energy.json")]
    root = _default_root()
    if quick or root is None or not root.is_dir():
        return [*args, "--tiny"]
    hsd_run = out / "accuracy" / "nmnist" / "runs" / "seed0" / "prefix" / "hsd"
    return [*args, "--checkpoint", str(hsd_run)] if hsd_run.is_dir() else args


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="hsd checkpoint file or run directory")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="N-MNIST folder (default: $HSD_NMNIST_ROOT, else $HSD_DATA_DIR/nmnist)",
    )
    parser.add_argument("--steps", type=parse_ints, default=[1, 2, 4, 8, 10], help="e.g. 1,2,4")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--tiny", action="store_true", help="synthetic frames, untrained network")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/energy.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_frames, split_by = 10, "count"
    if args.checkpoint is not None:
        ckpt = load_checkpoint(args.checkpoint)
        data_cfg = ckpt.get("config", {}).get("data", {})
        n_frames = int(data_cfg.get("frames", n_frames))
        split_by = str(data_cfg.get("split_by", split_by))
        model = model_from_checkpoint(ckpt)
        source = f"{ckpt['path']} (stage {ckpt['stage']}, {ckpt['model']})"
    else:
        torch.manual_seed(0)
        model = create_model("demo", width=0.5, init_threshold=2.0)
        source = "untrained demo network, width 0.5, thresholds 2.0 (rates not meaningful)"
    snn = model if is_spiking(model) else convert_to_snn(model)
    if args.tiny:
        args.steps = [1, 2]
        frames, labels = synthetic_frames(max(args.steps), 4)
        data = "synthetic Poisson frames (tiny run)"
    else:
        if max(args.steps) > n_frames:
            parser.error(f"--steps go up to {max(args.steps)} but samples have {n_frames} frames")
        if args.root is None:
            args.root = _default_root()
        if args.root is None:
            parser.error("give --root N-MNIST_DIR (or set HSD_NMNIST_ROOT), or --tiny")
        frames, labels = load_test_frames(args.root, n_frames, split_by)
        data = f"{args.root.name} official Test split, {n_frames} frames split by {split_by}"
    layers = count_macs(snn, tuple(frames.shape[2:]))
    results = []
    for steps in args.steps:
        rates, event_ops, logits = run_monitored(snn, frames[:steps], args.batch)
        est = energy_estimate(layers, rates, steps)
        accuracy = float((logits.mean(0).argmax(1) == labels).float().mean())
        results.append(
            {
                "steps": steps,
                "accuracy": accuracy,
                "rates": rates,
                "layers": [
                    {**vars(row), "macs_per_frame": cost.macs, "event_ops": event_ops[cost.name]}
                    for row, cost in zip(est.layers, layers, strict=True)
                ],
                "mac_ops": est.mac_ops,
                "sops": est.sops,
                "event_sops": sum(event_ops[c.name] for c in layers if c.source is not None),
                "energy_uj": est.energy_pj * 1e-6,
                "ann_macs": est.ann_macs,
                "ann_energy_uj": est.ann_energy_pj * 1e-6,
                "snn_over_ann": est.ratio,
            }
        )
        r = results[-1]
        print(
            f"T={steps:<2} acc {100 * accuracy:5.1f}%  MACs {est.mac_ops / 1e6:7.3f} M  "
            f"SOPs {est.sops / 1e6:7.3f} M (event count {r['event_sops'] / 1e6:7.3f} M)  "
            f"SNN {r['energy_uj']:7.3f} uJ  ANN {r['ann_energy_uj']:7.3f} uJ  "
            f"ratio {est.ratio:.3f}",
            flush=True,
        )
    check_frames = frames[: min(4, frames.shape[0]), : min(100, frames.shape[1])]
    check = spikingjelly_check(check_frames, args.batch)
    for row in check.get("layers", []):
        print(f"spikingjelly check {row}")
    record = {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(torch.device("cpu")),
        "model": source,
        "data": data,
        "samples": int(frames.shape[1]),
        "energy_pj": {"mac": 4.6, "ac": 0.9},
        "layers": [vars(c) for c in layers],
        "results": results,
        "spikingjelly_check": check,
    }
    return write_record(args.out, record, "raw numbers")


if __name__ == "__main__":
    main()
