"""Thin wrapper of :mod:`hsd.bench.frames` (also ``hsd bench frames``), where the benchmark's
code, options and description live; it keeps the commands in docs/benchmarks.md working."""

from hsd.bench.frames import main

if __name__ == "__main__":
    main()
