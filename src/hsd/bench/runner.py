"""One fold/seed/method runner shared by ``hsd demo``, ``hsd bench accuracy``, the anytime
benchmark and the fine-time protocol (``hsd bench early``).

* :func:`train_methods` trains the checkpoint of every method (keys of :data:`METHODS`) on one
  split; :func:`evaluate_methods` evaluates them on its test part at every T, keeping the
  per-recording outcome (``"correct": {T: [0/1 per test recording]}``, in the order of
  :func:`test_keys`) that paired tests between methods need.
* :func:`run_split` is the two together; :func:`run_once` is one whole comparison on one recipe
  (what ``hsd demo`` reports).
* :func:`cross_validate` runs a function on every stratified fold (and seed) of a recipe, writing
  each result as ``result.json`` as soon as it is done and reusing it when run again.

Layering: this module imports the pipeline (train, models, data); ``hsd.demo`` and the benchmark
modules import it; nothing below imports it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hsd.config import Config, config_with, load_config
from hsd.errors import ConfigError
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
    "cross_validate",
    "evaluate_methods",
    "run_once",
    "run_split",
    "same_budget",
    "test_keys",
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


def same_budget(cfg: Config, overrides: Sequence[str]) -> Config:
    """Give the from-scratch networks the epochs of the whole HSD pipeline (teacher + fine-tuning)
    unless ``baseline.optim.epochs`` is among ``overrides``; changes ``cfg`` in place."""
    if not any(o.startswith("baseline.optim.epochs") for o in overrides):
        cfg.baseline.optim.epochs = cfg.teacher.optim.epochs + cfg.distill.optim.epochs
    return cfg


def train_methods(
    cfg: Config,
    data: PreparedData,
    runs: Path,
    methods: Sequence[str],
    *,
    reuse: dict[str, Path] | None = None,
) -> dict[str, Path]:
    """Train the checkpoint of every method in ``methods`` (keys of :data:`METHODS`) under
    ``runs/<method>/``; students at ``cfg.distill.steps`` and ``cfg.distill.protocol``, networks
    from scratch at ``cfg.baseline.steps`` and ``cfg.baseline.protocol``. Checkpoints in ``reuse``
    (method -> path, e.g. the teacher of another protocol) are taken as they are.
    Returns method -> best checkpoint path (each chosen on the validation split)."""
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


def test_keys(data: PreparedData) -> list[str]:
    """Keys of the test recordings in the order of every ``"correct"`` list."""
    return [str(data.arrays.keys[int(pos)]) for pos in data.test]


def evaluate_methods(
    cfg: Config,
    data: PreparedData,
    checkpoints: dict[str, Path],
    steps: Sequence[int],
    *,
    protocol: str,
) -> dict[str, Any]:
    """Test accuracy of every checkpoint after each T in ``steps`` under ``protocol``.

    Returns ``{method: {"label", "trained_steps", "accuracy": {T: fraction}, "latency_ms": {T:
    ms}, "correct": {T: [0/1 per test recording, order of test_keys(data)]}, "firing_rates",
    "checkpoint"}}`` with, for the teacher, ``"all_frames"``: its accuracy on all N frames.
    """
    n = data.frames
    steps = list(steps)
    methods: dict[str, Any] = {}
    for method, path in checkpoints.items():
        eval_steps = sorted(set(steps) | {n}) if method == "teacher" else steps
        result = evaluate_checkpoint(
            path,
            eval_steps,
            protocol=protocol,
            cfg=cfg,
            data=data,
            progress=cfg.progress,
            per_sample=True,
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
            "correct": {str(t): result["correct"][str(t)] for t in steps},
            "firing_rates": result["firing_rates"],
            "checkpoint": str(path),
        }
        if method == "teacher":
            entry["all_frames"] = result["accuracy"][str(n)]
        methods[method] = entry
    return methods


def run_split(
    cfg: Config,
    data: PreparedData,
    runs: Path,
    methods: Sequence[str],
    steps: Sequence[int],
    *,
    protocol: str = "prefix",
    reuse: dict[str, Path] | None = None,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Train every method on ``data``'s split and evaluate it on its test part:
    ``(checkpoints, evaluate_methods(...))``."""
    checkpoints = train_methods(cfg, data, runs, methods, reuse=reuse)
    return checkpoints, evaluate_methods(cfg, data, checkpoints, steps, protocol=protocol)


