"""Send an event file as an iniVation DV network event stream (dv-processing's NetworkWriter),
for loopback tests and the live-stream latency benchmark (docs/benchmarks.md, "Live streams").

    python benchmarks/dv_send.py RECORDING PORT [--batch-events 1024] [--realtime] [--hold]
        [--log sent.jsonl] [--sensor-size 34,34]

Listens on 127.0.0.1:PORT only, waits up to --wait-s seconds for one client, sends the
recording in batches of --batch-events (with --realtime each batch when its last event is due,
the first event at the start), waits until the write queue is empty and then ends the process,
which closes the connection: the receiver sees the end of the stream. --hold keeps the
connection open instead until the process is killed (to test Ctrl-C on the receiver).
It prints ``dv_send: listening ...`` once the server is up.
--log writes one JSON line per batch: ``{"t_last_us", "events", "sent_s"}``, ``sent_s`` being
``time.perf_counter()`` (CLOCK_MONOTONIC, shared by the processes of one machine) after the
write.

The process ends with ``os._exit``: dv-processing 2.0.4's NetworkWriter destructor deadlocks
while a client is still connected (it waits, holding the GIL, for an I/O thread that needs it),
so the sender cannot close it cleanly; the kernel closes the socket at exit, exactly as when a
sender quits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording")
    parser.add_argument("port", type=int)
    parser.add_argument("--batch-events", type=int, default=1024)
    parser.add_argument("--realtime", action="store_true")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--log", default=None)
    parser.add_argument("--wait-s", type=float, default=20.0)
    parser.add_argument("--sensor-size", default=None, help="W,H passed to read_events")
    parser.add_argument(
        "--linger-s", type=float, default=3.0, help="grace after the queue empties, before exit"
    )
    args = parser.parse_args(argv)

    import dv_processing as dv

    from hsd.events.formats import read_events

    size = None if args.sensor_size is None else tuple(int(v) for v in args.sensor_size.split(","))
    events = read_events(args.recording, sensor_size=size)
    batches = [
        events.select(slice(i, i + args.batch_events))
        for i in range(0, len(events), args.batch_events)
    ]
    stores = []
    for batch in batches:  # built before sending, so that sending is not slowed by it
        store = dv.EventStore()
        for t, x, y, p in zip(
            batch.t.tolist(), batch.x.tolist(), batch.y.tolist(), batch.p.tolist(), strict=True
        ):
            store.push_back(t, x, y, bool(p))
        stores.append(store)
    stream = dv.io.Stream.EventStream(0, "events", "hsd-dv-send", tuple(events.sensor_size))
    writer = dv.io.NetworkWriter("127.0.0.1", args.port, stream)
    print(f"dv_send: listening on 127.0.0.1:{args.port}", flush=True)
    deadline = time.perf_counter() + args.wait_s
    while writer.getClientCount() < 1:
        if time.perf_counter() > deadline:
            print(f"dv_send: no client within {args.wait_s} s", file=sys.stderr, flush=True)
            os._exit(3)
        time.sleep(0.002)
    log = [] if args.log else None
    start = time.perf_counter()
    t0 = int(events.t[0])
    for batch, store in zip(batches, stores, strict=True):
        if args.realtime:
            wait = start + (int(batch.t[-1]) - t0) / 1e6 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        writer.writeEvents(store)
        if log is not None:
            log.append(
                {"t_last_us": int(batch.t[-1]), "events": len(batch), "sent_s": time.perf_counter()}
            )
    while writer.getQueuedPacketCount() > 0 and writer.getClientCount() > 0:
        time.sleep(0.001)
    if log is not None:
        with open(args.log, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in log)
    print(f"dv_send: sent {len(events)} events in {len(batches)} batches", flush=True)
    if args.hold:
        while True:
            time.sleep(1)
    # An empty queue means the I/O thread has taken the last packet, not that the receiver has
    # read it. Exiting closes the socket; if the receiver's bytes to us are still unread then,
    # the kernel resets the connection and the receiver loses what it had not read yet (CI lost
    # the tail with a 50 ms grace, and 9 of 12 batches with 0.5 s on a loaded machine). So
    # linger long enough for a slow receiver to have read everything.
    time.sleep(args.linger_s)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
