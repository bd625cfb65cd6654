"""Benchmark: inference and training speed of hsd's SNN against the same network as an ANN,
SpikingJelly's stock neurons and a plain PyTorch time loop, for the demo network and VGGSNN-48 at
several T.

Five variants of one network, same weights, measured interleaved in this process (each repeat
runs every variant once, in a rotating order):

* ``ann``: the QCFS network (the teacher), eager, on the same T frames, every frame processed
  independently (``[T * B]`` folded into the batch): the dense lower bound;
* ``snn``: its conversion (``hsd.models.convert_to_snn``, multi-step ``QCFSNeuron``), eager, the
  Python loop over T (``multistep_impl="loop"``, the reference; on CUDA too);
* ``snn_fast``: hsd's fastest path on this device: on CUDA the same network with the fused Triton
  kernel (:mod:`hsd.models.qcfs_triton`, ``multistep_impl="auto"``); elsewhere the network
  compiled by :func:`hsd.train.compiled.compile_network` (``torch.compile``, static shapes, as
  ``compile=true`` does), one fresh dynamo cache per (network, T) so no recompile limit is hit;
* ``spikingjelly``: SpikingJelly 2.0's **stock** network of the same architecture and weights:
  every ``QCFSNeuron`` replaced by ``neuron.IFNode(v_threshold=<the layer's threshold>,
  v_reset=None, surrogate_function=PiecewiseQuadratic(alpha=1), step_mode="m")`` (soft reset,
  triangle surrogate: the same dynamics but v0 = 0 instead of thr / 2, output spike instead of
  thr * spike, threshold not trained, so its outputs differ; the work per step is the same).
  SpikingJelly 2.0 has no ``backend`` argument: ``functional.if_multi_step`` picks its registered
  implementation by device (its Triton / CUDA kernels on CUDA, its CPU op with a hand-written
  backward elsewhere). The peer is **eager** by default, what a SpikingJelly user runs and what the
  issue's goal names ("SpikingJelly's stock network"); ``--spikingjelly-compile`` compiles it as
  ``snn_fast`` is compiled (on CPU the like-for-like peer of a compiled ``snn_fast``; it doubles
  the compilation time, 10-40 s per network, T and phase on the 2-core CPU, so the published run
  leaves it off; ``record["spikingjelly_compiled"]`` says which);
* ``loop``: the SNN with every ``QCFSNeuron`` replaced by :class:`PlainIF`, a hand-written loop
  over T with the same IF dynamics (soft reset, v0 = thr / 2, spike when v >= thr, output
  thr * spike, triangle surrogate gradient in a small ``autograd.Function``). The script checks
  that its outputs and gradients equal the SNN's (1e-4), and records how far ``snn_fast``'s are
  from ``snn``'s (``snn_fast_vs_snn_max_abs_diff``; noted when above 1e-3: compiled code rounds
  differently, and a membrane at the threshold can then spike in one and not the other).

Inference: eval mode, ``torch.no_grad``, one batch ``[T, B, P, H, W]``. Training step: train mode,
forward, cross-entropy of the mean logits, backward, SGD step (lr 0, so every repeat computes the
same thing). ``--warmup`` untimed rounds come first (the compiled variants compile in the first:
its time is recorded as ``first_call_s``), then ``--repeats`` timed rounds.

Output (``speed.json``): ``rows`` holds **one row per timed repeat**, ``{"network", "T",
"phase": "infer" | "train", "variant", "seconds", "repeat"}`` (seconds per batch, wall clock), so
a script computes any statistic from them; ``summary`` holds, per (network, T, phase), the
medians, every variant's median time over the ANN's and ``snn_fast / spikingjelly``, which is
what the printed table shows (ratios of medians). Reading the ratios from ``rows``::

    med = median(r["seconds"] for r in rows if (r["network"], r["T"], r["phase"],
                 r["variant"]) == (net, t, phase, variant))

Run from the repository root:

    .venv/bin/python benchmarks/bench_speed.py

Prints a table and writes the record to ``docs/benchmarks/speed.json``. ``--quick`` (``hsd bench
speed --quick``) and ``--tiny`` are smoke runs of seconds: tiny networks, and ``snn_fast``
compiled with dynamo's ``eager`` backend (the graph capture without inductor's code generation),
so their ``snn_fast`` timings say nothing about speed.
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
from hsd.train.compiled import compile_network

VARIANTS = ("ann", "snn", "snn_fast", "spikingjelly", "loop")
PHASES = ("infer", "train")
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


def spikingjelly_copy(snn: nn.Module) -> nn.Module:
    """A copy of ``snn`` with every :class:`QCFSNeuron` replaced by SpikingJelly's stock
    multi-step ``IFNode`` (soft reset, threshold = the layer's, triangle surrogate; module
    docstring for how it differs)."""
    from spikingjelly.activation_based import neuron, surrogate

    stock = copy.deepcopy(snn)
    for name, module in list(stock.named_modules()):
        if isinstance(module, QCFSNeuron):
            parent_name, _, child = name.rpartition(".")
            node = neuron.IFNode(
                v_threshold=float(module.v_threshold.detach()),
                v_reset=None,
                surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0),
                step_mode="m",
            )
            setattr(stock.get_submodule(parent_name), child, node)
    return stock


def build_variants(name: str, width: float, seed: int = 0) -> dict[str, nn.Module]:
    """Eager ``{"ann", "snn", "snn_fast", "spikingjelly", "loop"}`` versions of one network with
    the same weights (N-MNIST-like input: 2 polarities, 10 classes; thresholds 2.0 as in
    ``configs/nmnist.yaml``). ``snn`` runs the Python loop; ``snn_fast`` is a copy that selects
    the fused kernel on CUDA (:func:`fast_variants` compiles it elsewhere)."""
    torch.manual_seed(seed)
    ann = create_model(
        name, in_channels=2, num_classes=10, input_size=INPUT[name], width=width, init_threshold=2.0
    )
    snn = convert_to_snn(ann)
    fast = copy.deepcopy(snn)
    for module in snn.modules():
        if isinstance(module, QCFSNeuron):
            module.multistep_impl = "loop"
    return {
        "ann": ann,
        "snn": snn,
        "snn_fast": fast,
        "spikingjelly": spikingjelly_copy(snn),
        "loop": plain_loop_copy(snn),
    }


def fast_variants(
    models: dict[str, nn.Module], device: torch.device, backend: str, compile_sj: bool
) -> dict[str, nn.Module]:
    """The modules to time: ``snn_fast`` compiled off CUDA (and ``spikingjelly`` with
    ``compile_sj``), with a fresh dynamo cache; the others as they are."""
    torch._dynamo.reset()
    out = dict(models)
    if device.type != "cuda":
        out["snn_fast"] = compile_network(models["snn_fast"], backend=backend)
    if compile_sj:
        out["spikingjelly"] = compile_network(models["spikingjelly"], backend=backend)
    return out


def make_input(name: str, steps: int, batch: int, seed: int = 0) -> Tensor:
    """Event-count-like frames ``[T, B, 2, S, S]`` float32: Poisson counts of mean 0.5."""
    g = torch.Generator().manual_seed(seed)
    size = INPUT[name]
    return torch.poisson(torch.full((steps, batch, 2, size, size), 0.5), generator=g)


def max_diff(models: dict[str, nn.Module], a: str, b: str, x: Tensor) -> float:
    """Max abs difference of logits and of the first conv's weight gradient, ``a`` vs ``b``
    (train mode: forward, ``logsumexp`` of the mean logits, backward)."""
    grads = {}
    for key in (a, b):
        model = models[key].train()
        model.zero_grad()
        reset_states(model)
        out = model(x)
        out.mean(0).logsumexp(1).sum().backward()
        grads[key] = (out.detach(), next(model.parameters()).grad.clone())
        model.zero_grad()
        reset_states(model)
    return max(float((p - q).abs().max()) for p, q in zip(grads[a], grads[b], strict=True))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call of every function, measured A, B, C, B, C, A, ... (rotating order), and
    the seconds of each one's first (warm-up) call, which includes any compilation."""
    names = list(fns)
    first: dict[str, float] = {}
    for w in range(warmup):
        for name in names:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            if w == 0:
                first[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times, first


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


def summarise(
    network: str, steps: int, phase: str, times: dict[str, list[float]], first: dict[str, float]
) -> dict[str, object]:
    """Medians and ratios of medians of one (network, T, phase)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "network": network,
        "T": steps,
        "phase": phase,
        "median_s": med,
        "first_call_s": first,
        "time_over_ann": {k: med[k] / med["ann"] for k in med},
        "snn_fast_over_spikingjelly": med["snn_fast"] / med["spikingjelly"],
        "snn_fast_over_snn": med["snn_fast"] / med["snn"],
    }


def bench_network(
    name: str,
    width: float,
    steps: Sequence[int],
    batch: int,
    repeats: int,
    warmup: int,
    device: torch.device,
    *,
    backend: str = "inductor",
    compile_sj: bool = False,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """``(rows, summaries)`` of one network at every T (module docstring)."""
    eager = {k: m.to(device) for k, m in build_variants(name, width).items()}
    rows: list[dict[str, object]] = []
    summaries: list[dict[str, object]] = []
    for t in steps:
        x = make_input(name, t, batch).to(device)
        y = torch.arange(batch, device=device) % 10
        models = fast_variants(eager, device, backend, compile_sj)
        diff = max_diff(models, "snn", "loop", x)
        if diff > 1e-4:
            raise RuntimeError(f"{name} T={t}: plain loop differs from the SNN by {diff:.3g}")
        start = time.perf_counter()
        fast_diff = max_diff(models, "snn", "snn_fast", x)  # compiles snn_fast's training graph
        fast_check_s = time.perf_counter() - start
        if fast_diff > 1e-3:  # recorded; a flipped spike at the threshold moves logits far
            print(
                f"note: {name} T={t}: snn_fast differs from the SNN by {fast_diff:.3g} (logits "
                "or first-layer gradient; compiled float arithmetic can flip a spike whose "
                "membrane sits at the threshold)",
                flush=True,
            )
        for phase in PHASES:
            for m in models.values():
                m.train(phase == "train")
            fns = {
                k: inference_fn(models[k], x) if phase == "infer" else train_fn(models[k], x, y)
                for k in VARIANTS
            }
            times, first = interleaved(fns, repeats, warmup, device)
            rows += [
                {"network": name, "T": t, "phase": phase, "variant": k, "seconds": s, "repeat": i}
                for k in VARIANTS
                for i, s in enumerate(times[k])
            ]
            summary = summarise(name, t, phase, times, first)
            summary.update(
                width=width,
                batch=batch,
                loop_vs_snn_max_abs_diff=diff,
                snn_fast_vs_snn_max_abs_diff=fast_diff,
                snn_fast_check_s=fast_check_s,
            )
            summaries.append(summary)
        print_rows(summaries[-2:])
    return rows, summaries


HEADER = (
    f"{'network':<7} {'T':>2} {'phase':<5} "
    + " ".join(f"{k:>12}" for k in VARIANTS)
    + "   time/ann: "
    + " ".join(f"{k:>6}" for k in VARIANTS[1:])
    + "  fast/sj"
)


def print_rows(summaries: Sequence[dict[str, object]]) -> None:
    """One line per (network, T, phase): milliseconds per batch (median) of every variant, then
    each variant's median time over the ANN's and snn_fast / spikingjelly."""
    for r in summaries:
        med, ratio = r["median_s"], r["time_over_ann"]
        print(
            f"{r['network']:<7} {r['T']:>2} {r['phase']:<5} "
            + " ".join(f"{1000 * med[k]:10.2f}ms" for k in VARIANTS)
            + "   time/ann: "
            + " ".join(f"{ratio[k]:6.2f}" for k in VARIANTS[1:])
            + f"  {r['snn_fast_over_spikingjelly']:7.2f}",
            flush=True,
        )


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: ``--quick`` is ``--tiny`` (seconds;
    module docstring)."""
    return ["--out", str(out / "speed.json"), *(["--tiny"] if quick else [])]


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_args(parser)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    parser.add_argument("--vgg-repeats", type=int, default=3, help="timed rounds for VGGSNN")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (>= 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--spikingjelly-compile",
        action="store_true",
        help="compile the SpikingJelly network too (off: its stock eager network)",
    )
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend of snn_fast (CPU)"
    )
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/speed.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.demo_batch, args.vgg_batch, args.vgg_width = [1, 2], 2, 1, 1 / 16
        args.repeats, args.vgg_repeats, args.warmup = 1, 1, 1
        args.compile_backend = "eager"
    args.warmup = max(1, args.warmup)
    torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    rows, summaries = [], []
    print(HEADER)
    for name in args.networks.split(","):
        vgg = name == "vggsnn"
        r, s = bench_network(
            name,
            args.vgg_width if vgg else 1.0,
            args.steps,
            args.vgg_batch if vgg else args.demo_batch,
            args.vgg_repeats if vgg else args.repeats,
            args.warmup,
            device,
            backend=args.compile_backend,
            compile_sj=args.spikingjelly_compile,
        )
        rows += r
        summaries += s
    record = {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(device),
        "warmup": args.warmup,
        "snn_fast": "fused triton kernel" if device.type == "cuda" else "torch.compile",
        "compile_backend": None if device.type == "cuda" else args.compile_backend,
        "spikingjelly_compiled": args.spikingjelly_compile,
        "rows": rows,
        "summary": summaries,
    }
    return write_record(args.out, record, "raw timings")


if __name__ == "__main__":
    main()
