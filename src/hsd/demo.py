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

from pathlib import Path
from typing import Any

from hsd.bench.runner import (
    DEMO_METHODS,
    METHODS,
    PROTOCOL_FREE,
    QUICK_OVERRIDES,
    evaluate_methods,
    run_once,
    same_budget,
    train_methods,
)
from hsd.bench.significance import interval_table, noise_sentence, table_footer
from hsd.config import Config, load_config
from hsd.errors import ConfigError
from hsd.eval.report import plot_accuracy_vs_steps

# The training and evaluation live in hsd.bench.runner (shared with hsd bench); re-exported here.
__all__ = [
    "DEMO_METHODS",
    "METHODS",
    "PROTOCOL_FREE",
    "QUICK_OVERRIDES",
    "closing_line",
    "evaluate_methods",
    "run_demo",
    "same_budget",
    "train_methods",
]


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
    user_overrides = list(overrides or [])
    results = run_once(out, config=config, overrides=user_overrides, methods=methods, quick=quick)
    all_overrides = (QUICK_OVERRIDES if quick else []) + user_overrides
    cfg = same_budget(load_config(config, all_overrides), all_overrides)
    out = Path(out)
    n = results["frames"]
    teacher_all = results["methods"]["teacher"]["all_frames"]
    plot_accuracy_vs_steps(
        results["methods"],
        out / "accuracy_vs_steps.png",
        title=f"{cfg.data.dataset}: accuracy against steps ({results['protocol']} protocol)",
        reference=(f"teacher, all {n} frames", teacher_all),
    )
    (out / "report.md").write_text(_report(cfg, results, teacher_all))
    return results


def highlighted_steps(results: dict[str, Any]) -> int:
    """The T the demo's significance marks are at: the fine-tuning T (where HSD was trained)."""
    return int(results["settings"]["distill_steps"])


def demo_table(results: dict[str, Any]) -> str:
    """The demo's accuracy table: 95% intervals, significance against HSD at the fine-tuning T,
    and the footer saying what the marks mean."""
    t = highlighted_steps(results)
    return (
        interval_table(results["methods"], highlight=t)
        + "\n\n"
        + table_footer(results["methods"], t)
    )


def closing_line(results: dict[str, Any]) -> str:
    """One sentence on what the demo's table shows and does not (see
    :func:`hsd.bench.significance.noise_sentence`), plus the single seed and split."""
    sentence = noise_sentence(results["methods"], highlighted_steps(results))
    return sentence[:-1] + " (one training seed, one split)."


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
        demo_table(results),
        "",
        "![accuracy against steps](accuracy_vs_steps.png)",
        "",
        f"Total time: {results['seconds']:.0f} s.",
        "",
        f"**What this shows:** {closing_line(results)}",
        "",
    ]
    return "\n".join(lines)
