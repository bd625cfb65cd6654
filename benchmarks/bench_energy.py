"""Thin wrapper of :mod:`hsd.bench.energy` (also ``hsd bench energy``), where the benchmark's
code, options and description live; it keeps the commands in docs/benchmarks.md working."""

from hsd.bench.energy import main

if __name__ == "__main__":
    main()
