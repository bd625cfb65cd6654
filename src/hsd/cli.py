"""The ``hsd`` command. Thin: it parses arguments and calls the library.

Errors the user can fix (:class:`hsd.errors.HSDError`) are printed as one line,
``hsd: error: <file>: <problem>``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from hsd import __version__
from hsd.errors import HSDError


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


# --- hsd events -------------------------------------------------------------------------------


def _cmd_events_info(args: argparse.Namespace) -> int:
    from hsd.events.info import describe_file, format_description

    desc = describe_file(args.file)
    if args.json:
        _print_json(desc)
    else:
        print(format_description(desc))
    return 0


# --- hsd data ---------------------------------------------------------------------------------


def _cmd_data_info(args: argparse.Namespace) -> int:
    from hsd.data.info import format_summary, summarize

    summary = summarize(args.dataset, args.root)
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def _cmd_data_show(args: argparse.Namespace) -> int:
    from hsd.data.info import show_sample

    out = show_sample(args.dataset, args.root, args.index, args.out, n_frames=args.frames)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsd",
        description="Low-latency event-camera recognition with Hybrid Step-wise Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"hsd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    events = sub.add_parser("events", help="inspect event files")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    info = events_sub.add_parser("info", help="format, events, sensor size, duration of a file")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_cmd_events_info)

    data = sub.add_parser("data", help="inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dinfo = data_sub.add_parser("info", help="samples per split and class, sensor size, events")
    dinfo.add_argument("dataset")
    dinfo.add_argument("--root", default=None, help="dataset folder (not needed for digits-dvs)")
    dinfo.add_argument("--json", action="store_true")
    dinfo.set_defaults(func=_cmd_data_info)
    dshow = data_sub.add_parser("show", help="draw the frames of one sample to a PNG")
    dshow.add_argument("dataset")
    dshow.add_argument("--root", default=None)
    dshow.add_argument("--index", type=int, default=0)
    dshow.add_argument("--frames", type=int, default=10, help="number of frames N")
    dshow.add_argument("--out", required=True)
    dshow.set_defaults(func=_cmd_data_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except HSDError as exc:
        print(f"hsd: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"hsd: error: {exc.filename or exc}: no such file or directory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hsd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
