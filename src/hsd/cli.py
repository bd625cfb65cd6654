"""The ``hsd`` command. Thin: it parses arguments and calls the library.

One error path (:func:`main`): every fault ends with one line on stderr,
``hsd: error: <file or key>: <what is wrong and what to do>``, and exit status 2, never a
traceback:

* :class:`hsd.errors.HSDError` (the library's own errors, raised where a foreign exception was
  translated at its call site) is printed as it is;
* ``OSError`` (a file or folder that cannot be read or written, a full disk) names the path;
* ``MemoryError`` says which command ran out of memory and what to lower;
* a bad command line (argparse) prints the usage and ``hsd: error: argument ...``;
* output piped into a reader that stops early (``hsd ... | head``) ends quietly with status 141,
  as the shell's tools do when killed by SIGPIPE;
* anything else is a bug: ``hsd: error: internal error: ... (run with --debug and report it)``,
  still exit status 2. The fuzz tests in ``tests/fuzz`` count every internal error as a failure.

``--debug`` (anywhere on the command line) or ``HSD_DEBUG=1`` prints the traceback too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import typing
import warnings
from collections.abc import Sequence

from hsd import __version__
from hsd.config import argtype
from hsd.errors import HSDError, HSDWarning
from hsd.runtime import keep_freed_memory

EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell tool killed by SIGPIPE returns


class _Parser(argparse.ArgumentParser):
    """argparse with hsd's error line: the usage, then ``hsd: error: <problem>``, exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"hsd: error: {message}\n")


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

    out = show_sample(
        args.dataset, args.root, args.index, args.out, n_frames=args.frames, split=args.split
    )
    print(f"wrote {out}")
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from hsd.recipes import describe_recipe, list_recipes, recipe_dataset, recipe_path

    if args.name:
        print(recipe_path(args.name).read_text(encoding="utf-8"), end="")
        return 0
    names = list_recipes()
    width = max(len(n) for n in names)
    rows = [(n, recipe_dataset(n), describe_recipe(n)) for n in names]
    dwidth = max(len(r[1]) for r in rows)
    for name, dataset, text in rows:
        print(f"{name:<{width}}  {dataset:<{dwidth}}  {text}")
    return 0


# --- training stages --------------------------------------------------------------------------


def _config(args: argparse.Namespace):
    from hsd.config import load_config

    overrides = list(args.set)
    if getattr(args, "root", None) is not None:
        overrides.append(f"data.root={args.root}")
    cfg = load_config(args.config, overrides)
    if getattr(args, "deterministic", False):
        cfg.deterministic = True
    return cfg


def _out(args: argparse.Namespace, cfg, stage: str) -> str:
    return args.out or f"{cfg.out_dir}/{cfg.name}-{stage}"


def _done(what: str, path) -> int:
    from hsd.train.distributed import is_main

    if is_main():  # under torchrun only rank 0 prints
        print(f"{what}: {path}")
    return 0


def _cmd_teacher(args: argparse.Namespace) -> int:
    from hsd.pipeline import train_teacher

    cfg = _config(args)
    return _done(
        "teacher checkpoint",
        train_teacher(cfg, _out(args, cfg, "teacher"), resume=args.resume, force=args.force),
    )


def _cmd_convert(args: argparse.Namespace) -> int:
    from hsd.pipeline import convert_checkpoint

    out = args.out or f"{args.teacher.rstrip('/')}-converted"
    return _done("converted checkpoint", convert_checkpoint(args.teacher, out, force=args.force))


def _cmd_distill(args: argparse.Namespace) -> int:
    from hsd.pipeline import distill

    cfg = _config(args)
    out = _out(args, cfg, f"distill-{cfg.distill.loss}")
    return _done(
        "student checkpoint",
        distill(cfg, args.teacher, out, resume=args.resume, force=args.force),
    )


def _cmd_baseline(args: argparse.Namespace) -> int:
    from hsd.pipeline import train_baseline

    cfg = _config(args)
    out = _out(args, cfg, f"baseline-{cfg.baseline.loss}")
    return _done(
        "baseline checkpoint", train_baseline(cfg, out, resume=args.resume, force=args.force)
    )


