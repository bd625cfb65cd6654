"""Anytime distillation and early exit: accuracy at every T, accuracy against steps used, and
per-step latency.

Part 1, per T (``--config``, default ``configs/nmnist.yaml``), by stratified k-fold
cross-validation over all samples. Per fold: the teacher; **HSD anytime** (``distill.loss=anytime``
fine-tuned over N = ``data.frames`` steps: step-wise distillation plus the cross-entropy of every
prefix's running mean); and the **specialists**, HSD (``distill.loss=skd``) fine-tuned at each T
in ``--specialist-steps`` (default 1..N): "the best network trained specifically for that T".
Every network is evaluated at every T from 1 to N (prefix protocol) on the fold's test part.
Goal of issue 6, per T: anytime within 1 point of the specialist at that T, and never below the
teacher on the same first T frames (fold means).

Part 2, early exit: the anytime network's per-step test logits are replayed under exit policies
(:func:`hsd.stream.exit_sweep`): confidence (softmax of the running mean) thresholds and top-2
margins, accuracy against mean steps used, next to fixed-T accuracy. On the k folds (pooled over
all test samples) and on ``--demo-config`` (default ``configs/demo.yaml``, digits-dvs: one
teacher + one anytime student, its test split).

Part 3, per-step latency of the demo-config anytime network, batch 1, on this machine: one
:class:`hsd.stream.StreamClassifier` step (integration of a frame's events + network step +
decision) and one step of its ONNX export in onnxruntime (when ``onnx``/``onnxruntime`` are
installed), median over ``--latency-steps`` steps after a warm-up.

The folds come from :func:`hsd.bench.runner.cross_validate` and the teacher and anytime student
from :func:`hsd.bench.runner.train_methods` (the runner shared with ``hsd demo`` and
``hsd bench accuracy``). :func:`variants_main` (``benchmarks/anytime_variants.py``) compares a
variant of anytime distillation with the default one on the folds' validation splits only.

Settings come from the recipes (fixed beforehand on validation splits); every checkpoint is the
best on its validation split; nothing here looks at a test split to choose anything. Each fold's
result is written as soon as it is done (``OUT/nmnist/foldK/result.json``) and reused when the
script is run again, so an interrupted run resumes; ``--fold-list`` runs a subset.

    python benchmarks/anytime_exit.py --folds 5 --out docs/benchmarks/anytime --set threads=1
    python benchmarks/anytime_exit.py --replot --out docs/benchmarks/anytime  # redraw only

Writes ``OUT/summary.json``, ``OUT/summary.md``, ``OUT/accuracy_vs_T.png`` (anytime, specialists,
teacher) and ``OUT/accuracy_vs_steps.png`` (early-exit curves and fixed-T points). ``--tiny``
shrinks everything (epochs, samples) to check the script end to end in seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from hsd.bench.runner import cross_validate, train_methods
from hsd.config import Config, config_with, load_config
from hsd.models import reset_states
from hsd.pipeline import (
    PreparedData,
    distill,
    evaluate_checkpoint,
    evaluate_model,
    model_from_checkpoint,
    prepare_data,
)
from hsd.runtime import keep_freed_memory
from hsd.stream import ExitPolicy, StreamClassifier, exit_sweep
from hsd.train.checkpoint import load_checkpoint
from hsd.train.engine import predict_step_logits, prefix_accuracy
from hsd.train.feed import FrameFeed

CONFIDENCES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
MARGINS = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99)
# slack of the goal check: accuracies come from float32 means (~1e-7 off), one sample is >1e-4
EPS = 1e-6
TINY_OVERRIDES = [
    "teacher.optim.epochs=1",
    "distill.optim.epochs=1",
    "data.limit=40",
    "progress=false",
]


def _accuracy_per_t(path: Path, data: PreparedData, n: int) -> dict[str, float]:
    """Test accuracy after each T in 1..n (prefix protocol), keyed by str(T)."""
    model = model_from_checkpoint(load_checkpoint(path))
    result = evaluate_model(model, data, list(range(1, n + 1)), device=torch.device("cpu"))
    return result["accuracy"]


def _test_logits(path: Path, data: PreparedData, n: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Per-step test logits ``[S, n, C]``, labels ``[S]`` and event end times ``[S, n]`` (us)."""
    model = model_from_checkpoint(load_checkpoint(path))
    feed = FrameFeed(
        data.arrays.frames,
        data.arrays.labels,
        data.test,
        batch_size=256,
        teacher=False,
        student_steps=n,
    )
    logits, labels, order = predict_step_logits(
        model, feed, device=torch.device("cpu"), input_key="student"
    )
    return logits, labels, data.arrays.end_times_us[order, :n]


