"""A variant of anytime distillation against the default one, on validation splits only: a thin
wrapper of :func:`hsd.bench.anytime.variants_main` (see its docstring).

    python benchmarks/anytime_variants.py --runs OUT_OF_ANYTIME_EXIT --out OUT \\
        --set distill.prefix_weights=harmonic --set threads=1 --set progress=false
"""

import sys

from hsd.bench.anytime import variants_main as main

if __name__ == "__main__":
    sys.exit(main())
