"""``hsd bench``: the benchmarks of hsd, one module per benchmark.

Design: the benchmark logic lives in the package (``hsd.bench.accuracy``, ``speed``, ``memory``,
``energy``, ``frames``, ``loading``, ``feed``, ``preprocess``, ``decoding``, ``early``; the shared
fold/seed/method runner in ``hsd.bench.runner``, the anytime benchmark in ``hsd.bench.anytime``)
so that ``hsd bench`` can run it wherever hsd is installed; the scripts under ``benchmarks/`` are
thin wrappers that call ``hsd.bench.<name>.main`` and keep the commands written in
docs/benchmarks.md working. Every module has ``main(argv)`` (its own command line, the
script's) and ``cli_args(out, quick)`` (the arguments ``hsd bench`` gives it: its output under
``out`` and, with ``quick``, small settings). This is a top layer, like the CLI: it may import
any part of hsd and nothing imports it but the CLI and ``hsd.demo`` (which runs its comparison
with ``hsd.bench.runner``).

``hsd bench early`` (the fine-time protocol of issue 13, hours on N-MNIST) runs only when named.
``hsd bench --quick`` runs all of them on small settings in a few minutes on a 2-core CPU; without
``--quick`` the accuracy benchmark alone trains every method on two datasets for three seeds
(about 40 minutes at one thread). Optional comparisons (tonic, SpikingJelly's frame integration and
operation counters) are skipped with a note when they cannot be imported; tonic is GPL and never a
dependency of hsd.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["BENCHMARKS", "BY_NAME_ONLY", "run_benchmarks"]

# name -> what it measures, in the order ``hsd bench`` runs them (energy after accuracy: it
# counts the operations of the network the accuracy benchmark trained).
BENCHMARKS = {
    "accuracy": "accuracy against steps and event time, every method, both protocols, seeds",
    "speed": "inference and training speed: ANN, SNN (eager, fast), SpikingJelly, a time loop",
    "memory": "peak training memory against T",
    "energy": "synaptic operations and estimated energy from measured firing rates",
    "frames": "integrating events into frames against tonic and SpikingJelly",
    "loading": "reading a dataset into frames, cold and warm cache",
    "feed": "share of a simulated 15 ms step's loop spent waiting for batches",
    "preprocess": "frame-cache build of emulated CIFAR10-DVS-scale data with 1..N processes",
    "decoding": "event-file decoding speed and memory, hsd against the peers a user would pick",
    "early": "decisions after 10 ms: every method at fine time steps, k-fold CV, paired tests",
}
# Run only when named (``hsd bench early``): the full protocol takes hours.
BY_NAME_ONLY = frozenset({"early"})


def run_benchmarks(
    names: Sequence[str] | None = None,
    *,
    out: str | Path = "bench-out",
    quick: bool = False,
    overrides: Sequence[str] = (),
) -> dict[str, float]:
    """Run the benchmarks ``names`` (default all but :data:`BY_NAME_ONLY`, in :data:`BENCHMARKS`
    order) writing under ``out``; ``overrides`` (``key=value``) go to the recipes of the
    accuracy and early benchmarks. Returns the seconds each took."""
    chosen = [n for n in BENCHMARKS if (n in names if names else n not in BY_NAME_ONLY)]
    unknown = sorted(set(names or ()) - set(BENCHMARKS))
    if unknown:
        from hsd.errors import ConfigError

        raise ConfigError(
            f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for name in tqdm(chosen, desc="hsd bench", unit="benchmark"):
        module = importlib.import_module(f"hsd.bench.{name}")
        args = module.cli_args(out, quick)
        if name in ("accuracy", "early"):
            args += [f"--set={o}" for o in overrides]
        tqdm.write(f"== {name}: {BENCHMARKS[name]}")
        start = time.perf_counter()
        module.main(args)
        seconds[name] = round(time.perf_counter() - start, 1)
        tqdm.write(f"== {name}: {seconds[name]:.0f} s")
    return seconds