def _parse_steps(text: str) -> list[int]:
    step = argtype(int, min=1, max=100_000)
    try:
        steps = [step(part) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"--steps must be integers in [1, 100000] like 1,2,4,10, got {text!r}"
        ) from None
    if not steps:
        raise argparse.ArgumentTypeError("--steps must be positive integers like 1,2,4,10")
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
    from hsd.demo import closing_line, demo_table

    print(demo_table(results))
    teacher = results["methods"]["teacher"]["all_frames"]
    print(f"teacher on all {results['frames']} frames: {100 * teacher:.1f}%")
    print(
        f"report: {args.out}/report.md  plot: {args.out}/accuracy_vs_steps.png  "
        f"results: {args.out}/results.json  ({results['seconds']:.0f} s)"
    )
    print(closing_line(results))
    return 0


# --- hsd bench --------------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    from hsd.bench import run_benchmarks

    seconds = run_benchmarks(args.names, out=args.out, quick=args.quick, overrides=args.set)
    timings = ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())
    print(f"wrote {args.out}/ ({timings}; total {sum(seconds.values()):.0f} s)")
    return 0


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    from hsd.bench import BENCHMARKS

    p = sub.add_parser(
        "bench",
        help="benchmarks: accuracy against latency, speed, memory, energy, frames, loading, feed, "
        "preprocess, decoding",
        description="Run benchmarks and write their JSON and plots. Benchmarks: "
        + "; ".join(f"{name}: {what}" for name, what in BENCHMARKS.items()),
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"{', '.join(BENCHMARKS)} (default: all but early, which runs when named)",
    )
    p.add_argument(
        "--quick", action="store_true", help="small settings: all of them in a few minutes"
    )
    p.add_argument("--out", default="bench-out", help="folder for the results")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the recipes of the accuracy and early benchmarks, e.g. --set threads=1 "
        "or --set data.root=DIR (repeatable)",
    )
    p.set_defaults(func=_cmd_bench)


# --- hsd stream / hsd export ------------------------------------------------------------------


def _parse_sensor_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sensor-size must be WIDTH,HEIGHT in pixels, e.g. 34,34: {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError("--sensor-size must be positive")
    return width, height


def _format_decision(d) -> str:
    return (
        f"step {d.step:3d}  {d.time_ms:9.2f} ms  {d.events:8d} events  -> {d.class_name!r} "
        f"(class {d.label})  confidence {d.confidence:.3f}  margin {d.margin:.3f}"
    )


def _check_not_swapped(checkpoint: str, source: str) -> None:
    """``hsd stream REC CKPT``: name the mistake instead of failing to read REC as a checkpoint."""
    from pathlib import Path

    from hsd.errors import HSDError
    from hsd.events.formats import SUPPORTED_EXTENSIONS

    ckpt, src = Path(checkpoint), Path(source)
    looks_like_events = ckpt.suffix.lower() in SUPPORTED_EXTENSIONS and ckpt.suffix != ".pt"
    looks_like_ckpt = src.suffix == ".pt" or (src / "checkpoints").is_dir()
    if looks_like_events and looks_like_ckpt:
        raise HSDError(
            f"the arguments look swapped: {checkpoint} is an event file and {source} a "
            f"checkpoint; the order is `hsd stream CHECKPOINT SOURCE`"
        )


def _cmd_stream(args: argparse.Namespace) -> int:
    from hsd.errors import SourceError
    from hsd.events.sources import count_events, open_source, parse_source
    from hsd.stream import (
        ExitPolicy,
        StreamClassifier,
        latency_summary,
        stream_source,
        training_framing,
        training_sensor_size,
    )
    from hsd.train.checkpoint import load_checkpoint

    policy = ExitPolicy(
        confidence=None if args.no_exit else args.exit_confidence,
        margin=None if args.no_exit else args.exit_margin,
        min_steps=args.min_steps,
        max_steps=args.max_steps,
    )
    _check_not_swapped(args.checkpoint, args.source)
    ckpt = load_checkpoint(args.checkpoint)
    compile_mode = _stream_compile(args.set)
    framed = args.frame_events is not None or args.frame_ms is not None
    if not framed and parse_source(args.source)[0] != "file":  # refused before connecting
        raise SourceError(
            args.source,
            "a live stream has no known length to cut as training did: give "
            "--frame-events K or --frame-ms W",
        )
    source = open_source(args.source, realtime=args.realtime)
    with source:
        if framed:
            framing = {"frame_events": args.frame_events, "frame_ms": args.frame_ms}
        else:  # a file: cut it as training cut each recording (N frames), counted in chunks
            framing = training_framing(ckpt, count_events(source.path))
        sensor = args.sensor_size or training_sensor_size(ckpt) or source.sensor_size
        classifier = StreamClassifier(
            ckpt, **framing, policy=policy, sensor_size=sensor, compile=compile_mode
        )
        framing = (
            {"frame_events": classifier.frame_events}
            if classifier.frame_events is not None
            else {"frame_ms": classifier.frame_us / 1000.0}
        )
        if not args.json:
            what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in framing.items())
            kind = "live stream" if source.live else "file"
            print(f"{args.source}: {kind}; {what} per frame", flush=True)
        received = _CountingSource(source)
        stopped = None
        try:
            for decision in stream_source(classifier, received, flush=args.flush):
                if args.json:
                    print(json.dumps({"type": "decision", **decision.to_dict()}), flush=True)
                else:
                    print(_format_decision(decision), flush=True)
        except KeyboardInterrupt:  # Ctrl-C ends a live stream: report what was decided
            stopped = "interrupted"
            if args.flush:
                classifier.flush()
    final = classifier.final
    if stopped is None:
        stopped = "exit" if classifier.finished else "end_of_stream"
    latency = latency_summary(classifier.decisions)
    if args.json:
        decided = final.to_dict() if final is not None else {"step": 0}
        print(
            json.dumps(
                {
                    "type": "final",
                    **decided,
                    "stopped": stopped,
                    "events_received": received.events,
                    "latency": latency,
                    **framing,
                }
            ),
            flush=True,
        )
        return 0
    if final is None:
        print(
            f"no decision: the {received.events} events received do not complete one frame "
            "(--flush counts a partial frame)"
        )
    else:
        why = {
            "exit": "early exit",
            "end_of_stream": "end of stream, the exit policy never fired",
            "interrupted": "interrupted",
        }[stopped]
        print(
            f"final: {final.class_name!r} (class {final.label}) after {final.step} steps, "
            f"{final.time_ms:.2f} ms and {final.events} events ({received.events} received), "
            f"confidence {final.confidence:.3f} ({why})"
        )
        print(
            f"latency from arrival to decision: median {latency['median_ms']:.2f} ms, "
            f"p99 {latency['p99_ms']:.2f} ms over {latency['decisions']} decisions"
        )
    sys.stdout.flush()
    return 0


