"""``hsd demo``: the whole method and its baselines on one dataset, in one command.

Trains the QCFS teacher on N frames, converts it, fine-tunes the converted network at T steps
three ways (step-wise distillation = HSD, KD on the mean output, cross-entropy only), fine-tunes
it once more with anytime distillation over all N steps (good at every prefix: for early exit),
trains the same architecture from scratch as a spiking network at T steps, and evaluates every
network on the test split at each requested T. Writes ``OUT/report.md``,
``OUT/accuracy_vs_steps.png``, ``OUT/results.json`` and one run directory per stage under
``OUT/runs/``.

Budget: the from-scratch network gets as many epochs as the whole HSD pipeline (teacher epochs +
fine-tuning epochs) unless ``baseline.optim.epochs`` is set explicitly by the recipe or
``--set``: "the same epoch budget".

The default dataset, ``digits-dvs``, is **emulated** by hsd's DVS emulator from scikit-learn's
digits, not recorded by a sensor.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hsd.config import Config, config_with, load_config
from hsd.errors import ConfigError
from hsd.eval.report import accuracy_table, plot_accuracy_vs_steps
from hsd.pipeline import (
    PreparedData,
    convert_checkpoint,
    distill,
    evaluate_checkpoint,
    prepare_data,
    train_baseline,
    train_teacher,
)

__all__ = [
    "DEMO_METHODS",
    "METHODS",
    "PROTOCOL_FREE",
    "QUICK_OVERRIDES",
    "evaluate_methods",
    "run_demo",
    "same_budget",
    "train_methods",
]

# ``--quick``: the same pipeline with a fraction of the epochs (about a minute on 2 CPU cores).
QUICK_OVERRIDES = [
    "teacher.optim.epochs=3",
    "distill.optim.epochs=1",
    "baseline.optim.epochs=4",
]

# Every method hsd can train and compare, in table order, with its label.
METHODS = {
    "teacher": "teacher ANN (first T frames)",
    "converted": "conversion only",
    "finetune_ce": "fine-tune, CE only",
    "kd_mean": "fine-tune, KD on mean",
    "direct": "SNN from scratch",
    "tet": "SNN from scratch, TET",
    "hsd": "HSD (step-wise KD)",
    "hsd_anytime": "HSD anytime (all prefixes)",
}
# What ``hsd demo`` compares (TET is left to ``hsd bench``: it doubles the from-scratch cost).
DEMO_METHODS = ("teacher", "converted", "finetune_ce", "kd_mean", "direct", "hsd", "hsd_anytime")
# Methods whose training does not depend on the student protocol: the teacher sees all N frames,
# conversion trains nothing, anytime distillation trains at T = N, where ``prefix`` and ``rebin``
# give the same frames. One checkpoint serves both protocols.
PROTOCOL_FREE = frozenset({"teacher", "converted", "hsd_anytime"})
_FINETUNE_LOSS = {"hsd": "skd", "finetune_ce": "ce", "kd_mean": "kd_mean"}
_NEEDS_TEACHER = frozenset({"teacher", "converted", "hsd_anytime", *_FINETUNE_LOSS})
_BASELINE_LOSS = {"direct": "ce", "tet": "tet"}


def same_budget(cfg: Config, overrides: list[str]) -> Config:
    """Give the from-scratch networks the epochs of the whole HSD pipeline (teacher + fine-tuning)
    unless ``baseline.optim.epochs`` is among ``overrides``; changes ``cfg`` in place."""
    if not any(o.startswith("baseline.optim.epochs") for o in overrides):
        cfg.baseline.optim.epochs = cfg.teacher.optim.epochs + cfg.distill.optim.epochs
    return cfg


def train_methods(
    cfg: Config,
    data: PreparedData,
    runs: Path,
    methods: tuple[str, ...] | list[str],
    *,
    reuse: dict[str, Path] | None = None,
) -> dict[str, Path]:
    """Train the checkpoint of every method in ``methods`` (keys of :data:`METHODS`) under
    ``runs/<method>/``; students at ``cfg.distill.steps`` and ``cfg.distill.protocol``, networks
    from scratch at ``cfg.baseline.steps`` and ``cfg.baseline.protocol``. Checkpoints in ``reuse``
    (method -> path, e.g. the teacher of another protocol) are taken as they are.
    Returns method -> best checkpoint path."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")
    checkpoints = dict(reuse or {})
    if _NEEDS_TEACHER & set(methods) and "teacher" not in checkpoints:
        checkpoints["teacher"] = train_teacher(cfg, runs / "teacher", data=data, replace=True)
    for method in methods:
        if method in checkpoints:
            continue
        out = runs / method
        if method == "converted":
            checkpoints[method] = convert_checkpoint(checkpoints["teacher"], out, replace=True)
        elif method in _FINETUNE_LOSS:
            student = config_with(cfg, distill__loss=_FINETUNE_LOSS[method])
            checkpoints[method] = distill(
                student, checkpoints["teacher"], out, data=data, replace=True
            )
        elif method == "hsd_anytime":
            student = config_with(cfg, distill__loss="anytime", distill__steps=data.frames)
            checkpoints[method] = distill(
                student, checkpoints["teacher"], out, data=data, replace=True
            )
        else:
            scratch = config_with(cfg, baseline__loss=_BASELINE_LOSS[method])
            checkpoints[method] = train_baseline(scratch, out, data=data, replace=True)
    return {m: checkpoints[m] for m in methods}


