"""Benchmark: the frame-cache build of a CIFAR10-DVS-scale dataset with 1..N worker processes.

A rehearsal of preprocessing at paper scale on **emulated** data: ``--count`` recordings
(default 10,000, CIFAR10-DVS's size) are made by :class:`hsd.events.emulator.DVSEmulator` from
random smooth images on a 128x128 sensor (about 150,000 events each with the defaults here, like
CIFAR10-DVS's recordings), written as AEDAT 2.0 in CIFAR10-DVS's folder layout (10 classes), and
read back through ``hsd``'s ``cifar10dvs`` dataset. The cache (``--frames`` frames by event
count, resized to ``--size``, as in ``configs/cifar10dvs-vggsnn.yaml``) is then built with each
worker count of ``--workers`` (default ``1`` up to the cores available), interleaved over
``--repeats`` rounds, each build in a fresh Python process with an empty cache folder, so its peak
memory (``ru_maxrss`` of the process and, separately, of its largest worker) is its own.
Reported: build time (median), the entry's size on disk, peak memory, whether every build wrote
the same bytes (manifest SHA-256 equal to the one-process build's), and the per-file AEDAT 2.0
read time (median over up to 50 files, ``hsd.events.formats.read_events``).

Comparisons on the same files: SpikingJelly's own two-stage pipeline (``CIFAR10DVS`` class:
AEDAT -> ``.npz`` events -> frames) when ``spikingjelly.datasets`` imports; tonic only where it
imports *and* can read AEDAT 2.0 through its ``CIFAR10DVS`` class, which since tonic 1.x reads
AEDAT4 files only, so tonic is reported as skipped with that reason. Either is skipped, saying
why, otherwise. Disk: AEDAT 2.0 takes 8 bytes per event (1,000 recordings of 150k events are
1.2 GB); the generated recordings are deleted at the end unless ``--keep``.

    hsd bench preprocess            # or: .venv/bin/python -m hsd.bench.preprocess --count 1000

Writes ``preprocess.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hsd.bench.common import command_line, cpu_model, write_record

CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def cli_args(out: Path, quick: bool) -> list[str]:
    """What ``hsd bench`` passes: ``--quick`` makes 40 recordings, one round."""
    quick_args = ["--count", "40", "--repeats", "1"] if quick else []
    return ["--out", str(out / "preprocess.json"), *quick_args]


def _emulator():
    from hsd.events.emulator import DVSEmulator

    # threshold 0.14 on random 32x32 images moved by 6 px: about 150k events per recording
    return DVSEmulator(
        sensor_size=(128, 128), image_px=96, amplitude_px=6.0, threshold=0.14, substeps=20
    )


def _generate_chunk(task: tuple[str, list[int], int]) -> int:
    """Write recordings ``indices`` under ``root``; returns the events written."""
    from hsd.events.formats import write_aedat2

    root, indices, seed = task
    emulator = _emulator()
    rng_images = [np.random.default_rng([seed, i]).random((32, 32)) for i in indices]
    events = emulator.emulate_batch(np.stack(rng_images), [seed * 1_000_003 + i for i in indices])
    total = 0
    for i, ev in zip(indices, events, strict=True):
        name = CLASSES[i % len(CLASSES)]
        write_aedat2(Path(root) / name / f"cifar10_{name}_{i // len(CLASSES)}.aedat", ev)
        total += len(ev)
    return total


def generate(root: Path, count: int, seed: int = 0, workers: int = 1) -> int:
    """Write ``count`` emulated recordings in CIFAR10-DVS's layout under ``root`` (the same
    files for the same ``count`` and ``seed``, whatever ``workers``); returns the events."""
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    chunks = [(str(root), list(range(s, min(s + 8, count))), seed) for s in range(0, count, 8)]
    if workers <= 1:
        return sum(map(_generate_chunk, chunks))
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        return sum(pool.imap_unordered(_generate_chunk, chunks))


def _build_once(root: str, cache: str, workers: int, frames: int, size: int) -> dict:
    """One cache build in this process (run in a fresh interpreter by :func:`main`)."""
    from hsd.data import get_dataset, load_frames
    from hsd.events.frames import FrameSpec

    spec = FrameSpec(n_frames=frames, split_by="count", size=(size, size))
    start = time.perf_counter()
    dataset = get_dataset("cifar10dvs", root)
    arrays = load_frames(dataset, spec, cache_dir=cache, progress=False, workers=workers)
    seconds = time.perf_counter() - start
    manifest = json.loads((arrays.path / "manifest.json").read_text("utf-8"))
    disk = sum(p.stat().st_size for p in arrays.path.iterdir())
    return {
        "seconds": seconds,
        "disk_bytes": disk,
        "sha256": manifest["sha256"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _run_build(root: Path, workers: int, frames: int, size: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hsd-bench-cache-") as cache:
        code = (
            "import json, sys; from hsd.bench.preprocess import _build_once; "
            "print(json.dumps(_build_once(*sys.argv[1:3], *map(int, sys.argv[3:]))))"
        )
        env = dict(os.environ, OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, "-c", code, str(root), cache, str(workers), str(frames), str(size)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cache build with {workers} workers failed:\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _read_time(root: Path, limit: int = 50) -> float:
    from hsd.events.formats import read_events

    files = sorted(root.glob("*/*.aedat"))[:limit]
    times = []
    for path in files:
        start = time.perf_counter()
        read_events(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _spikingjelly(root: Path, frames: int) -> tuple[float | None, str]:
    """SpikingJelly's CIFAR10DVS pipeline on the same files (``extract/`` of symlinks)."""
    try:
        from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS
    except Exception as exc:  # any import failure: torchvision mismatch, missing extra
        return None, f"skipped: spikingjelly.datasets does not import ({type(exc).__name__}: {exc})"
    with tempfile.TemporaryDirectory(prefix="hsd-bench-sj-") as sj_root:
        extract = Path(sj_root) / "extract"
        for name in CLASSES:
            (extract / name).mkdir(parents=True)
            for path in (root / name).iterdir():
                (extract / name / path.name).symlink_to(path)
        start = time.perf_counter()
        CIFAR10DVS(sj_root, data_type="frame", frames_number=frames, split_by="number")
        return time.perf_counter() - start, "SpikingJelly CIFAR10DVS (AEDAT -> npz -> frames)"


