"""Latency of ``hsd stream`` on a DV network stream, on loopback (docs/benchmarks.md, "Live
streams").

    OMP_NUM_THREADS=1 python benchmarks/live_latency.py [--checkpoint CKPT] [--recordings 20]
        [--frame-events 333] [--batch-events 64] [--json out.json]

A sender process (benchmarks/dv_send.py, dv-processing's NetworkWriter on 127.0.0.1) sends
``--recordings`` real N-MNIST test recordings of ../shared/data/nmnist-small one after the
other, in real time, in batches of ``--batch-events``; this process reads ``dv://127.0.0.1:PORT``
with :class:`hsd.events.sources.NetworkSource` and classifies with
:class:`hsd.stream.StreamClassifier` (count framing, no exit: a decision every frame), exactly as
``hsd stream CKPT dv://127.0.0.1:PORT --frame-events K --no-exit`` does. Two latencies per
decision, median and p99:

* arrival -> decision: from the moment dv-processing handed over the batch holding the event
  that completed the frame to the decision (what ``hsd stream --json`` reports as
  ``latency_ms``);
* sent -> decision: from the sender's ``writeEvents`` of that batch (CLOCK_MONOTONIC, shared by
  both processes) to the decision: adds the transfer, decoding and any queueing in the reader.

Without ``--checkpoint`` the network is the ``demo`` architecture of the N-MNIST tests
(34x34, width 0.25) with random weights: latency depends on the architecture, not on what it
learnt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _demo_checkpoint() -> dict:
    import torch

    from hsd.config import config_to_dict, load_config
    from hsd.models import convert_to_snn, create_model

    kwargs = {"in_channels": 2, "num_classes": 10, "input_size": 34, "width": 0.25, "levels": 8}
    torch.manual_seed(0)
    snn = convert_to_snn(create_model("demo", **kwargs))
    return {
        "model": {"name": "demo", "kwargs": kwargs, "spiking": True},
        "state_dict": snn.state_dict(),
        "classes": [str(i) for i in range(10)],
        "stage": "converted",
        "epoch": 0,
        "metrics": {},
        "config": config_to_dict(load_config()),
        "manifest_hash": None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "nmnist-small"))
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--frame-events", type=int, default=333)
    parser.add_argument("--batch-events", type=int, default=64)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    from hsd.events.core import Events
    from hsd.events.formats import read_events, write_atis_bin
    from hsd.events.sources import NetworkSource
    from hsd.stream import ExitPolicy, StreamClassifier, stream_source

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    files = sorted(Path(args.data, "Test").glob("*/*.bin"))[::3][: args.recordings]
    parts, offset = [], 0
    for f in files:  # one after the other, 1 ms apart
        e = read_events(f, sensor_size=(34, 34))
        t = e.t - e.t[0] + offset
        parts.append(Events(t, e.x, e.y, e.p, e.sensor_size))
        offset = int(t[-1]) + 1000
    events = Events.concatenate(parts)
    ckpt = _demo_checkpoint() if args.checkpoint is None else args.checkpoint
    classifier = StreamClassifier(
        ckpt, frame_events=args.frame_events, policy=ExitPolicy(None, None), sensor_size=(34, 34)
    )
    with tempfile.TemporaryDirectory() as tmp:
        rec, log = Path(tmp, "stream.bin"), Path(tmp, "sent.jsonl")
        write_atis_bin(rec, events)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        sender = subprocess.Popen(
            [
                *(sys.executable, str(REPO / "benchmarks" / "dv_send.py"), str(rec), str(port)),
                *("--realtime", "--batch-events", str(args.batch_events), "--log", str(log)),
                *("--sensor-size", "34,34"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sender.stdout.readline().startswith("dv_send: listening")
            decided = []
            with NetworkSource(f"dv://127.0.0.1:{port}", "127.0.0.1", port) as source:
                for d in stream_source(classifier, source):
                    decided.append((d, time.perf_counter()))
            sender.wait(30)
            sent = [json.loads(line) for line in log.read_text().splitlines()]
        finally:
            sender.kill()
    ends = np.cumsum([row["events"] for row in sent])
    sent_s = np.array([row["sent_s"] for row in sent])
    arrival = np.array([d.latency_ms for d, _ in decided])
    batch = np.searchsorted(ends, [d.events for d, _ in decided], side="left")
    e2e = (np.array([when for _, when in decided]) - sent_s[batch]) * 1000.0
    result = {
        "events": len(events),
        "recordings": len(files),
        "stream_s": events.duration_us / 1e6,
        "decisions": len(decided),
        "frame_events": args.frame_events,
        "batch_events": args.batch_events,
        "threads": torch.get_num_threads(),
        "arrival_to_decision_ms": {
            "median": float(np.median(arrival)),
            "p99": float(np.percentile(arrival, 99)),
        },
        "sent_to_decision_ms": {
            "median": float(np.median(e2e)),
            "p99": float(np.percentile(e2e, 99)),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
