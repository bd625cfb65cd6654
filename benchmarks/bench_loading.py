"""Thin wrapper of :mod:`hsd.bench.loading` (also ``hsd bench loading``), where the benchmark's
code, options and description live; it keeps the commands in docs/benchmarks.md working."""

from hsd.bench.loading import main

if __name__ == "__main__":
    main()