def _sweeps(logits: torch.Tensor, labels: torch.Tensor, end_times: np.ndarray) -> dict[str, Any]:
    """Early-exit sweeps (confidence and margin) and fixed-T accuracy of one set of logits."""
    return {
        "fixed_t": prefix_accuracy(logits, labels),
        "confidence": [
            vars(p) for p in exit_sweep(logits, labels, CONFIDENCES, end_times_us=end_times)
        ],
        "margin": [
            vars(p)
            for p in exit_sweep(logits, labels, MARGINS, criterion="margin", end_times_us=end_times)
        ],
        "samples": len(labels),
    }


def run_fold(cfg: Config, out: Path, specialist_steps: list[int]) -> dict[str, Any]:
    """Teacher, anytime student and specialists on one fold; returns the fold's result."""
    data = prepare_data(cfg)
    n = data.frames
    runs = out / "runs"
    t0 = time.perf_counter()
    trained = train_methods(cfg, data, runs, ["teacher", "hsd_anytime"])
    teacher, anytime = trained["teacher"], trained["hsd_anytime"]
    result: dict[str, Any] = {
        "frames": n,
        "test_samples": len(data.test),
        "manifest_hash": data.manifest.hash,
        "teacher": _accuracy_per_t(teacher, data, n),
        "anytime": _accuracy_per_t(anytime, data, n),
        "specialists": {},
    }
    for t in tqdm(specialist_steps, desc="specialists", disable=not cfg.progress):
        path = distill(
            config_with(cfg, distill__loss="skd", distill__steps=t),
            teacher,
            runs / f"hsd_T{t}",
            data=data,
            replace=True,
        )
        result["specialists"][str(t)] = _accuracy_per_t(path, data, n)
    logits, labels, end_times = _test_logits(anytime, data, n)
    result["exit"] = _sweeps(logits, labels, end_times)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def _median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def step_latency(checkpoint: Path, data: PreparedData, *, steps: int, warmup: int) -> dict:
    """Median wall time (ms) of one step at batch 1 on one thread: a
    :class:`~hsd.stream.StreamClassifier` step (a frame's events -> frame -> network step ->
    decision; the first test recording cut into N frames of equal event count, replayed over and
    over), the
    PyTorch network alone on one cached frame (state kept, reset every N steps) and, when
    installed, one step of the ONNX export in onnxruntime (frame + membranes -> logits +
    membranes)."""
    torch.set_num_threads(1)
    position = int(data.test[0])
    events = data.dataset.load_events(position)  # frame arrays list samples in dataset order
    ckpt = load_checkpoint(checkpoint)
    size = max(1, len(events) // data.frames)  # N frames of equal event count
    clf = StreamClassifier(
        ckpt, frame_events=size, policy=ExitPolicy(confidence=None), sensor_size=events.sensor_size
    )
    chunks = [events.select(slice(i, i + size)) for i in range(0, len(events), size)]
    times: list[float] = []
    with tqdm(total=steps + warmup, desc="stream steps", leave=False) as bar:
        while len(times) < steps:
            clf.reset()
            for chunk in chunks:
                start = time.perf_counter()
                made = clf.push(chunk)
                elapsed = time.perf_counter() - start
                if len(made) != 1:
                    continue
                bar.update()
                if bar.n > warmup and len(times) < steps:
                    times.append(elapsed)
    frames = torch.from_numpy(data.arrays.frames[position].astype(np.float32))
    model = clf.model
    torch_times: list[float] = []
    with torch.no_grad():
        for i in range(steps + warmup):
            if i % len(frames) == 0:
                reset_states(model)
            x = frames[i % len(frames)][None, None]
            start = time.perf_counter()
            model(x)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                torch_times.append(elapsed)
    result: dict[str, Any] = {
        "stream_step_ms": _median_ms(times),
        "torch_step_ms": _median_ms(torch_times),
        "frame_events": size,
        "steps_timed": len(times),
        "warmup": warmup,
        "threads": torch.get_num_threads(),
    }
    try:
        import onnxruntime as ort

        from hsd.export import export_onnx, onnx_initial_state
    except ImportError:
        result["onnx_step_ms"] = None
        return result
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx(checkpoint, Path(tmp) / "step.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(exported.path), options, providers=["CPUExecutionProvider"]
        )
    state = onnx_initial_state(session)
    frames = frames.numpy()
    onnx_times: list[float] = []
    for i in range(steps + warmup):
        feed = {"frame": frames[i % len(frames)][None], **state}
        start = time.perf_counter()
        outputs = session.run(None, feed)
        elapsed = time.perf_counter() - start
        state = dict(zip(state, outputs[1:], strict=True))
        if (i + 1) % len(frames) == 0:
            state = onnx_initial_state(session)
        if i >= warmup:
            onnx_times.append(elapsed)
    result["onnx_step_ms"] = _median_ms(onnx_times)
    return result


# --- aggregation, report -----------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def aggregate(folds: list[dict[str, Any]], specialist_steps: list[int]) -> dict[str, Any]:
    """Per T: anytime, specialist at T and teacher on the first T frames (mean and std over
    folds, accuracy in [0, 1]), and the goal check: ``gap_specialist`` = anytime - specialist
    (goal: >= -0.01), ``gap_teacher`` = anytime - teacher (goal: >= 0)."""
    n = folds[0]["frames"]
    rows = []
    for t in range(1, n + 1):
        key = str(t)
        anytime = _mean_std([f["anytime"][key] for f in folds])
        teacher = _mean_std([f["teacher"][key] for f in folds])
        row: dict[str, Any] = {"T": t, "anytime": anytime, "teacher": teacher}
        if t in specialist_steps:
            spec = _mean_std([f["specialists"][key][key] for f in folds])
            row["specialist"] = spec
            row["gap_specialist"] = anytime[0] - spec[0]
        row["gap_teacher"] = anytime[0] - teacher[0]
        row["goal_met"] = (
            row["gap_teacher"] >= -EPS and row.get("gap_specialist", 0.0) >= -0.01 - EPS
        )
        rows.append(row)
    return {"per_t": rows, "exit": _pool_exit(folds)}


def _pool_exit(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Early-exit points pooled over folds (sample-weighted means: every test sample counts once,
    each fold's test part being disjoint)."""
    weights = [f["exit"]["samples"] for f in folds]
    total = sum(weights)

    def pooled(values: list[float | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return sum(w * v for w, v in zip(weights, values, strict=True)) / total

    out: dict[str, Any] = {
        "fixed_t": [
            pooled([f["exit"]["fixed_t"][i] for f in folds])
            for i in range(len(folds[0]["exit"]["fixed_t"]))
        ],
        "samples": total,
    }
    for criterion in ("confidence", "margin"):
        points = []
        for i, first in enumerate(folds[0]["exit"][criterion]):
            each = [f["exit"][criterion][i] for f in folds]
            points.append(
                {
                    "threshold": first["threshold"],
                    **{
                        k: pooled([p[k] for p in each])
                        for k in ("accuracy", "mean_steps", "exited", "mean_latency_ms")
                    },
                }
            )
        out[criterion] = points
    return out


def _pct(mean_std: tuple[float, float]) -> str:
    return f"{100 * mean_std[0]:.1f} ± {100 * mean_std[1]:.1f}"


def _points(gap: float) -> str:
    """A difference of accuracies in signed points; float32 noise (below EPS) shows as +0.0."""
    return f"{100 * (0.0 if abs(gap) < EPS else gap):+.1f}"


def per_t_table(summary: dict[str, Any]) -> str:
    lines = [
        "| T | HSD anytime | specialist (HSD at T) | teacher, first T frames "
        "| anytime − specialist | anytime − teacher | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary["per_t"]:
        spec = _pct(row["specialist"]) if "specialist" in row else "–"
        gap_s = _points(row["gap_specialist"]) if "gap_specialist" in row else "–"
        lines.append(
            f"| {row['T']} | {_pct(row['anytime'])} | {spec} | {_pct(row['teacher'])} | {gap_s} "
            f"| {_points(row['gap_teacher'])} | {'yes' if row['goal_met'] else 'no'} |"
        )
    return "\n".join(lines)


def exit_table(exit_result: dict[str, Any]) -> str:
    lines = [
        "| policy | accuracy | mean steps | exited early | mean event time to decision |",
        "|---|---|---|---|---|",
    ]
    for criterion in ("confidence", "margin"):
        for p in exit_result[criterion]:
            ms = "–" if p["mean_latency_ms"] is None else f"{p['mean_latency_ms']:.0f} ms"
            lines.append(
                f"| {criterion} ≥ {p['threshold']:g} | {100 * p['accuracy']:.1f} "
                f"| {p['mean_steps']:.2f} | {100 * p['exited']:.0f}% | {ms} |"
            )
    fixed = " · ".join(
        f"T={t}: {100 * a:.1f}" for t, a in enumerate(exit_result["fixed_t"], start=1)
    )
    return "\n".join(lines) + f"\n\nFixed T (same network): {fixed}."


def plot_per_t(summary: dict[str, Any], path: Path, title: str) -> None:
    rows = summary["per_t"]
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    for key, label, style in (
        ("anytime", "HSD anytime (one network, all T)", "o-"),
        ("specialist", "specialist: HSD fine-tuned at that T", "s--"),
        ("teacher", "teacher ANN, first T frames", "^:"),
    ):
        pts = [(r["T"], *r[key]) for r in rows if key in r]
        t, mean, std = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
        ax.plot(t, 100 * mean, style, label=label)
        ax.fill_between(t, 100 * (mean - std), 100 * (mean + std), alpha=0.15)
    ax.set_xlabel("time steps T (first T of the N frames)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # beside the axes, never over the lines (as hsd.eval.report does)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_exit(curves: dict[str, dict[str, Any]], path: Path) -> None:
    """One panel per dataset: accuracy against mean steps used, early exit and fixed T."""
    fig, axes = plt.subplots(1, len(curves), figsize=(6.0 * len(curves), 4.2), squeeze=False)
    for ax, (title, result) in zip(axes[0], curves.items(), strict=True):
        fixed = result["fixed_t"]
        ax.plot(
            range(1, len(fixed) + 1), [100 * a for a in fixed], "ko:", label="fixed T (no exit)"
        )
        for criterion, style in (("confidence", "o-"), ("margin", "s-")):
            pts = result[criterion]
            ax.plot(
                [p["mean_steps"] for p in pts],
                [100 * p["accuracy"] for p in pts],
                style,
                label=f"early exit on {criterion}",
            )
        ax.set_xlabel("mean time steps used")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo_dataset(cfg: Config, out: Path) -> tuple[dict[str, Any], Path, PreparedData]:
    """One teacher + one anytime student on the recipe's own split; early exit on its test."""
    data = prepare_data(cfg)
    n = data.frames
    trained = train_methods(cfg, data, out / "runs", ["teacher", "hsd_anytime"])
    teacher, anytime = trained["teacher"], trained["hsd_anytime"]
    logits, labels, end_times = _test_logits(anytime, data, n)
    result = {
        "dataset": cfg.data.dataset,
        "test_samples": len(data.test),
        "teacher": _accuracy_per_t(teacher, data, n),
        "exit": _sweeps(logits, labels, end_times),
    }
    return result, anytime, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="nmnist")
    parser.add_argument("--demo-config", default="demo")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold-list", default=None, help="comma-separated folds to run")
    parser.add_argument("--specialist-steps", default=None, help="comma-separated T (default 1..N)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--latency-steps", type=int, default=500)
    parser.add_argument("--latency-warmup", type=int, default=50)
    parser.add_argument("--tiny", action="store_true", help="seconds-long end-to-end check")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only redraw summary.md and the plots from summary.json",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        write_report(json.loads((out / "summary.json").read_text()), out)
        return 0
    keep_freed_memory()
    overrides = [*(TINY_OVERRIDES if args.tiny else []), *args.set]
    t0 = time.perf_counter()
    base = load_config(args.config, overrides)
    if base.threads:
        torch.set_num_threads(base.threads)
    n = base.data.frames
    specialist_steps = (
        list(range(1, n + 1))
        if args.specialist_steps is None
        else sorted({int(t) for t in args.specialist_steps.split(",")})
    )
    fold_list = (
        list(range(args.folds))
        if args.fold_list is None
        else [int(k) for k in args.fold_list.split(",")]
    )
    folds = cross_validate(
        args.config,
        overrides,
        lambda cfg, fold_out: run_fold(cfg, fold_out, specialist_steps),
        out,
        folds=args.folds,
        fold_list=fold_list,
    )
    summary = aggregate(folds, specialist_steps)

    demo_cfg = load_config(args.demo_config, overrides)
    demo, demo_anytime, demo_data = run_demo_dataset(demo_cfg, out / demo_cfg.data.dataset)
    latency = step_latency(
        demo_anytime, demo_data, steps=args.latency_steps, warmup=args.latency_warmup
    )
    report = {
        "command": f"python {' '.join(sys.argv)}",
        "config": args.config,
        "demo_config": args.demo_config,
        "overrides": overrides,
        "folds": args.folds,
        "folds_run": fold_list,
        "specialist_steps": specialist_steps,
        "cv": summary,
        "fold_results": folds,
        "demo": demo,
        "latency": latency,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    write_report(report, out)
    print(f"total {report['seconds']:.0f} s; wrote {out}/summary.json, summary.md, *.png")
    return 0


def write_report(report: dict[str, Any], out: Path) -> None:
    """``OUT/summary.md`` and the two plots from the content of ``summary.json``."""
    dataset = load_config(report["config"], report["overrides"]).data.dataset
    summary, demo, latency = report["cv"], report["demo"], report["latency"]
    done, folds = len(report["folds_run"]), report["folds"]
    plot_per_t(
        summary, out / "accuracy_vs_T.png", f"{dataset}: {done} of {folds} CV folds, mean ± std"
    )
    plot_exit(
        {
            f"{dataset}: anytime network, {done} CV folds pooled": summary["exit"],
            f"{demo['dataset']}: anytime network, test split": demo["exit"],
        },
        out / "accuracy_vs_steps.png",
    )
    onnx_ms = latency["onnx_step_ms"]
    parts = [
        f"Command: `{report['command']}`",
        "",
        f"### {dataset}: anytime against specialists ({done} of {folds} folds)",
        "",
        per_t_table(summary),
        "",
        f"### {dataset}: early exit, anytime network ({summary['exit']['samples']} test samples)",
        "",
        exit_table(summary["exit"]),
        "",
        f"### {demo['dataset']}: early exit, anytime network ({demo['test_samples']} test samples)",
        "",
        exit_table(demo["exit"]),
        "",
        "### Per-step latency (batch 1, one thread, median)",
        "",
        f"StreamClassifier step (events -> decision): {latency['stream_step_ms']:.3f} ms; "
        f"PyTorch network step: {latency['torch_step_ms']:.3f} ms; ONNX step in onnxruntime: "
        + ("not measured (onnxruntime not installed)" if onnx_ms is None else f"{onnx_ms:.3f} ms")
        + ".",
        "",
    ]
    (out / "summary.md").write_text("\n".join(parts))
    print("\n".join(parts))


def variants_main(argv: list[str] | None = None) -> int:
    """Compare a variant of anytime distillation with the default one, on validation splits only.

    Reuses the fold teachers and default anytime networks of a finished :func:`main` run
    (``RUNS/<dataset>/fold<k>/runs/{teacher,hsd_anytime}``), fine-tunes the variant (``--set``
    overrides on top of ``distill.loss=anytime`` and ``distill.steps=N``) from each fold's
    teacher, and reports the accuracy after every T on each fold's **validation** split for both:
    the numbers a choice between them may be based on. The test parts are not evaluated.

        python benchmarks/anytime_variants.py --runs OUT_OF_ANYTIME_EXIT --out OUT \\
            --set distill.prefix_weights=harmonic --set threads=1 --set progress=false

    Writes ``OUT/validation.json`` (per fold and pooled mean per T) and prints the pooled means.
    """
    parser = argparse.ArgumentParser(description=(variants_main.__doc__ or "").split("\n\n")[0])
    parser.add_argument("--config", default="nmnist")
    parser.add_argument("--runs", required=True, help="output folder of anytime_exit.py")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    keep_freed_memory()
    out = Path(args.out)
    rows = []
    for k in range(args.folds):
        cfg = load_config(
            args.config,
            [f"data.folds={args.folds}", f"data.fold={k}", "distill.loss=anytime", *args.set],
        )
        cfg.distill.steps = cfg.data.frames
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        data = prepare_data(cfg)
        fold = Path(args.runs) / cfg.data.dataset / f"fold{k}" / "runs"
        t0 = time.perf_counter()
        variant = distill(cfg, fold / "teacher", out / f"fold{k}", data=data, replace=True)
        steps = list(range(1, data.frames + 1))
        row: dict[str, Any] = {"fold": k, "validation_samples": len(data.val)}
        for name, path in (("default", fold / "hsd_anytime"), ("variant", variant)):
            result = evaluate_checkpoint(
                path, steps, split="val", cfg=cfg, data=data, progress=False
            )
            row[name] = result["accuracy"]
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"fold {k} done in {row['seconds']:.0f} s", flush=True)
    steps = list(rows[0]["default"])
    pooled = {
        name: {t: statistics.fmean(r[name][t] for r in rows) for t in steps}
        for name in ("default", "variant")
    }
    report = {"config": args.config, "overrides": args.set, "folds": rows, "mean": pooled}
    out.mkdir(parents=True, exist_ok=True)
    (out / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, acc in pooled.items():
        print(f"{name:8s}", " ".join(f"T={t}: {100 * a:.1f}" for t, a in acc.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
