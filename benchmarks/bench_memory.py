"""Thin wrapper of :mod:`hsd.bench.memory` (also ``hsd bench memory``), where the benchmark's
code, options and description live; it keeps the commands in docs/benchmarks.md working."""

from hsd.bench.memory import main

if __name__ == "__main__":
    main()