def _stream_compile(overrides: list[str]) -> str:
    """The ``compile`` setting of ``hsd stream``: ``auto`` unless ``--set compile=...`` (the only
    key ``hsd stream`` reads from ``--set``; a training run's own ``compile`` is not inherited:
    it was chosen for training)."""
    from hsd.config import Config, apply_overrides
    from hsd.errors import ConfigError

    for item in overrides:
        if item.split("=", 1)[0].strip() != "compile":
            raise ConfigError(
                f"--set {item}: hsd stream reads only compile=true|false|auto from --set"
            )
    return apply_overrides(Config(), overrides).compile


class _CountingSource:
    """Passes a source's chunks through, counting the events received."""

    def __init__(self, source) -> None:
        self.source, self.events = source, 0

    @property
    def last_arrival(self) -> float | None:
        return self.source.last_arrival

    def __iter__(self):
        for chunk in self.source:
            self.events += len(chunk)
            yield chunk


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from hsd.export import export_onnx

    result = export_onnx(args.checkpoint, args.out, batch_size=args.batch_size, opset=args.opset)
    if not result.membrane_shapes:
        print(
            f"note: {args.checkpoint} is an ANN (no membranes): the export maps one frame to "
            "logits; the spiking network (`hsd convert` / `hsd distill`) is what decides step by "
            "step",
            file=sys.stderr,
        )
    print(
        f"wrote {result.path}: inputs {', '.join(result.inputs)}; outputs "
        f"{', '.join(result.outputs)} ({len(result.membrane_shapes)} membrane states, batch "
        f"{args.batch_size})"
    )
    return 0


def _cmd_export_nir(args: argparse.Namespace) -> int:
    from hsd.export import export_nir

    export_nir(args.checkpoint, args.out)


