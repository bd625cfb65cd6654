"""Benchmark: the share of a training loop's time spent waiting for the feed's next batch.

The loop of :class:`hsd.train.feed.FrameFeed` as the engine runs it (``for batch in feed:
batch.to(device); step``) with the device step **simulated**: ``time.sleep(--step-ms / 1000)``
(default 15 ms, a VGGSNN-48 batch-64 step on a GPU). A sleep, not a busy-wait, because a real
CUDA step releases the GIL while the host waits on the device, as a sleep does; a Python busy
loop would hold the GIL and starve the feed's threads, which no GPU step does. The frames are
random counts in cached-array form (``uint16 [S, N, 2, 48, 48]``, N = 10 teacher frames, T = 2
student frames under ``prefix``, as in ``configs/cifar10dvs-vggsnn.yaml``), batch 64, with that
recipe's augmentation (flip 0.5, roll 5). Each ``num_workers`` of ``--workers`` runs
``--epochs`` shuffled epochs, interleaved over ``--repeats`` rounds; the wait share is the time
spent in ``next(feed)`` over the loop's whole time (the first batch of each epoch included),
reported as the median over rounds.

    hsd bench feed       # or: OMP_NUM_THREADS=1 .venv/bin/python -m hsd.bench.feed

Writes ``feed.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hsd.bench.common import command_line, cpu_model, write_record


def cli_args(out: Path, quick: bool) -> list[str]:
    """What ``hsd bench`` passes: ``--quick`` runs one round of one epoch."""
    quick_args = ["--repeats", "1", "--epochs", "1"] if quick else []
    return ["--out", str(out / "feed.json"), *quick_args]


def wait_share(feed, epochs: int, step_s: float, device: torch.device) -> dict[str, float]:
    """Run ``epochs`` of ``feed`` with a simulated step of ``step_s`` seconds after each batch;
    returns the seconds waited for batches, the loop's total and the batches seen."""
    waited = 0.0
    batches = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        feed.set_epoch(epoch)
        iterator = iter(feed)
        while True:
            t0 = time.perf_counter()
            batch = next(iterator, None)
            waited += time.perf_counter() - t0
            if batch is None:
                break
            batch.to(device)
            batches += 1
            time.sleep(step_s)
    total = time.perf_counter() - start
    return {"waited_s": waited, "total_s": total, "share": waited / total, "batches": batches}


def main(argv: list[str] | None = None) -> int:
    from hsd.data.augment import Augment
    from hsd.train.feed import FrameFeed

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="0,1,2", help="num_workers values, e.g. 0,1,2")
    parser.add_argument("--step-ms", type=float, default=15.0, help="simulated device step")
    parser.add_argument("--samples", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2, help="student T (prefix)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks/feed.json")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    frames = rng.poisson(0.3, (args.samples, args.frames, 2, args.size, args.size))
    frames = frames.astype(np.uint16)
    labels = rng.integers(0, 10, args.samples)
    augment = Augment(flip_p=0.5, max_roll=5)
    runs: dict[int, list[dict]] = {w: [] for w in workers}
    for _ in range(args.repeats):
        for w in workers:
            feed = FrameFeed(
                frames,
                labels,
                np.arange(args.samples),
                batch_size=args.batch_size,
                student_steps=args.steps,
                shuffle=True,
                augment=augment,
                num_workers=w,
                pin_memory=device.type == "cuda",
            )
            runs[w].append(wait_share(feed, args.epochs, args.step_ms / 1e3, device))
    rows = [
        {
            "num_workers": w,
            "wait_share": statistics.median(r["share"] for r in runs[w]),
            "ms_waited_per_batch": statistics.median(
                1e3 * r["waited_s"] / r["batches"] for r in runs[w]
            ),
            "runs": runs[w],
        }
        for w in workers
    ]
    record = {
        "data": "random counts, uint16 [S, N, 2, H, W] in memory",
        "samples": args.samples,
        "batch_size": args.batch_size,
        "size": args.size,
        "frames": args.frames,
        "student_steps": args.steps,
        "augment": {"flip_p": 0.5, "max_roll": 5},
        "step_ms": args.step_ms,
        "step": "time.sleep (releases the GIL as a CUDA step does)",
        "device": str(device),
        "rows": rows,
        "machine": {
            "cpu": cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_1min": os.getloadavg()[0],
        },
        "command": command_line(),
    }
    print(f"simulated {args.step_ms:g} ms step, batch {args.batch_size}, {args.size}x{args.size}")
    print("| num_workers | wait share (median) | ms waited per batch |")
    print("|---|---|---|")
    for r in rows:
        print(
            f"| {r['num_workers']} | {100 * r['wait_share']:.1f}% | "
            f"{r['ms_waited_per_batch']:.2f} |"
        )
    write_record(Path(args.out), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
