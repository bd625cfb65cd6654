"""Accuracy against latency for every method: a thin wrapper of :mod:`hsd.bench.accuracy`
(``hsd bench accuracy``), kept so that the commands in docs/benchmarks.md keep working.

    python benchmarks/accuracy_latency.py --out docs/benchmarks/accuracy --set threads=1
    python benchmarks/accuracy_latency.py --config nmnist --folds 5 --out /tmp/nm-cv
"""

import sys

from hsd.bench.accuracy import main

if __name__ == "__main__":
    sys.exit(main())