def _add_stream_export_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="classify an event stream (file, dv://HOST:PORT, camera): a decision per step",
        description="SOURCE: an event file of any supported format; dv://HOST:PORT, an "
        "iniVation DV network event stream; camera or camera:SERIAL, an attached iniVation "
        "camera (the live sources need the 'live' extra, dv-processing). A live stream has no "
        "known length: give --frame-events or --frame-ms. Ctrl-C prints the final decision.",
    )
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument(
        "source", metavar="SOURCE", help="event file, dv://HOST:PORT, camera or camera:SERIAL"
    )
    framing = p.add_mutually_exclusive_group()
    framing.add_argument("--frame-events", type=int, default=None, help="events per frame")
    framing.add_argument("--frame-ms", type=float, default=None, help="milliseconds per frame")
    p.add_argument(
        "--exit-confidence",
        type=float,
        default=0.9,
        help="stop when the top softmax probability of the mean output reaches this",
    )
    p.add_argument(
        "--exit-margin", type=float, default=None, help="stop when top-1 minus top-2 reaches this"
    )
    p.add_argument("--min-steps", type=int, default=1, help="never stop before this step")
    p.add_argument("--max-steps", type=int, default=None, help="always stop at this step")
    p.add_argument(
        "--no-exit",
        action="store_true",
        help="no confidence or margin exit: run to the end of the stream (or --max-steps)",
    )
    p.add_argument(
        "--flush",
        action="store_true",
        help="count the trailing partial frame at the end of the stream as one more step",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="replay a file at the pace of its timestamps (1 ms chunks)",
    )
    p.add_argument(
        "--sensor-size",
        type=_parse_sensor_size,
        default=None,
        metavar="W,H",
        help="sensor the network was trained on (default: from the checkpoint, else the file)",
    )
    p.add_argument(
        "--json", action="store_true", help="JSON Lines: one object per decision, then the final"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="compile=true|false|auto: torch.compile the step network (auto: eager, as for "
        "hsd evaluate)",
    )
    p.set_defaults(func=_cmd_stream)

    export = sub.add_parser("export", help="write a checkpoint's network for other runtimes")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    p = export_sub.add_parser(
        "onnx", help="one time step, membrane states as explicit inputs and outputs"
    )
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument(
        "--batch-size",
        type=argtype(int, min=1, max=65536),
        default=1,
        help="fixed batch size of the graph",
    )
    p.add_argument(
        "--opset",
        type=argtype(int, min=13, max=20),
        default=17,
        help="ONNX opset version (13..20, hsd.export.ONNX_OPSETS)",
    )
    p.set_defaults(func=_cmd_export_onnx)
    p = export_sub.add_parser("nir", help="NIR graph (refused: the neuron model has no NIR form)")
    p.add_argument("checkpoint", help="checkpoint or run directory")
    p.add_argument("out", help="the .nir file that would be written")
    p.set_defaults(func=_cmd_export_nir)


