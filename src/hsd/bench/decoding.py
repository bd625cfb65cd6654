"""Benchmark: decoding event files, hsd against the decoders a user would pick, side by side.

For every file (the recordings in ``--folder`` and large synthetic files of every format hsd
writes) and every decoder that reads its format, one fresh subprocess imports the decoder,
decodes the file ``--repeats`` times and reports the median time and the peak RSS of a decode
above the RSS the process held just before it (the kernel's peak mark is reset before each
decode; decoders never share memory accounting).

Decoders: hsd's ``read_events`` and ``iter_events`` (chunks of 2**20 events, summed without
keeping them); expelliarmus (Prophesee EVT 2.0 / 3.0 / DAT); aedat and dv-processing (AEDAT 4);
tonic's readers; faery and event_stream (Event Stream); SpikingJelly's readers. Each peer is
skipped, saying why, where it does not import. Speeds are events per second of the decoder's own
output (expelliarmus's EVT 3.0 timestamps are wrong, see ``hsd.events.formats.prophesee``; its
speed is still shown).

    hsd bench decoding --folder DIR [--events 2000000] [--repeats 3] [--out decoding.json]

Writes the rows as JSON (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: decoder -> formats (hsd format ids) it reads
PEERS: dict[str, tuple[str, ...]] = {
    "hsd": (
        "atis-bin",
        "aedat2",
        "aedat3.1",
        "aedat4",
        "evt2",
        "evt3",
        "prophesee-dat",
        "event-stream",
    ),
    "hsd-chunked": (
        "atis-bin",
        "aedat2",
        "aedat3.1",
        "aedat4",
        "evt2",
        "evt3",
        "prophesee-dat",
        "event-stream",
    ),
    "expelliarmus": ("evt2", "evt3", "prophesee-dat"),
    "aedat": ("aedat4",),
    "dv-processing": ("aedat4",),
    "tonic": ("atis-bin", "aedat4"),
    "faery": ("event-stream", "evt2", "evt3", "prophesee-dat", "aedat4"),
    "event_stream": ("event-stream",),
    "spikingjelly": ("aedat2",),
}
_MODULES = {
    "expelliarmus": "expelliarmus",
    "aedat": "aedat",
    "dv-processing": "dv_processing",
    "tonic": "tonic",
    "faery": "faery",
    "event_stream": "event_stream",
    "spikingjelly": "spikingjelly.datasets",
}


def cli_args(out: Path, quick: bool) -> list[str]:
    """``hsd bench`` arguments: the synthetic files only (200,000 events with ``--quick``), plus
    ``$HSD_EVENT_FILES`` when it names a folder of recordings."""
    args = ["--out", str(out / "decoding.json")]
    if os.environ.get("HSD_EVENT_FILES"):
        args += ["--folder", os.environ["HSD_EVENT_FILES"]]
    return args + (["--events", "200000", "--repeats", "1"] if quick else [])


# --- the worker (one decoder, one file, in its own process) ------------------------------------


def _decode(decoder: str, fmt: str, path: str):
    """A callable decoding ``path`` with ``decoder``; returns the number of events decoded."""
    if decoder == "hsd":
        from hsd.events.formats import read_events

        return lambda: len(read_events(path, on_unsorted="keep"))
    if decoder == "hsd-chunked":
        from hsd.events.formats import iter_events

        return lambda: sum(
            len(c) for c in iter_events(path, chunk_events=1 << 20, on_unsorted="keep")
        )
    if decoder == "expelliarmus":
        import expelliarmus

        enc = {"evt2": "EVT2", "evt3": "EVT3", "prophesee-dat": "DAT"}[fmt]
        return lambda: len(expelliarmus.Wizard(encoding=enc, fpath=path).read())
    if decoder == "aedat":
        import aedat

        def run() -> int:
            return sum(len(p["events"]) for p in aedat.Decoder(path) if "events" in p)

        return run
    if decoder == "dv-processing":
        import dv_processing as dv

        def run() -> int:
            rec = dv.io.MonoCameraRecording(path)
            n = 0
            while rec.isRunning():
                batch = rec.getNextEventBatch()
                if batch is None:
                    break
                n += len(batch.numpy())
            return n

        return run
    if decoder == "spikingjelly":
        from spikingjelly.datasets.cifar10_dvs import load_raw_events

        return lambda: len(load_raw_events(path)["t"])
    if decoder == "tonic":
        import tonic.io

        if fmt == "atis-bin":
            return lambda: len(tonic.io.read_mnist_file(path, dtype=tonic.io.make_structured_array))
        return lambda: len(tonic.io.read_aedat4(path))
    if decoder == "faery":
        import faery

        return lambda: sum(len(c) for c in faery.events_stream_from_file(path))
    if decoder == "event_stream":
        import event_stream

        def run() -> int:
            n = 0
            with event_stream.Decoder(path) as dec:
                for chunk in dec:
                    n += len(chunk)
            return n

        return run
    raise ValueError(decoder)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset the kernel's peak-RSS mark of this process (Linux: ``clear_refs`` 5) and return the
    current RSS (KiB); falls back to ``ru_maxrss`` where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak() -> int:
    try:
        return _status_kib("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worker(decoder: str, fmt: str, path: str, repeats: int) -> dict:
    try:
        run = _decode(decoder, fmt, path)
    except Exception as exc:  # a peer that does not import: reported, never fatal
        return {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    seconds, events, peaks = [], 0, []
    for _ in range(repeats):
        base = _reset_peak()  # memory of each decode above what the process held before it
        start = time.perf_counter()
        try:
            events = run()
        except Exception as exc:
            return {"skipped": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        seconds.append(time.perf_counter() - start)
        peaks.append(max(0, _peak() - base) / 1024)
    return {"seconds": seconds, "events": int(events), "peak_mib": max(peaks)}


def _measure(decoder: str, fmt: str, path: Path, repeats: int) -> dict:
    code = (
        "import json, sys; from hsd.bench.decoding import _worker; "
        "print(json.dumps(_worker(*sys.argv[1:4], int(sys.argv[4]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, decoder, fmt, str(path), str(repeats)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:120]
        return {"skipped": f"crashed (exit {proc.returncode}): {tail}"}
    return json.loads(lines[-1])


# --- synthetic files -----------------------------------------------------------------------------


def _synthetic(folder: Path, n: int) -> list[Path]:
    from hsd.events.core import Events
    from hsd.events.formats import (
        write_aedat2,
        write_aedat31,
        write_atis_bin,
        write_dat,
        write_evt2,
        write_evt3,
    )
    from hsd.events.formats.eventstream import write_event_stream

    rng = np.random.default_rng(0)
    t = np.cumsum(rng.integers(0, 3, n))  # about 1 event a microsecond, time-ordered

    def events(size):
        return Events(
            t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), size
        )

    files = []
    for name, writer, size in [
        ("synthetic.bin", write_atis_bin, (34, 34)),
        ("synthetic.aedat", write_aedat2, (128, 128)),
        ("synthetic-31.aedat", write_aedat31, (128, 128)),
        ("synthetic.es", write_event_stream, (640, 480)),
        ("synthetic-evt2.raw", write_evt2, (1280, 720)),
        ("synthetic-evt3.raw", write_evt3, (1280, 720)),
        ("synthetic.dat", write_dat, (1280, 720)),
    ]:
        path = folder / name
        writer(path, events(size))
        files.append(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=None, help="a folder of recordings to decode too")
    parser.add_argument("--events", type=int, default=2_000_000, help="events per synthetic file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks/decoding.json")
    args = parser.parse_args(argv)

    from hsd.events.formats import SUPPORTED_EXTENSIONS, detect_format

    rows = []
    with tempfile.TemporaryDirectory(prefix="hsd-decoding-") as tmp:
        files = []
        if args.folder:
            files += sorted(
                p for p in Path(args.folder).iterdir() if p.suffix.lower() in SUPPORTED_EXTENSIONS
            )
        if args.events > 0:
            files += _synthetic(Path(tmp), args.events)
        for path in files:
            try:
                fmt = detect_format(path)
            except Exception as exc:
                print(f"{path.name}: skipped ({exc})", flush=True)
                continue
            decoders = [d for d, fmts in PEERS.items() if fmt in fmts]
            for decoder in decoders:
                result = _measure(decoder, fmt, path, args.repeats)
                row = {
                    "file": path.name,
                    "format": fmt,
                    "bytes": path.stat().st_size,
                    "decoder": decoder,
                }
                row.update(result)
                if "seconds" in row:
                    row["median_s"] = statistics.median(row["seconds"])
                    row["mev_per_s"] = (
                        row["events"] / row["median_s"] / 1e6 if row["median_s"] else None
                    )
                rows.append(row)
                print(_line(row), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"repeats": args.repeats, "synthetic_events": args.events, "rows": rows}, indent=1
        )
        + "\n"
    )
    print()
    print(markdown(rows))
    return 0


def _line(row: dict) -> str:
    if "skipped" in row:
        return f"{row['file']:<32} {row['decoder']:<14} skipped: {row['skipped']}"
    return (
        f"{row['file']:<32} {row['decoder']:<14} {row['events']:>10} events "
        f"{row['mev_per_s']:7.1f} Mev/s  {row['peak_mib']:7.1f} MiB"
    )


def markdown(rows: list[dict]) -> str:
    """One line per (file, decoder): events, Mev/s, peak MiB above the imports, time relative to
    hsd's ``read_events`` on the same file (below 1: faster than hsd)."""
    hsd = {r["file"]: r["median_s"] for r in rows if r["decoder"] == "hsd" and "median_s" in r}
    lines = [
        "| file | format | decoder | events | Mev/s | peak MiB | time / hsd |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(
                f"| {r['file']} | {r['format']} | {r['decoder']} | skipped: {r['skipped']} | | | |"
            )
            continue
        ratio = r["median_s"] / hsd[r["file"]] if hsd.get(r["file"]) else float("nan")
        lines.append(
            f"| {r['file']} | {r['format']} | {r['decoder']} | {r['events']:,} | "
            f"{r['mev_per_s']:.1f} | {r['peak_mib']:.0f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