def evaluate_methods(
    cfg: Config,
    data: PreparedData,
    checkpoints: dict[str, Path],
    steps: list[int],
    *,
    protocol: str,
) -> dict[str, Any]:
    """Test accuracy of every checkpoint after each T in ``steps`` under ``protocol``.

    Returns ``{method: {"label", "trained_steps", "accuracy": {T: fraction}, "latency_ms": {T:
    ms}, "firing_rates", "checkpoint"}}`` with, for the teacher, ``"all_frames"``: its accuracy
    on all N frames.
    """
    n = data.frames
    methods: dict[str, Any] = {}
    for method, path in checkpoints.items():
        eval_steps = sorted(set(steps) | {n}) if method == "teacher" else steps
        result = evaluate_checkpoint(
            path, eval_steps, protocol=protocol, cfg=cfg, data=data, progress=cfg.progress
        )
        trained: int | str | None
        if method == "teacher":
            trained = n
        elif method == "converted":
            trained = None
        elif method in _BASELINE_LOSS:
            trained = cfg.baseline.steps
        elif method == "hsd_anytime":
            trained = f"1..{n}"
        else:
            trained = cfg.distill.steps
        entry = {
            "label": METHODS[method],
            "trained_steps": trained,
            "accuracy": {str(t): result["accuracy"][str(t)] for t in steps},
            "latency_ms": {str(t): result["latency_ms"][str(t)] for t in steps},
            "firing_rates": result["firing_rates"],
            "checkpoint": str(path),
        }
        if method == "teacher":
            entry["all_frames"] = result["accuracy"][str(n)]
        methods[method] = entry
    return methods


def run_demo(
    out: str | Path = "demo-out",
    *,
    quick: bool = False,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    methods: tuple[str, ...] | list[str] = DEMO_METHODS,
) -> dict[str, Any]:
    """Run the demo; returns the content of ``results.json``. ``methods`` (keys of
    :data:`METHODS`, must include the teacher) defaults to :data:`DEMO_METHODS`."""
    if "teacher" not in methods:
        raise ConfigError("the demo compares against the teacher: include 'teacher' in methods")
    t_start = time.perf_counter()
    user_overrides = list(overrides or [])
    all_overrides = (QUICK_OVERRIDES if quick else []) + user_overrides
    cfg = same_budget(load_config(config, all_overrides), all_overrides)
    out = Path(out)
    data = prepare_data(cfg)
    n = data.frames
    steps = sorted({int(t) for t in cfg.evaluate.steps if int(t) <= n} | {cfg.distill.steps})
    protocol = cfg.evaluate.protocol

    checkpoints = train_methods(cfg, data, out / "runs", methods)
    results_by_method = evaluate_methods(cfg, data, checkpoints, steps, protocol=protocol)

    results = {
        "dataset": cfg.data.dataset,
        "emulated": cfg.data.dataset == "digits-dvs",
        "frames": n,
        "protocol": protocol,
        "split": "test",
        "test_samples": len(data.test),
        "manifest_hash": data.manifest.hash,
        "quick": quick,
        "methods": results_by_method,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    teacher_all = results_by_method["teacher"]["all_frames"]
    plot_accuracy_vs_steps(
        results_by_method,
        out / "accuracy_vs_steps.png",
        title=f"{cfg.data.dataset}: accuracy against steps ({protocol} protocol)",
        reference=(f"teacher, all {n} frames", teacher_all),
    )
    (out / "report.md").write_text(_report(cfg, results, teacher_all))
    return results


def _report(cfg: Config, results: dict[str, Any], teacher_all: float) -> str:
    n = results["frames"]
    source = (
        "digits-dvs: scikit-learn's handwritten digits turned into event streams by hsd's DVS "
        "emulator (emulated, not recorded)"
        if results["emulated"]
        else cfg.data.dataset
    )
    lines = [
        f"# hsd demo on {cfg.data.dataset}",
        "",
        f"Data: {source}. Test split: {results['test_samples']} samples "
        f"(manifest {results['manifest_hash'][:12]}); models chosen on the validation split.",
        f"Frames: N = {n}, split by {cfg.data.split_by}; protocol `{results['protocol']}` "
        "(the network sees the first T of the N frames).",
        f"Fine-tuning at T = {cfg.distill.steps}: {cfg.distill.optim.epochs} epochs; teacher "
        f"{cfg.teacher.optim.epochs} epochs; SNN from scratch {cfg.baseline.optim.epochs} epochs "
        f"at T = {cfg.baseline.steps}.",
        "",
        f"**Teacher on all {n} frames: {100 * teacher_all:.1f}%.**",
        "",
        "Test accuracy (%) after T time steps (prediction = argmax of the mean of the first T "
        "per-step outputs):",
        "",
        accuracy_table(results["methods"]),
        "",
        "![accuracy against steps](accuracy_vs_steps.png)",
        "",
        f"Total time: {results['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