def run_once(
    out: str | Path,
    *,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    methods: Sequence[str] = DEMO_METHODS,
    quick: bool = False,
) -> dict[str, Any]:
    """Every method on one recipe's split, evaluated at ``evaluate.steps`` (and the fine-tuning
    T) under ``evaluate.protocol``. Writes and returns ``OUT/results.json``'s content:
    ``{"dataset", "emulated", "frames", "protocol", "split", "test_samples", "test_keys",
    "manifest_hash", "quick", "methods": evaluate_methods(...), "seconds", "settings"}``."""
    if "teacher" not in methods:
        raise ConfigError("the comparison is against the teacher: include 'teacher' in methods")
    t_start = time.perf_counter()
    all_overrides = (QUICK_OVERRIDES if quick else []) + list(overrides)
    cfg = same_budget(load_config(config, all_overrides), all_overrides)
    out = Path(out)
    data = prepare_data(cfg)
    n = data.frames
    steps = sorted({int(t) for t in cfg.evaluate.steps if int(t) <= n} | {cfg.distill.steps})
    protocol = cfg.evaluate.protocol
    _, evaluated = run_split(cfg, data, out / "runs", methods, steps, protocol=protocol)
    results = {
        "dataset": cfg.data.dataset,
        "emulated": cfg.data.dataset == "digits-dvs",
        "frames": n,
        "protocol": protocol,
        "split": "test",
        "test_samples": len(data.test),
        "test_keys": test_keys(data),
        "manifest_hash": data.manifest.hash,
        "quick": quick,
        "settings": {
            "split_by": cfg.data.split_by,
            "distill_steps": cfg.distill.steps,
            "distill_epochs": cfg.distill.optim.epochs,
            "teacher_epochs": cfg.teacher.optim.epochs,
            "baseline_epochs": cfg.baseline.optim.epochs,
            "baseline_steps": cfg.baseline.steps,
        },
        "methods": evaluated,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def cross_validate(
    config: str | Path | None,
    overrides: Sequence[str],
    run_fold: Callable[[Config, Path], dict[str, Any]],
    out: str | Path,
    *,
    folds: int,
    fold_list: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``run_fold(cfg, fold_out)`` on every fold of ``fold_list`` (default all ``folds``) of a
    stratified k-fold split over all recordings (``data.folds``/``data.fold``; the validation
    split is carved from each fold's training part) and, with ``seeds``, every training seed.

    Each result goes to ``OUT/<dataset>/fold<k>[/seed<s>]/result.json`` as soon as it is done
    and is read back instead of trained again on a later run (an interrupted run resumes).
    Returns the results in fold (then seed) order, each with ``"fold"`` (and ``"seed"``) set.
    """
    out = Path(out)
    results = []
    for k in fold_list if fold_list is not None else range(folds):
        for seed in seeds if seeds is not None else [None]:
            extra = [f"data.folds={folds}", f"data.fold={k}"]
            if seed is not None:
                extra.append(f"seed={seed}")
            cfg = load_config(config, [*overrides, *extra])
            fold_out = out / cfg.data.dataset / f"fold{k}"
            if seed is not None:
                fold_out = fold_out / f"seed{seed}"
            done = fold_out / "result.json"
            name = f"fold {k}" + ("" if seed is None else f" seed {seed}")
            if done.is_file():
                results.append(json.loads(done.read_text()))
                log(f"{name}: reusing {done}")
                continue
            t0 = time.perf_counter()
            result = run_fold(cfg, fold_out)
            result.setdefault("seconds", round(time.perf_counter() - t0, 1))
            result["fold"] = int(k)
            if seed is not None:
                result["seed"] = int(seed)
            fold_out.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(result, indent=2) + "\n")
            log(f"{name}: done in {result['seconds']:.0f} s")
            results.append(result)
    return results
