"""Benchmark: read and integrate every recording of a dataset into frames, cold and warm.

Cold: an empty cache directory, so every raw file is decoded and integrated. Warm: the same call
again, which memory-maps the cached frames and reads no raw file. Each is timed ``--repeats``
times (a fresh temporary cache for each cold run); medians are printed.

    .venv/bin/python benchmarks/bench_loading.py --dataset nmnist --root NMNIST_DIR

Writes the raw timings to ``docs/benchmarks/loading.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hsd.data import get_dataset, load_frames
from hsd.data.registry import default_root
from hsd.events.frames import FrameSpec


def _nmnist_root() -> Path | None:
    """N-MNIST's folder from the environment (``$HSD_NMNIST_ROOT``, else ``$HSD_DATA_DIR/nmnist``),
    None when unset: ``hsd bench loading`` then times the embedded digits-dvs, so it runs from
    any folder."""
    return default_root("nmnist")


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: nmnist-small when it is at its default
    place (else the embedded digits-dvs); ``--quick`` times one run instead of three."""
    root = _nmnist_root()
    dataset = "nmnist" if root is not None and root.is_dir() else "digits-dvs"
    return [
        "--dataset",
        dataset,
        "--out",
        str(out / "loading.json"),
        *(["--repeats", "1"] if quick else []),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="nmnist")
    parser.add_argument(
        "--root",
        default=None,
        help="dataset folder (nmnist: default $HSD_NMNIST_ROOT, else $HSD_DATA_DIR/nmnist)",
    )
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks/loading.json")
    args = parser.parse_args(argv)
    if args.root is None and args.dataset == "nmnist":
        args.root = _nmnist_root()
        if args.root is None:
            parser.error("give --root N-MNIST_DIR (or set HSD_NMNIST_ROOT)")

    spec = FrameSpec(n_frames=args.frames)
    cold, warm, index = [], [], []
    samples = 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            dataset = get_dataset(args.dataset, args.root)
            t1 = time.perf_counter()
            arrays = load_frames(dataset, spec, cache_dir=cache, progress=False)
            t2 = time.perf_counter()
            again = load_frames(dataset, spec, cache_dir=cache, progress=False)
            t3 = time.perf_counter()
            assert again.frames.shape == arrays.frames.shape
            samples = len(arrays)
            index.append(t1 - t0)
            cold.append(t2 - t1)
            warm.append(t3 - t2)
    result = {
        "dataset": args.dataset,
        "root": args.root,
        "samples": samples,
        "frames": args.frames,
        "index_s": statistics.median(index),
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "runs": {"index": index, "cold": cold, "warm": warm},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.dataset}: {samples} samples into {args.frames} frames; medians of "
        f"{args.repeats}: index {result['index_s']:.3f} s, read + integrate (cold cache) "
        f"{result['cold_s']:.2f} s, reload (warm cache) {result['warm_s']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