def _add_config_args(
    p: argparse.ArgumentParser,
    resume: bool = True,
    out_help: str = "run directory (default runs/<name>-<stage>)",
) -> None:
    p.add_argument(
        "--config",
        default=None,
        help="YAML recipe file, or the name of a recipe shipped with hsd (see `hsd recipes`)",
    )
    p.add_argument(
        "--root",
        default=None,
        help="dataset folder (same as --set data.root=DIR; else the recipe's data.root, else "
        "$HSD_<DATASET>_ROOT, e.g. HSD_NMNIST_ROOT, else $HSD_DATA_DIR/<dataset>)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set distill.steps=1 (repeatable)",
    )
    p.add_argument("--out", default=None, help=out_help)
    if resume:
        p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
        p.add_argument(
            "--force",
            action="store_true",
            help="--out already holds a run: move it aside to <out>.old-N (never deleted), "
            "then start anew",
        )
        p.add_argument(
            "--deterministic",
            action="store_true",
            help="PyTorch deterministic algorithms (bit-exact reruns and resumes, slower)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hsd",
        description="Low-latency event-camera recognition with Hybrid Step-wise Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"hsd {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an error too (accepted anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "recipes",
        help="list the recipes shipped with hsd (name, dataset, what it is), or print one",
        description="Without NAME: one line per recipe (name, dataset, description). With NAME: "
        "the recipe's YAML, to copy and edit (hsd recipes nmnist > my.yaml). Use a recipe with "
        "--config NAME.",
    )
    p.add_argument("name", nargs="?", default=None, help="recipe to print")
    p.set_defaults(func=_cmd_recipes)

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
    dshow.add_argument("dataset", help="dataset name (see hsd data info)")
    dshow.add_argument("--root", default=None, help="dataset folder (not needed for digits-dvs)")
    dshow.add_argument(
        "--split",
        choices=["train", "test", "all"],
        default=None,
        help="which samples --index counts in (default: train for a dataset with an official "
        "split, else all, in the dataset's order)",
    )
    dshow.add_argument(
        "--index", type=argtype(int, min=0), default=0, help="sample number within --split"
    )
    dshow.add_argument(
        "--frames", type=argtype(int, min=1, max=1000), default=10, help="number of frames N"
    )
    dshow.add_argument("--out", required=True, help="PNG file to write")
    dshow.set_defaults(func=_cmd_data_show)

    p = sub.add_parser("teacher", help="stage 1: train the QCFS ANN teacher on N frames")
    _add_config_args(p)
    p.set_defaults(func=_cmd_teacher)
    p = sub.add_parser("convert", help="stage 2: convert a teacher into a spiking network")
    p.add_argument("teacher", help="teacher checkpoint or run directory")
    p.add_argument("--out", default=None)
    p.add_argument(
        "--force", action="store_true", help="--out holds a run: move it aside to <out>.old-N"
    )
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
    _add_config_args(p, resume=False, out_help="output folder (default demo-out)")
    p.set_defaults(out="demo-out")
    p.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    p.set_defaults(func=_cmd_demo)
    _add_bench_parser(sub)
    _add_stream_export_parsers(sub)
    return parser


def _split_debug(argv: Sequence[str] | None) -> tuple[list[str], bool]:
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:cut] or os.environ.get("HSD_DEBUG", "") not in ("", "0")
    return [a for i, a in enumerate(args) if i >= cut or a != "--debug"], debug


def _fail(message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    # The error is the last line, and one line: a dataset's expected layout (a block its
    # errors carry) is printed above it; any other line break (in a file name, in a foreign
    # library's message) is written as \n.
    message, layout, block = message.partition("\nexpected layout:\n")
    if layout:
        print(f"expected layout:\n{block}", file=sys.stderr)
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    print(
        f"hsd: error: {message}" + (" (expected layout above)" if layout else ""), file=sys.stderr
    )
    return EXIT_ERROR


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else None
    what = exc.strerror or str(exc) or type(exc).__name__
    hints = {
        "FileNotFoundError": "no such file or directory",
        "PermissionError": "permission denied; check its access rights",
        "IsADirectoryError": "is a folder where a file is needed",
        "NotADirectoryError": "a part of the path is a file where a folder is needed",
    }
    what = hints.get(type(exc).__name__, what)
    if exc.errno == 28:  # ENOSPC
        what = "no space left on the device; free some space and rerun (--resume for training)"
    return f"{where}: {what}" if where is not None else what


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hsd`` command on ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Bad command lines raise ``SystemExit(2)`` from argparse (``--help``/``--version``:
    ``SystemExit(0)``), after printing the usage and ``hsd: error: ...``.
    """
    keep_freed_memory()
    argv, debug = _split_debug(argv)
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:  # --help into a closed pipe
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    command = " ".join(
        str(getattr(args, k))
        for k in ("command", "events_command", "data_command", "export_command")
        if getattr(args, k, None)
    )
    try:
        with warnings.catch_warnings():
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, HSDWarning):
                    print(f"hsd: warning: {message}", file=sys.stderr)
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            return int(args.func(args) or 0)
    except HSDError as exc:
        return _fail(str(exc), debug)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        return _fail(_os_error(exc), debug)
    except MemoryError:
        return _fail(
            f"hsd {command}: out of memory; ask for less (data.batch_size, "
            "evaluate.batch_size, model.width, data.size, data.frames)",
            debug,
        )
    except KeyboardInterrupt:
        print("hsd: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        return _fail(f"hsd {command}: input nested too deeply (internal error if it is not)", debug)
    except Exception as exc:
        return _fail(
            f"internal error in 'hsd {command}': {type(exc).__name__}: {exc} "
            "(run it again with --debug and report the traceback)",
            debug,
        )
    finally:
        if "hsd.train.distributed" in sys.modules:  # a training stage ran: leave its group
            sys.modules["hsd.train.distributed"].cleanup()


if __name__ == "__main__":
    sys.exit(main())
