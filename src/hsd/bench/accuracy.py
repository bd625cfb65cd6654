"""Accuracy against latency: every method, at every T, under both protocols, over several seeds.

For each dataset recipe and each training seed it trains the teacher once, then every method
(teacher on the first T frames and on all N, conversion only, CE fine-tuning, KD on the mean
output, an SNN from scratch with cross-entropy, one with TET, HSD, anytime HSD) and evaluates each
on the test split at every T in ``--steps`` under each protocol (``prefix``: the first T of the
N frames; ``rebin``: the whole stream re-cut into T frames). The students and the networks from
scratch are trained under the protocol they are evaluated with; the teacher, the converted network
and anytime HSD (trained at T = N, where both protocols give the same frames) are trained once per
seed and serve both protocols.

Seeds vary the training (initialisation, shuffling, augmentation); the split is the recipe's
(``data.seed``), the same for every seed, so the spread is the spread of training. Every network
is selected on the validation split (carved from the training data) and the test split is
evaluated once per network; nothing is tuned on it.

    python benchmarks/accuracy_latency.py --dataset nmnist --dataset digits-dvs \
        --out docs/benchmarks/accuracy --set threads=1 --set progress=false

Writes, per dataset, ``OUT/<dataset>/results.json`` (every seed's numbers and their summary:
mean and sample standard deviation over seeds per method, protocol and T; event time to decision
in ms), ``OUT/<dataset>/summary.md`` (one table per protocol) and
``OUT/<dataset>/accuracy_<protocol>.png`` (mean with a ±1 std band); run directories under
``OUT/<dataset>/runs/``. ``--folds K`` instead runs the official split once and K-fold
cross-validation with ``hsd demo``'s comparison (:func:`hsd.bench.runner.run_once`; the earlier
form of this benchmark).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hsd.bench.common import command_line, record_header
from hsd.bench.runner import (
    METHODS,
    PROTOCOL_FREE,
    QUICK_OVERRIDES,
    run_once,
    run_split,
    same_budget,
    test_keys,
    train_methods,
)
from hsd.bench.significance import interval_table, noise_sentence, table_footer
from hsd.config import config_with, load_config
from hsd.errors import ConfigError
from hsd.eval.report import accuracy_table, plot_accuracy_vs_steps
from hsd.pipeline import prepare_data
from hsd.runtime import keep_freed_memory
from hsd.train.engine import resolve_device

__all__ = [
    "BENCH_METHODS",
    "DATASETS",
    "QUICK",
    "aggregate_seeds",
    "cli_args",
    "main",
    "mean_std",
    "run_accuracy",
    "summary_markdown",
    "write_report",
]

# Dataset -> recipe shipped with hsd (hsd.recipes).
DATASETS = {"digits-dvs": "demo", "nmnist": "nmnist"}
BENCH_METHODS = tuple(METHODS)
STEPS = (1, 2, 3, 4, 5, 10)
SEEDS = (0, 1, 2)
PROTOCOLS = ("prefix", "rebin")
# ``--quick``: the embedded data only, 400 training samples, a few epochs, two seeds (about a
# minute at one thread; a smoke run: the teacher reaches about 75% instead of 98%).
QUICK = [*QUICK_OVERRIDES, "teacher.optim.epochs=4", "data.limit=400"]
QUICK_SEEDS = (0, 1)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0 for one value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_seeds(per_seed: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{seed: {method: entry}}`` (entries of :func:`hsd.bench.runner.evaluate_methods`) -> per
    method ``{"label", "trained_steps", "seeds", "accuracy": {T: mean}, "std": {T: std},
    "latency_ms": {T: mean ms or None}}`` (plus ``all_frames``/``all_frames_std`` for the teacher).
    """
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    summary: dict[str, Any] = {}
    for method, entry in first.items():
        rows = [per_seed[s][method] for s in seeds]
        accuracy, spread, latency = {}, {}, {}
        for t in entry["accuracy"]:
            accuracy[t], spread[t] = mean_std([r["accuracy"][t] for r in rows])
            ms = [r["latency_ms"][t] for r in rows]
            latency[t] = None if any(v is None for v in ms) else statistics.fmean(ms)
        summary[method] = {
            "label": entry["label"],
            "trained_steps": entry["trained_steps"],
            "seeds": len(rows),
            "accuracy": accuracy,
            "std": spread,
            "latency_ms": latency,
        }
        if "all_frames" in entry:
            mean, std = mean_std([r["all_frames"] for r in rows])
            summary[method].update(all_frames=mean, all_frames_std=std)
    return summary


