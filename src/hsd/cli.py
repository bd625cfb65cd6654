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
from hsd.runtime import keep_freed_memory


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


# --- training stages --------------------------------------------------------------------------


def _config(args: argparse.Namespace):
    from hsd.config import load_config

    return load_config(args.config, args.set)


def _out(args: argparse.Namespace, cfg, stage: str) -> str:
    return args.out or f"{cfg.out_dir}/{cfg.name}-{stage}"


def _done(what: str, path) -> int:
    print(f"{what}: {path}")
    return 0


def _cmd_teacher(args: argparse.Namespace) -> int:
    from hsd.pipeline import train_teacher

    cfg = _config(args)
    return _done(
        "teacher checkpoint", train_teacher(cfg, _out(args, cfg, "teacher"), resume=args.resume)
    )


def _cmd_convert(args: argparse.Namespace) -> int:
    from hsd.pipeline import convert_checkpoint

    out = args.out or f"{args.teacher.rstrip('/')}-converted"
    return _done("converted checkpoint", convert_checkpoint(args.teacher, out))


def _cmd_distill(args: argparse.Namespace) -> int:
    from hsd.pipeline import distill

    cfg = _config(args)
    out = _out(args, cfg, f"distill-{cfg.distill.loss}")
    return _done("student checkpoint", distill(cfg, args.teacher, out, resume=args.resume))


def _cmd_baseline(args: argparse.Namespace) -> int:
    from hsd.pipeline import train_baseline

    cfg = _config(args)
    out = _out(args, cfg, f"baseline-{cfg.baseline.loss}")
    return _done("baseline checkpoint", train_baseline(cfg, out, resume=args.resume))


def _parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--steps must be integers like 1,2,4,10: {text!r}"
        ) from None
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError("--steps must be positive integers")
    return steps


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from hsd.config import apply_overrides, config_from_dict
    from hsd.eval.report import accuracy_table
    from hsd.pipeline import evaluate_checkpoint
    from hsd.train.checkpoint import load_checkpoint

    cfg = config_from_dict(load_checkpoint(args.run)["config"])
    apply_overrides(cfg, args.set)
    cfg.progress = not args.json
    result = evaluate_checkpoint(
        args.run,
        args.steps,
        protocol=args.protocol,
        split=args.split,
        cfg=cfg.validate(),
        progress=not args.json,
    )
    if args.json:
        _print_json(result)
        return 0
    print(
        f"{result['checkpoint']} ({result['stage']}), {result['split']} split, "
        f"{result['samples']} samples, protocol {result['protocol']}"
    )
    print(accuracy_table({result["stage"]: result}))
    if result["firing_rates"]:
        print("firing rate per layer (spikes per neuron per step):")
        for name, rate in result["firing_rates"].items():
            print(f"  {name}: {rate:.4f}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hsd.demo import run_demo

    results = run_demo(args.out, quick=args.quick, config=args.config, overrides=args.set)
    from hsd.eval.report import accuracy_table

    print(accuracy_table(results["methods"]))
    teacher = results["methods"]["teacher"]["all_frames"]
    print(f"teacher on all {results['frames']} frames: {100 * teacher:.1f}%")
    print(
        f"report: {args.out}/report.md  plot: {args.out}/accuracy_vs_steps.png  "
        f"results: {args.out}/results.json  ({results['seconds']:.0f} s)"
    )
    return 0


def _add_config_args(p: argparse.ArgumentParser, resume: bool = True) -> None:
    p.add_argument("--config", default=None, help="YAML recipe (see configs/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set distill.steps=1 (repeatable)",
    )
    p.add_argument("--out", default=None, help="run directory (default runs/<name>-<stage>)")
    if resume:
        p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")


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

    p = sub.add_parser("teacher", help="stage 1: train the QCFS ANN teacher on N frames")
    _add_config_args(p)
    p.set_defaults(func=_cmd_teacher)
    p = sub.add_parser("convert", help="stage 2: convert a teacher into a spiking network")
    p.add_argument("teacher", help="teacher checkpoint or run directory")
    p.add_argument("--out", default=None)
    p.set_defaults(func=_cmd_convert)
    p = sub.add_parser("distill", help="stage 3: fine-tune the converted SNN at T steps")
    p.add_argument("--teacher", required=True, help="teacher checkpoint or run directory")
    _add_config_args(p)
    p.set_defaults(func=_cmd_distill)
    p = sub.add_parser("baseline", help="train the same SNN from scratch at T steps")
    _add_config_args(p)
    p.set_defaults(func=_cmd_baseline)
    p = sub.add_parser("evaluate", help="accuracy after each number of steps T")
    p.add_argument("run", help="checkpoint or run directory")
    p.add_argument("--steps", type=_parse_steps, default=[1, 2, 4, 10])
    p.add_argument("--protocol", choices=["prefix", "rebin"], default="prefix")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the run's config, e.g. --set data.root=/new/place",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_evaluate)
    p = sub.add_parser("demo", help="the whole method and its baselines on the embedded data")
    _add_config_args(p, resume=False)
    p.set_defaults(out="demo-out")
    p.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()
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
