"""Decisions after 10 ms: a thin wrapper of :mod:`hsd.bench.early` (see its docstring).

    python benchmarks/early_decisions.py --root NMNIST_DIR --frames 30 --frame-ms 10 \\
        --folds 5 --seeds 0,1 --out docs/benchmarks/early --set threads=1 --set progress=false
    python benchmarks/early_decisions.py --quick --out /tmp/early
"""

import sys

from hsd.bench.early import main

if __name__ == "__main__":
    sys.exit(main())
