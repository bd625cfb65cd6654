"""Benchmark: inference and training speed of the SNN against the same network as an ANN and a
plain PyTorch time loop of the same neurons, for the demo network and VGGSNN-48 at several T.

Three variants of one network, same weights, measured interleaved in this process (each repeat
runs every variant once, in a rotating order):

* ``ann``: the QCFS network (the teacher) on the same T frames, every frame processed
  independently (``[T * B]`` folded into the batch): the dense lower bound;
* ``snn``: its conversion (``hsd.models.convert_to_snn``, SpikingJelly multi-step
  ``QCFSNeuron``), reset before every sequence;
* ``loop``: the SNN with every ``QCFSNeuron`` replaced by :class:`PlainIF`, a hand-written loop
  over T with the same IF dynamics (soft reset, v0 = thr / 2, spike when v >= thr, output
  thr * spike, triangle surrogate gradient in a small ``autograd.Function``). The script checks
  that its outputs and gradients equal the SNN's.

Inference: eval mode, ``torch.no_grad``, one batch ``[T, B, P, H, W]``. Training step: train mode,
forward, cross-entropy of the mean logits, backward, SGD step (lr 0, so every repeat computes the
same thing). Each timing is the median of ``--repeats`` after ``--warmup`` untimed rounds.

Run from the repository root:

    .venv/bin/python benchmarks/bench_speed.py

Prints a table and writes the raw timings to ``docs/benchmarks/speed.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from hsd.bench.common import add_network_args, command_line, machine, write_record
from hsd.models import QCFSNeuron, convert_to_snn, create_model, reset_states
from hsd.models.qcfs import positive_threshold

VARIANTS = ("ann", "snn", "loop")
INPUT = {"demo": 34, "vggsnn": 48}


class _TriangleSpike(torch.autograd.Function):
    """Forward ``u >= 0`` as float; backward ``grad * max(0, 1 - |u|)``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, u: Tensor) -> Tensor:
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (u,) = ctx.saved_tensors
        return grad * (1.0 - u.abs()).clamp_min(0.0)


