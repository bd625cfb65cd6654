"""Thin wrapper of :mod:`hsd.bench.speed` (also ``hsd bench speed``), where the benchmark's
code, options and description live; it keeps the commands in docs/benchmarks.md working."""

from hsd.bench.speed import main

if __name__ == "__main__":
    main()
