"""Benchmark: integrate one seeded synthetic event stream into 10 frames with hsd and alternatives.

Compares ``hsd.events.frames.integrate_frames`` with tonic's ``ToFrame(n_event_bins=10)`` (only
when tonic is installed; it is GPL and not a dependency of hsd) and SpikingJelly's
``integrate_events_by_fixed_frames_number`` (when ``spikingjelly.datasets`` imports). Each
implementation gets its native input format, built outside the timed region; every timing is the
median of ``--repeats`` calls after one warm-up call, all in this process.

Run from the repository root:

    .venv/bin/python benchmarks/bench_frames.py

Prints a table and writes the raw timings to ``docs/benchmarks/frames.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hsd.bench.common import command_line, cpu_model, write_record
from hsd.events.core import Events, validate_events
from hsd.events.frames import integrate_frames

SENSOR = (128, 128)
N_FRAMES = 10


def synthetic_stream(n_events: int, seed: int) -> Events:
    """Seeded uniform stream on a 128x128 sensor over one second (sorted timestamps)."""
    rng = np.random.default_rng(seed)
    width, height = SENSOR
    return validate_events(
        np.sort(rng.integers(0, 1_000_000, n_events)),
        rng.integers(0, width, n_events),
        rng.integers(0, height, n_events),
        rng.integers(0, 2, n_events),
        SENSOR,
    )


def time_call(fn: Callable[[], np.ndarray], repeats: int) -> list[float]:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def tonic_candidate(events: Events) -> tuple[Callable[[], np.ndarray] | None, str]:
    try:
        import tonic
    except ImportError as error:
        return None, f"not installed: {error}"
    structured = np.empty(
        len(events), dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]
    )
    for name in ("x", "y", "t", "p"):
        structured[name] = getattr(events, name)
    to_frame = tonic.transforms.ToFrame(sensor_size=(*SENSOR, 2), n_event_bins=N_FRAMES)
    return (lambda: to_frame(structured)), f"tonic {tonic.__version__}"


def spikingjelly_candidate(events: Events) -> tuple[Callable[[], np.ndarray] | None, str]:
    try:
        from spikingjelly.datasets import integrate_events_by_fixed_frames_number
    except Exception as error:  # it imports torchvision, which can fail to load
        return None, f"not importable here: {type(error).__name__}: {error}"
    raw = {"t": events.t, "x": events.x, "y": events.y, "p": events.p}
    width, height = SENSOR

    def run() -> np.ndarray:
        return integrate_events_by_fixed_frames_number(raw, "number", N_FRAMES, height, width)

    return run, "spikingjelly"


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: ``--quick`` is a 200,000-event stream."""
    return ["--out", str(out / "frames.json"), *(["--events", "200000"] if quick else [])]


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="stream length")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per method (>= 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/frames.json"))
    args = parser.parse_args(argv)

    events = synthetic_stream(args.events, args.seed)
    reference = integrate_frames(events, N_FRAMES, "count")
    candidates: dict[str, Callable[[], np.ndarray]] = {
        "hsd count": lambda: integrate_frames(events, N_FRAMES, "count"),
        "hsd time": lambda: integrate_frames(events, N_FRAMES, "time"),
        "hsd count 48x48": lambda: integrate_frames(events, N_FRAMES, "count", size=(48, 48)),
    }
    notes: dict[str, str] = {}
    for label, make in (
        ("tonic ToFrame", tonic_candidate),
        ("spikingjelly", spikingjelly_candidate),
    ):
        fn, note = make(events)
        notes[label] = note
        if fn is not None:
            candidates[label] = fn
            same = np.array_equal(np.asarray(fn()), reference)
            notes[label] += f"; output equals hsd count: {same}"

    results = {name: time_call(fn, args.repeats) for name, fn in candidates.items()}
    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians["hsd count"]
    print(f"{len(events):,} events, {SENSOR[0]}x{SENSOR[1]}, {N_FRAMES} frames, ", end="")
    print(f"median of {args.repeats} after warm-up; {cpu_model()}")
    print(f"{'method':<18} {'median ms':>10} {'min ms':>8} {'/ hsd count':>12}")
    for name, times in results.items():
        ms = 1e3 * medians[name]
        print(f"{name:<18} {ms:>10.1f} {1e3 * min(times):>8.1f} {medians[name] / base:>12.2f}")
    for label, note in notes.items():
        print(f"{label}: {note}")

    record = {
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "n_events": len(events),
        "sensor_size": list(SENSOR),
        "n_frames": N_FRAMES,
        "repeats": args.repeats,
        "notes": notes,
        "times_s": results,
        "median_s": medians,
    }
    return write_record(args.out, record, "raw timings")


if __name__ == "__main__":
    main()