class PlainIF(nn.Module):
    """IF neuron as a plain loop over T: ``[T, B, ...]`` float -> ``thr * spike`` of that shape.

    Same dynamics as :class:`hsd.models.QCFSNeuron`; stateless between calls (v0 = thr / 2 at
    every call), trainable threshold ``lam``.
    """

    def __init__(self, lam: Tensor) -> None:
        super().__init__()
        self.lam = nn.Parameter(lam.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        lam = positive_threshold(self.lam).to(x.dtype)
        v = torch.zeros_like(x[0]) + 0.5 * lam
        outputs = []
        for t in range(x.shape[0]):
            v = v + x[t]
            out = _TriangleSpike.apply((v - lam) / lam) * lam
            v = v - out
            outputs.append(out)
        return torch.stack(outputs)


def plain_loop_copy(snn: nn.Module) -> nn.Module:
    """A copy of ``snn`` with every :class:`QCFSNeuron` replaced by a :class:`PlainIF`."""
    loop = copy.deepcopy(snn)
    for name, module in list(loop.named_modules()):
        if isinstance(module, QCFSNeuron):
            parent_name, _, child = name.rpartition(".")
            setattr(loop.get_submodule(parent_name), child, PlainIF(module.lam))
    return loop


def build_variants(name: str, width: float, seed: int = 0) -> dict[str, nn.Module]:
    """``{"ann", "snn", "loop"}`` versions of one network with the same weights (N-MNIST-like
    input: 2 polarities, 10 classes; thresholds 2.0 as in ``configs/nmnist.yaml``)."""
    torch.manual_seed(seed)
    ann = create_model(
        name, in_channels=2, num_classes=10, input_size=INPUT[name], width=width, init_threshold=2.0
    )
    snn = convert_to_snn(ann)
    return {"ann": ann, "snn": snn, "loop": plain_loop_copy(snn)}


def make_input(name: str, steps: int, batch: int, seed: int = 0) -> Tensor:
    """Event-count-like frames ``[T, B, 2, S, S]`` float32: Poisson counts of mean 0.5."""
    g = torch.Generator().manual_seed(seed)
    size = INPUT[name]
    return torch.poisson(torch.full((steps, batch, 2, size, size), 0.5), generator=g)


def check_loop_equals_snn(models: dict[str, nn.Module], x: Tensor) -> float:
    """Max abs difference of logits and of the first conv's weight gradient, loop vs SNN."""
    diffs = []
    grads = {}
    for key in ("snn", "loop"):
        model = models[key].train()
        model.zero_grad()
        reset_states(model)
        out = model(x)
        out.mean(0).logsumexp(1).sum().backward()
        grads[key] = (out.detach(), next(model.parameters()).grad.clone())
        model.zero_grad()
        reset_states(model)
    for a, b in zip(grads["snn"], grads["loop"], strict=True):
        diffs.append(float((a - b).abs().max()))
    return max(diffs)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per call of every function, measured A, B, C, B, C, A, ... (rotating order)."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def inference_fn(model: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.no_grad():
            reset_states(model)
            return model(x)

    return run


def train_fn(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)

    def run() -> float:
        optimizer.zero_grad(set_to_none=True)
        reset_states(model)
        loss = nn.functional.cross_entropy(model(x).mean(0), y)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return run


def bench_network(
    name: str,
    width: float,
    steps: Sequence[int],
    batch: int,
    repeats: int,
    warmup: int,
    device: torch.device,
) -> list[dict[str, object]]:
    models = {k: m.to(device) for k, m in build_variants(name, width).items()}
    rows = []
    for t in steps:
        x = make_input(name, t, batch).to(device)
        y = torch.arange(batch, device=device) % 10
        diff = check_loop_equals_snn(models, x)
        if diff > 1e-4:
            raise RuntimeError(f"{name} T={t}: plain loop differs from the SNN by {diff:.3g}")
        for m in models.values():
            m.eval()
        infer = interleaved(
            {k: inference_fn(m, x) for k, m in models.items()}, repeats, warmup, device
        )
        for m in models.values():
            m.train()
        train = interleaved(
            {k: train_fn(m, x, y) for k, m in models.items()}, repeats, warmup, device
        )
        med_i = {k: statistics.median(v) for k, v in infer.items()}
        med_t = {k: statistics.median(v) for k, v in train.items()}
        rows.append(
            {
                "network": name,
                "width": width,
                "steps": t,
                "batch": batch,
                "loop_vs_snn_max_abs_diff": diff,
                "inference_s": infer,
                "train_step_s": train,
                "inference_samples_per_s": {k: batch / v for k, v in med_i.items()},
                "train_steps_per_s": {k: 1.0 / v for k, v in med_t.items()},
                "inference_time_snn_over_ann": med_i["snn"] / med_i["ann"],
                "inference_time_snn_over_loop": med_i["snn"] / med_i["loop"],
                "train_time_snn_over_ann": med_t["snn"] / med_t["ann"],
                "train_time_snn_over_loop": med_t["snn"] / med_t["loop"],
            }
        )
        r = rows[-1]
        print(
            f"{name:<7} T={t:<2} B={batch:<3} infer samples/s "
            + " ".join(f"{k}={r['inference_samples_per_s'][k]:8.1f}" for k in VARIANTS)
            + f"  snn/ann={r['inference_time_snn_over_ann']:.2f} | train steps/s "
            + " ".join(f"{k}={r['train_steps_per_s'][k]:6.2f}" for k in VARIANTS)
            + f"  snn/ann={r['train_time_snn_over_ann']:.2f}"
            + f" snn/loop={r['train_time_snn_over_loop']:.2f}",
            flush=True,
        )
    return rows


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: ``--quick`` times T = 1, 2, 4 with
    3 repeats and VGGSNN-48 at width 1/4 (one repeat)."""
    quick_args = ["--steps", "1,2,4", "--repeats", "3", "--vgg-repeats", "1", "--vgg-width", "0.25"]
    return ["--out", str(out / "speed.json"), *(quick_args if quick else [])]


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_args(parser)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    parser.add_argument("--vgg-repeats", type=int, default=3, help="timed rounds for VGGSNN")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/speed.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.demo_batch, args.vgg_batch, args.vgg_width = [1, 2], 2, 1, 1 / 16
        args.repeats, args.vgg_repeats, args.warmup = 1, 1, 1
    torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    rows = []
    for name in args.networks.split(","):
        vgg = name == "vggsnn"
        rows += bench_network(
            name,
            args.vgg_width if vgg else 1.0,
            args.steps,
            args.vgg_batch if vgg else args.demo_batch,
            args.vgg_repeats if vgg else args.repeats,
            args.warmup,
            device,
        )
    record = {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(device),
        "warmup": args.warmup,
        "results": rows,
    }
    return write_record(args.out, record, "raw timings")


if __name__ == "__main__":
    main()