def _tonic() -> str:
    try:
        import tonic
    except Exception as exc:
        return f"skipped: tonic does not import ({type(exc).__name__}; GPL, never a dependency)"
    return (
        f"skipped: tonic {tonic.__version__}'s CIFAR10DVS reads AEDAT4 files, not these AEDAT 2.0"
    )


def main(argv: list[str] | None = None) -> int:
    from hsd.data.cache import available_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="emulated recordings")
    parser.add_argument("--workers", default=None, help="e.g. 1,2 (default 1..cores)")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="folder for the recordings (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated recordings")
    parser.add_argument("--out", default="docs/benchmarks/preprocess.json")
    args = parser.parse_args(argv)
    if args.count < len(CLASSES) or args.repeats < 1:
        parser.error("--count must be >= 10 (one recording per class at least), --repeats >= 1")
    cores = available_cores()
    workers = (
        list(range(1, cores + 1))
        if args.workers is None
        else [int(w) for w in args.workers.split(",") if w]
    )
    parent = Path(args.data).parent if args.data else Path(tempfile.gettempdir())
    need = int(args.count * 1.25e6)  # about 140k events x 8 bytes per recording, and margin
    free = shutil.disk_usage(parent if parent.exists() else Path.cwd()).free
    if need > free:
        print(
            f"hsd: error: --count {args.count} needs about {need / 1e9:.1f} GB under {parent}, "
            f"{free / 1e9:.1f} GB free; lower --count or point --data elsewhere",
            file=sys.stderr,
        )
        return 2
    root = Path(args.data or tempfile.mkdtemp(prefix="hsd-bench-c10dvs-"))
    try:
        start = time.perf_counter()
        n_events = generate(root, args.count, args.seed, workers=cores)
        generate_s = time.perf_counter() - start
        source_bytes = sum(p.stat().st_size for p in root.glob("*/*.aedat"))
        print(
            f"generated {args.count} emulated recordings, {n_events / args.count:,.0f} events "
            f"each on average, {source_bytes / 1e9:.2f} GB, in {generate_s:.0f} s"
        )
        read_s = _read_time(root)
        load_before = os.getloadavg()
        runs: dict[int, list[dict]] = {w: [] for w in workers}
        for _ in range(args.repeats):
            for w in workers:
                runs[w].append(_run_build(root, w, args.frames, args.size))
        load_after = os.getloadavg()
        sj_s, sj_note = _spikingjelly(root, args.frames)
        tonic_note = _tonic()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    reference = runs[workers[0]][0]["sha256"]
    rows = []
    base = statistics.median(r["seconds"] for r in runs[workers[0]])
    for w in workers:
        med = statistics.median(r["seconds"] for r in runs[w])
        rows.append(
            {
                "workers": w,
                "seconds": med,
                "speedup": base / med,
                "disk_mib": runs[w][0]["disk_bytes"] / 2**20,
                "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[w]),
                "peak_worker_rss_mib": max(r["peak_worker_rss_mib"] for r in runs[w]),
                "same_bytes": all(r["sha256"] == reference for r in runs[w]),
                "runs_s": [r["seconds"] for r in runs[w]],
            }
        )
    record = {
        "data": "emulated (hsd.events.emulator), CIFAR10-DVS layout, AEDAT 2.0, 128x128",
        "count": args.count,
        "events_per_recording": n_events / args.count,
        "source_gb": source_bytes / 1e9,
        "frames": args.frames,
        "size": args.size,
        "read_ms_per_file": read_s * 1e3,
        "rows": rows,
        "spikingjelly": {"seconds": sj_s, "note": sj_note},
        "tonic": {"note": tonic_note},
        "machine": {
            "cpu": cpu_model(),
            "cores": cores,
            "load_avg_1min": [load_before[0], load_after[0]],
        },
        "command": command_line(),
    }
    print(f"AEDAT 2.0 read: {read_s * 1e3:.2f} ms per file (median of up to 50)")
    print(
        "| workers | build s (median) | speed-up | disk MiB "
        "| peak RSS MiB (parent / worker) | same bytes |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['seconds']:.2f} | {r['speedup']:.2f}x | {r['disk_mib']:.0f} | "
            f"{r['peak_rss_mib']:.0f} / {r['peak_worker_rss_mib']:.0f} | {r['same_bytes']} |"
        )
    print(f"SpikingJelly: {sj_note}" + ("" if sj_s is None else f": {sj_s:.1f} s"))
    print(f"tonic: {tonic_note}")
    print(
        "load average (1 min) before / after the builds: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f}"
    )
    write_record(Path(args.out), record)
    if not all(r["same_bytes"] for r in rows):
        print(
            "hsd: error: builds with different worker counts wrote different bytes", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
