"""Anytime distillation and early exit: a thin wrapper of :mod:`hsd.bench.anytime` (see its
docstring for what it measures and writes).

    python benchmarks/anytime_exit.py --folds 5 --out docs/benchmarks/anytime --set threads=1
    python benchmarks/anytime_exit.py --replot --out docs/benchmarks/anytime  # redraw only
"""

import sys

from hsd.bench.anytime import TINY_OVERRIDES, aggregate, main

__all__ = ["TINY_OVERRIDES", "aggregate", "main"]

if __name__ == "__main__":
    sys.exit(main())