def run_accuracy(
    config: str | Path | None,
    out: str | Path,
    *,
    seeds: Sequence[int] = SEEDS,
    protocols: Sequence[str] = PROTOCOLS,
    steps: Sequence[int] = STEPS,
    methods: Sequence[str] = BENCH_METHODS,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Train and evaluate ``methods`` for every seed and protocol on one recipe.

    Returns (and writes to ``OUT/results.json``) ``{"dataset", "frames", "steps", "seeds",
    "protocols", "methods", "runs": {protocol: {seed: {method: entry}}}, "summary": {protocol:
    {method: aggregate}}, ...}``; accuracies are fractions, latencies milliseconds of event time.
    """
    t_start = time.perf_counter()
    overrides = list(overrides)
    if "teacher" not in methods:
        raise ConfigError("the accuracy benchmark compares against the teacher: include it")
    for p in protocols:
        if p not in PROTOCOLS:
            raise ConfigError(f"unknown protocol '{p}' (prefix or rebin)")
    base = same_budget(load_config(config, overrides), overrides)
    data = prepare_data(base)
    n = data.frames
    steps = sorted({int(t) for t in steps})
    if steps[-1] > n:
        raise ConfigError(f"T={steps[-1]} exceeds the {n} frames per sample of {config}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shared_methods = [m for m in methods if m in PROTOCOL_FREE]
    runs: dict[str, dict[str, Any]] = {p: {} for p in protocols}
    seconds: dict[str, float] = {}
    results: dict[str, Any] = {}
    for seed in tqdm(list(seeds), desc=f"{base.data.dataset} seeds", disable=not base.progress):
        t_seed = time.perf_counter()
        cfg = config_with(base, seed=int(seed))
        seed_runs = out / "runs" / f"seed{seed}"
        shared = train_methods(cfg, data, seed_runs, shared_methods)
        for protocol in protocols:
            cfg_p = config_with(
                cfg,
                distill__protocol=protocol,
                baseline__protocol=protocol,
                evaluate__protocol=protocol,
            )
            _, evaluated = run_split(
                cfg_p, data, seed_runs / protocol, methods, steps, protocol=protocol, reuse=shared
            )
            if protocol == "rebin":
                evaluated["teacher"]["label"] = "teacher ANN (stream in T frames)"
            runs[protocol][str(seed)] = evaluated
        seconds[str(seed)] = round(time.perf_counter() - t_seed, 1)
        results = {
            **record_header(resolve_device(base.device), base.data.dataset, config, overrides),
            "frames": n,
            "split_by": base.data.split_by,
            "train_samples": len(data.train),
            "val_samples": len(data.val),
            "test_samples": len(data.test),
            "test_keys": test_keys(data),
            "manifest_hash": data.manifest.hash,
            "epochs": {
                "teacher": base.teacher.optim.epochs,
                "finetune": base.distill.optim.epochs,
                "scratch": base.baseline.optim.epochs,
            },
            "trained_at": {"finetune": base.distill.steps, "scratch": base.baseline.steps},
            "steps": steps,
            "seeds": [int(s) for s in seeds if str(s) in seconds],
            "protocols": list(protocols),
            "methods": list(methods),
            "std": "sample standard deviation over seeds (n - 1)",
            "summary": {p: aggregate_seeds(runs[p]) for p in protocols},
            "runs": runs,
            "seconds_per_seed": seconds,
            "seconds": round(time.perf_counter() - t_start, 1),
        }
        # written after every seed: an interrupted run keeps what it finished
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, out)
    return results


def write_report(results: Mapping[str, Any], out: str | Path) -> None:
    """``OUT/accuracy_<protocol>.png`` (mean, ±1 std band, teacher on all N frames as reference)
    and ``OUT/summary.md`` from the content of ``results.json``."""
    out = Path(out)
    n = results["frames"]
    for protocol in results["protocols"]:
        summary = results["summary"][protocol]
        plot_accuracy_vs_steps(
            summary,
            out / f"accuracy_{protocol}.png",
            title=f"{results['dataset']}, {protocol} protocol: mean ± std over seeds "
            f"{', '.join(map(str, results['seeds']))}",
            reference=(f"teacher, all {n} frames", summary["teacher"]["all_frames"]),
            spread={m: s["std"] for m, s in summary.items()},
        )
    (out / "summary.md").write_text(summary_markdown(results))


def summary_markdown(results: Mapping[str, Any]) -> str:
    """One Markdown table per protocol: mean ± std (in %) per method and T with the 95% Wilson
    interval over the test recordings, significance against HSD at the fine-tuning T (exact
    McNemar in every seed), event-time row."""
    n, seeds = results["frames"], results["seeds"]
    parts = [
        f"## {results['dataset']}: accuracy against steps (seed{'s' * (len(seeds) > 1)} "
        f"{', '.join(map(str, seeds))})",
        "",
        f"Test split: {results['test_samples']} samples (manifest "
        f"{results['manifest_hash'][:12]}); train {results['train_samples']}, validation "
        f"{results['val_samples']}. N = {n} frames split by {results['split_by']}.",
        "",
    ]
    for protocol in results["protocols"]:
        summary = results["summary"][protocol]
        teacher = summary["teacher"]
        what = (
            "the network sees the first T of the N frames"
            if protocol == "prefix"
            else "the whole stream re-cut into T frames"
        )
        parts += [
            f"### {protocol} protocol ({what})",
            "",
            f"Teacher on all {n} frames: {100 * teacher['all_frames']:.1f} ± "
            f"{100 * teacher['all_frames_std']:.1f}%.",
            "",
            *_significance_table(results, protocol),
            "",
            f"![{results['dataset']}, {protocol}](accuracy_{protocol}.png)",
            "",
        ]
    return "\n".join(parts)


def _significance_table(results: Mapping[str, Any], protocol: str) -> list[str]:
    """The protocol's table (mean ± std over seeds, 95% Wilson interval over the test
    recordings, ``*`` on significant differences from HSD at the fine-tuning T), its footer and
    one sentence on what it shows; the plain mean ± std table for results without per-recording
    outcomes (written before they were kept)."""
    summary = results["summary"][protocol]
    spread = {m: s["std"] for m, s in summary.items()}
    runs = list(results["runs"][protocol].values())
    if not all("correct" in e for run in runs for e in run.values()):
        return [accuracy_table(summary, spread=spread)]
    steps = [int(t) for t in results["steps"]]
    t = int(results["trained_at"]["finetune"])
    t = t if t in steps else steps[0]
    return [
        interval_table(runs, highlight=t, spread=spread),
        "",
        table_footer(runs, t),
        "",
        noise_sentence(runs, t),
    ]


def _recipe(dataset: str, overrides: list[str]) -> tuple[str | None, str | None]:
    """(recipe name, reason to skip or None) for a dataset of :data:`DATASETS`: the recipes ship
    inside hsd (:mod:`hsd.recipes`), so this works from any folder; a dataset that needs a folder
    is skipped when neither ``--set data.root=DIR`` nor its environment variable gives one."""
    from hsd.data.registry import default_root, resolve_dataset, root_variable

    recipe = DATASETS[dataset]
    cfg = load_config(recipe, overrides)
    if not resolve_dataset(cfg.data.dataset).needs_root:
        return recipe, None
    root = cfg.data.root if cfg.data.root is not None else default_root(cfg.data.dataset)
    if root is None:
        return None, f"no dataset folder (--set data.root=DIR or {root_variable(dataset)})"
    if not Path(root).exists():
        return None, f"{root} not found"
    return recipe, None


def _run_folds(args: argparse.Namespace) -> int:
    """The official split once and ``--folds`` stratified folds, each :func:`run_once` (the
    comparison ``hsd demo`` reports)."""
    out = Path(args.out)
    t0 = time.perf_counter()
    official = None
    if not args.skip_official:
        official = run_once(out / "official", config=args.config, overrides=[*args.set])
    folds = [
        run_once(
            out / f"fold{k}",
            config=args.config,
            overrides=[*args.set, f"data.folds={args.folds}", f"data.fold={k}"],
        )
        for k in range(args.folds)
    ]
    means, spread = _aggregate_folds(folds) if folds else ({}, {})
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
    parts = [f"Command: `{command_line()}`", ""]
    if official is not None:
        teacher = official["methods"]["teacher"]["all_frames"]
        parts += [
            f"### Official test split ({official['test_samples']} samples, one run)",
            "",
            f"Teacher on all {official['frames']} frames: {100 * teacher:.1f}%.",
            "",
            interval_table(official["methods"], highlight=official["settings"]["distill_steps"]),
            "",
            table_footer(official["methods"], official["settings"]["distill_steps"]),
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
            *_pooled_folds_table(folds),
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


def _pooled_folds_table(folds: list[dict]) -> list[str]:
    """Every fold's test part put together (each recording once): the pooled accuracy with its
    95% Wilson interval, McNemar marks against HSD at the fine-tuning T, footer and sentence."""
    from hsd.bench.early import pool_folds

    pooled = pool_folds(
        [
            {**f, "fold": k, "seed": 0, "test_keys": f.get("test_keys", [])}
            for k, f in enumerate(folds)
        ]
    )[0]
    t = int(folds[0]["settings"]["distill_steps"])
    recordings = sum(f["test_samples"] for f in folds)
    return [
        f"Pooled over the {len(folds)} folds' test parts ({recordings} recordings, each once):",
        "",
        interval_table(pooled, highlight=t),
        "",
        table_footer(pooled, t),
        "",
        noise_sentence(pooled, t),
        "",
    ]


def _aggregate_folds(results: list[dict]) -> tuple[dict, dict]:
    """Per method: fold-mean accuracy per T, and the population standard deviation over folds."""
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


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accuracy_latency.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--dataset",
        action="append",
        choices=sorted(DATASETS),
        default=None,
        help="dataset with its recipe shipped with hsd (repeatable; default: all)",
    )
    parser.add_argument("--config", default=None, help="one recipe instead of --dataset")
    parser.add_argument(
        "--seeds", type=_ints, default=None, help="e.g. 0,1,2 (default 0,1,2; --quick: 0,1)"
    )
    parser.add_argument("--steps", type=_ints, default=list(STEPS), help="e.g. 1,2,3,4,5,10")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="prefix,rebin")
    parser.add_argument("--methods", default=",".join(BENCH_METHODS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="tiny settings, digits-dvs only")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--folds", type=int, default=0, help=">0: official split + k-fold CV (needs --config)"
    )
    parser.add_argument("--skip-official", action="store_true", help="with --folds only")
    return parser


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: every dataset whose recipe and data
    are here (``--quick``: digits-dvs only, small settings), output under ``out/accuracy``."""
    return ["--out", str(out / "accuracy"), *(["--quick"] if quick else [])]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    if args.folds:
        if args.config is None:
            raise ConfigError("--folds needs --config")
        return _run_folds(args)
    overrides = [*(QUICK if args.quick else []), *args.set]
    seeds = args.seeds or list(QUICK_SEEDS if args.quick else SEEDS)
    if args.config is not None:
        recipes = {Path(args.config).stem: args.config}
    else:
        names = args.dataset or (["digits-dvs"] if args.quick else list(DATASETS))
        recipes = {}
        for name in names:
            path, skip = _recipe(name, overrides)
            if skip:
                print(f"accuracy: skipping {name}: {skip}")
                continue
            recipes[name] = path
    out = Path(args.out)
    kwargs = {
        "seeds": seeds,
        "protocols": [p for p in args.protocols.split(",") if p],
        "steps": args.steps,
        "methods": [m for m in args.methods.split(",") if m],
    }
    for name, path in recipes.items():
        results = run_accuracy(path, out / name, overrides=overrides, **kwargs)
        print(summary_markdown(results))
        print(f"{name}: {results['seconds']:.0f} s; wrote {out / name}/results.json, summary.md")
    return 0
