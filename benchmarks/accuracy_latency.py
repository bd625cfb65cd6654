"""Accuracy against steps for every method, on the official test split and by k-fold
cross-validation.

For each evaluation (the official split once, then each of the k stratified folds over all
samples) it runs the full comparison of ``hsd demo`` with the given recipe: teacher, conversion
only, CE fine-tuning, KD on the mean, SNN from scratch, HSD, each evaluated at every T in
``evaluate.steps``. Settings come from the recipe, fixed beforehand on a validation split of the
training data; nothing here looks at a test split to choose anything.

    python benchmarks/accuracy_latency.py --config configs/nmnist.yaml --folds 5 \
        --out docs/benchmarks/nmnist

Writes ``OUT/<official|foldK>/`` (each a demo output), ``OUT/summary.json`` (per method and T:
official accuracy, fold mean and standard deviation), ``OUT/summary.md`` and
``OUT/accuracy_vs_steps.png`` (fold means with a ±1 std band).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from hsd.demo import run_demo
from hsd.eval.report import accuracy_table, plot_accuracy_vs_steps
from hsd.runtime import keep_freed_memory


def _aggregate(results: list[dict]) -> tuple[dict, dict]:
    """Per method: fold-mean accuracy per T, and the standard deviation over folds."""
    means: dict = {}
    spread: dict = {}
    for method, first in results[0]["methods"].items():
        steps = list(first["accuracy"])
        acc = {t: [r["methods"][method]["accuracy"][t] for r in results] for t in steps}
        means[method] = {
            "label": first["label"],
            "trained_steps": first["trained_steps"],
            "accuracy": {t: statistics.fmean(v) for t, v in acc.items()},
            "latency_ms": {
                t: statistics.fmean(r["methods"][method]["latency_ms"][t] for r in results)
                for t in steps
            },
        }
        spread[method] = {t: statistics.pstdev(v) if len(v) > 1 else 0.0 for t, v in acc.items()}
        if method == "teacher":
            all_frames = [r["methods"]["teacher"]["all_frames"] for r in results]
            means[method]["all_frames"] = statistics.fmean(all_frames)
            spread[method]["all_frames"] = statistics.pstdev(all_frames)
    return means, spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--skip-official", action="store_true")
    args = parser.parse_args(argv)
    keep_freed_memory()
    out = Path(args.out)
    t0 = time.perf_counter()

    official = None
    if not args.skip_official:
        official = run_demo(out / "official", config=args.config, overrides=[*args.set])
    folds = [
        run_demo(
            out / f"fold{k}",
            config=args.config,
            overrides=[*args.set, f"data.folds={args.folds}", f"data.fold={k}"],
        )
        for k in range(args.folds)
    ]
    means, spread = _aggregate(folds) if folds else ({}, {})
    summary = {
        "config": args.config,
        "overrides": args.set,
        "folds": args.folds,
        "official": None if official is None else official["methods"],
        "official_test_samples": None if official is None else official["test_samples"],
        "cv_mean": means,
        "cv_std": spread,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    parts = [f"Command: `python {' '.join(sys.argv)}`", ""]
    if official is not None:
        n = official["test_samples"]
        teacher = official["methods"]["teacher"]["all_frames"]
        parts += [
            f"### Official test split ({n} samples, one run)",
            "",
            f"Teacher on all {official['frames']} frames: {100 * teacher:.1f}%.",
            "",
            accuracy_table(official["methods"]),
            "",
        ]
    if folds:
        t_all, t_std = means["teacher"]["all_frames"], spread["teacher"]["all_frames"]
        parts += [
            f"### {args.folds}-fold cross-validation (mean ± std over folds)",
            "",
            f"Teacher on all {folds[0]['frames']} frames: {100 * t_all:.1f} ± {100 * t_std:.1f}%.",
            "",
            accuracy_table(means, spread=spread),
            "",
        ]
        plot_accuracy_vs_steps(
            means,
            out / "accuracy_vs_steps.png",
            title=f"{folds[0]['dataset']}: {args.folds}-fold CV, mean ± std",
            reference=(f"teacher, all {folds[0]['frames']} frames", t_all),
            spread=spread,
        )
    (out / "summary.md").write_text("\n".join(parts))
    print("\n".join(parts))
    print(f"total {summary['seconds']:.0f} s; wrote {out}/summary.json, summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
