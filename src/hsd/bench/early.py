"""Decisions after 10 ms: every method at fine time steps of real events, cross-validated, with
intervals and paired tests (issue 13).

The protocol: every recording is cut into N frames of a fixed duration (``--frame-ms``, from its
first event: ``data.split_by=time``, ``data.frame_us``; events after N frames are left out); the
teacher is trained on all N frames; every method of ``hsd bench accuracy``
(:data:`hsd.bench.runner.METHODS`: teacher on the first T frames, conversion only, CE and
mean-KD fine-tuning, HSD, SNN from scratch with CE and with TET, anytime HSD) is trained by
:func:`hsd.bench.runner.run_split` and evaluated on the first T frames (prefix protocol) at every
T in ``--steps`` and N, i.e. after T x frame-ms of events. Stratified ``--folds``-fold
cross-validation over all recordings (fixed split seed ``data.seed``), every fold trained with
each training seed of ``--seeds``; the settings are the recipe's, each checkpoint is the best on a
validation split carved from its fold's training part, and the test part of a fold is evaluated
once per network and used for nothing else.

    hsd bench early --out runs/early --set data.root=NMNIST_DIR       # the full protocol
    python benchmarks/early_decisions.py --root NMNIST_DIR --frames 30 --frame-ms 10 \\
        --folds 5 --seeds 0,1 --out docs/benchmarks/early
    python benchmarks/early_decisions.py --quick --out /tmp/early  # seconds: embedded data

Writes ``OUT/summary.json``: per protocol (``<N>x<frame-ms>ms``), method and T the accuracy
pooled over folds (and averaged over seeds), its 95 % Wilson interval over the recordings, the
per-fold and per-seed values; for each pair of methods at T <= 3 the exact McNemar test on the
pooled per-recording outcomes (each seed on its own) and a paired bootstrap (over recordings,
differences averaged over seeds) of the accuracy difference with its 95 % interval.
``OUT/summary.md`` (the table, significance against HSD at T = 1) and ``OUT/accuracy_vs_ms.png``
(accuracy against milliseconds of events, interval bars). Each fold and seed is written as
``OUT/<dataset>/fold<k>/seed<s>/result.json`` as soon as it is done and reused on a later run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsd.bench.common import parse_ints, record_header
from hsd.bench.runner import METHODS, cross_validate, run_split, same_budget, test_keys
from hsd.bench.significance import interval_table, noise_sentence, table_footer
from hsd.bench.stats import mcnemar_exact, wilson_interval
from hsd.config import Config, load_config
from hsd.errors import ConfigError
from hsd.pipeline import prepare_data
from hsd.runtime import keep_freed_memory
from hsd.train.engine import resolve_device

__all__ = [
    "PAIRWISE_MAX_T",
    "bootstrap_diff",
    "cli_args",
    "main",
    "pool_folds",
    "run_early",
    "summarise",
]

STEPS = (1, 2, 3, 5, 10)
PAIRWISE_MAX_T = 3
# ``--quick``: the embedded digits-dvs (emulated), tiny everything: an end-to-end check only.
QUICK = [
    "model.width=0.25",
    "data.limit=24",
    "data.batch_size=8",
    "teacher.optim.epochs=1",
    "distill.optim.epochs=1",
    "baseline.optim.epochs=1",
    "progress=false",
]
QUICK_ARGS = {"config": "demo", "frames": 10, "frame_ms": 30.0, "folds": 2, "seeds": [0]}


def protocol_overrides(frames: int, frame_ms: float, train_steps: int | None) -> list[str]:
    """Recipe overrides of the protocol: N fixed-duration frames, students trained at
    ``train_steps`` (None: the recipe's), prefix protocol everywhere."""
    frame_us = round(frame_ms * 1000)
    if frame_us < 1 or abs(frame_us - frame_ms * 1000) > 1e-6:
        raise ConfigError(f"--frame-ms: need a whole number of microseconds > 0, got {frame_ms}")
    out = [
        f"data.frames={frames}",
        "data.split_by=time",
        f"data.frame_us={frame_us}",
        "distill.protocol=prefix",
        "baseline.protocol=prefix",
        "evaluate.protocol=prefix",
    ]
    if train_steps is not None:
        out += [f"distill.steps={train_steps}", f"baseline.steps={train_steps}"]
    return out


def _run_fold(
    cfg: Config, out: Path, methods: Sequence[str], steps: Sequence[int], overrides: Sequence[str]
) -> dict:
    """Every method on one fold and seed: the per-recording outcomes at every T."""
    t0 = time.perf_counter()
    same_budget(cfg, overrides)
    data = prepare_data(cfg)
    _, evaluated = run_split(cfg, data, out / "runs", methods, steps, protocol="prefix")
    return {
        "frames": data.frames,
        "test_samples": len(data.test),
        "test_keys": test_keys(data),
        "manifest_hash": data.manifest.hash,
        "methods": evaluated,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def pool_folds(results: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per seed, every fold's test part put together (each recording once): ``{seed: {method:
    {"label", "trained_steps", "accuracy": {T}, "latency_ms": {T}, "correct": {T: [0/1]},
    "per_fold": {T: [accuracy per fold]}}}}``, recordings in fold order (the same order for every
    method and seed, ``"keys"`` in the first method's entry)."""
    seeds = sorted({int(r["seed"]) for r in results})
    pooled: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        runs = sorted((r for r in results if int(r["seed"]) == seed), key=lambda r: r["fold"])
        methods: dict[str, Any] = {}
        for method, first in runs[0]["methods"].items():
            steps = list(first["accuracy"])
            correct = {
                t: [c for r in runs for c in r["methods"][method]["correct"][t]] for t in steps
            }
            total = len(correct[steps[0]])
            methods[method] = {
                "label": first["label"],
                "trained_steps": first["trained_steps"],
                "accuracy": {t: sum(c) / total for t, c in correct.items()},
                "latency_ms": {
                    t: _weighted([r["methods"][method]["latency_ms"][t] for r in runs], runs)
                    for t in steps
                },
                "correct": correct,
                "per_fold": {t: [r["methods"][method]["accuracy"][t] for r in runs] for t in steps},
            }
        next(iter(methods.values()))["keys"] = [k for r in runs for k in r["test_keys"]]
        pooled[seed] = methods
    return pooled


def _weighted(values: list[Any], runs: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean of per-fold values weighted by the folds' test recordings (None if one is None)."""
    if any(v is None for v in values):
        return None
    weights = [r["test_samples"] for r in runs]
    return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)


def bootstrap_diff(
    correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int = 10000, seed: int = 0
) -> dict[str, Any]:
    """Paired bootstrap over recordings of ``acc(A) - acc(B)``, outcomes ``[S, R]`` (S seeds on
    the same R recordings; the per-recording difference is averaged over seeds, so the
    recordings, not the seeds, are resampled). With S = 1 this is
    :func:`hsd.bench.stats.paired_bootstrap_diff` exactly. Returns ``{"diff", "low", "high",
    "excludes_zero"}`` (fractions, 95 % percentile interval)."""
    a = np.atleast_2d(np.asarray(correct_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(correct_b, dtype=np.float64))
    if a.shape != b.shape or a.shape[1] == 0:
        raise ConfigError(f"bootstrap_diff: need equal [S, R] outcomes, got {a.shape}, {b.shape}")
    d = (a - b).mean(axis=0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {
        "diff": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "excludes_zero": bool(low > 0 or high < 0),
    }


def summarise(results: Sequence[Mapping[str, Any]], steps: Sequence[int]) -> dict[str, Any]:
    """Fold results (:func:`cross_validate` output) -> ``{"methods": {method: {T: {"accuracy",
    "interval", "per_fold", "per_seed", "latency_ms", "correct_count", "recordings"}}},
    "pairwise": {T: {"A vs B": {"diff", "mcnemar": [per seed], "significant_all_seeds",
    "bootstrap"}}}}`` for T <= :data:`PAIRWISE_MAX_T`. Accuracy: pooled over folds, mean over
    seeds; interval: 95 % Wilson of that proportion over the R recordings (R, not seeds x R:
    the seeds train again on the same recordings, they do not add recordings)."""
    pooled = pool_folds(results)
    seeds = list(pooled)
    first = pooled[seeds[0]]
    methods: dict[str, Any] = {}
    for method, entry in first.items():
        rows: dict[str, Any] = {}
        for t in entry["accuracy"]:
            per_seed = [pooled[s][method]["accuracy"][t] for s in seeds]
            total = len(entry["correct"][t])
            acc = statistics.fmean(per_seed)
            low, high = wilson_interval(acc * total, total)  # type: ignore[arg-type]
            per_fold = np.mean([pooled[s][method]["per_fold"][t] for s in seeds], axis=0)
            rows[t] = {
                "accuracy": acc,
                "interval": [low, high],
                "per_fold": [float(v) for v in per_fold],
                "per_seed": per_seed,
                "latency_ms": entry["latency_ms"][t],
                "recordings": total,
            }
        methods[method] = {
            "label": entry["label"],
            "trained_steps": entry["trained_steps"],
            "T": rows,
        }
    pairwise: dict[str, Any] = {}
    for t in (str(t) for t in steps if t <= PAIRWISE_MAX_T):
        pairs = {}
        for a, b in itertools.combinations(first, 2):
            outcome_a = np.array([pooled[s][a]["correct"][t] for s in seeds], dtype=bool)
            outcome_b = np.array([pooled[s][b]["correct"][t] for s in seeds], dtype=bool)
            tests = [mcnemar_exact(x, y) for x, y in zip(outcome_a, outcome_b, strict=True)]
            diffs = [float(x.mean() - y.mean()) for x, y in zip(outcome_a, outcome_b, strict=True)]
            pairs[f"{a} vs {b}"] = {
                "a": a,
                "b": b,
                "diff": statistics.fmean(diffs),
                "mcnemar": tests,
                "significant_all_seeds": all(x["p"] < 0.05 for x in tests)
                and len({np.sign(d) for d in diffs}) == 1,
                "bootstrap": bootstrap_diff(outcome_a, outcome_b),
            }
        pairwise[t] = pairs
    return {"methods": methods, "pairwise": pairwise}


def run_early(
    out: str | Path,
    *,
    config: str | Path | None = "nmnist",
    frames: int = 30,
    frame_ms: float = 10.0,
    steps: Sequence[int] = STEPS,
    folds: int = 5,
    seeds: Sequence[int] = (0, 1),
    methods: Sequence[str] = tuple(METHODS),
    train_steps: int | None = None,
    fold_list: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the protocol (module docstring) and write ``OUT/summary.json``, ``summary.md`` and
    ``accuracy_vs_ms.png``; returns the summary."""
    t_start = time.perf_counter()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)} (known: {', '.join(METHODS)})")
    if "hsd" not in methods:
        raise ConfigError("the tests are against HSD: include 'hsd' in --methods")
    if folds < 2:
        raise ConfigError(f"--folds: cross-validation needs at least 2 folds, got {folds}")
    all_steps = sorted({int(t) for t in steps} | {frames})
    if all_steps[0] < 1 or all_steps[-1] > frames:
        raise ConfigError(
            f"--steps: every T must be in [1, {frames}] (--frames), got {list(steps)}"
        )
    base_overrides = [*protocol_overrides(frames, frame_ms, train_steps), *overrides]
    base = same_budget(load_config(config, base_overrides), base_overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_fold = time.perf_counter()
    results = cross_validate(
        config,
        base_overrides,
        lambda cfg, fold_out: _run_fold(cfg, fold_out, methods, all_steps, base_overrides),
        out,
        folds=folds,
        fold_list=fold_list,
        seeds=list(seeds),
    )
    name = f"{frames}x{frame_ms:g}ms"
    summary = {
        **record_header(resolve_device(base.device), base.data.dataset, config, base_overrides),
        "protocols": {
            name: {
                "frames": frames,
                "frame_ms": frame_ms,
                "steps": all_steps,
                "ms": {str(t): t * frame_ms for t in all_steps},
                "folds": folds,
                "folds_run": sorted({int(r["fold"]) for r in results}),
                "seeds": [int(s) for s in seeds],
                "methods": list(methods),
                "trained_at": {"finetune": base.distill.steps, "scratch": base.baseline.steps},
                "epochs": {
                    "teacher": base.teacher.optim.epochs,
                    "finetune": base.distill.optim.epochs,
                    "scratch": base.baseline.optim.epochs,
                },
                "fold_seconds": {f"fold{r['fold']}-seed{r['seed']}": r["seconds"] for r in results},
                **summarise(results, all_steps),
            }
        },
        "tests": "interval: 95% Wilson over the recordings; pairwise (T <= 3): exact two-sided "
        "McNemar on the per-recording outcomes pooled over folds, per seed; paired bootstrap "
        "over recordings (10,000 resamples, seed 0) of the difference averaged over seeds",
        "seconds": round(time.perf_counter() - t_start, 1),
        "seconds_training": round(time.perf_counter() - t_fold, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    pooled = pool_folds(results)
    write_report(summary, pooled, out)
    return summary


def write_report(summary: Mapping[str, Any], pooled: Mapping[int, Any], out: Path) -> None:
    """``OUT/summary.md`` and ``OUT/accuracy_vs_ms.png`` from the summary (and the pooled
    per-recording outcomes for the table's marks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [f"Command: `{summary['command']}`", ""]
    for name, proto in summary["protocols"].items():
        runs = list(pooled.values())
        highlight = min(proto["steps"])
        recordings = next(iter(next(iter(proto["methods"].values()))["T"].values()))["recordings"]
        parts += [
            f"### {summary['dataset']}, {name}: {proto['frames']} frames of {proto['frame_ms']:g} "
            f"ms, {len(proto['folds_run'])} of {proto['folds']} folds, seeds "
            f"{', '.join(map(str, proto['seeds']))}, {recordings} recordings",
            "",
            "Accuracy pooled over folds (mean over seeds) after T frames, i.e. T x "
            f"{proto['frame_ms']:g} ms of events:",
            "",
            interval_table(runs, highlight=highlight),
            "",
            table_footer(runs, highlight),
            "",
            noise_sentence(runs, highlight),
            "",
            f"Pairs with HSD whose difference at T <= {PAIRWISE_MAX_T} is significant in every "
            "seed (exact McNemar) or whose bootstrap 95% interval excludes zero (every pair of "
            "methods: `pairwise` in summary.json):",
            "",
        ]
        lines = []
        for t, pairs in proto["pairwise"].items():
            for pair, x in pairs.items():
                if "hsd" not in (x["a"], x["b"]):
                    continue
                if x["significant_all_seeds"] or x["bootstrap"]["excludes_zero"]:
                    boot = x["bootstrap"]
                    p = ", ".join(f"{m['p']:.3g}" for m in x["mcnemar"])
                    lines.append(
                        f"- T={t}: {pair}: {100 * x['diff']:+.1f} points "
                        f"[{100 * boot['low']:+.1f}, {100 * boot['high']:+.1f}], McNemar p = {p}"
                    )
        parts += lines or ["- none"]
        parts.append("")
        fig, ax = plt.subplots(figsize=(8.4, 4.2), dpi=120)
        for entry in proto["methods"].values():
            ts = sorted(int(t) for t in entry["T"])
            ms = [t * proto["frame_ms"] for t in ts]
            acc = [100 * entry["T"][str(t)]["accuracy"] for t in ts]
            low = [
                a - 100 * entry["T"][str(t)]["interval"][0] for a, t in zip(acc, ts, strict=True)
            ]
            high = [
                100 * entry["T"][str(t)]["interval"][1] - a for a, t in zip(acc, ts, strict=True)
            ]
            ax.errorbar(ms, acc, yerr=[low, high], marker="o", capsize=3, label=entry["label"])
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds of events (T frames)")
        ax.set_ylabel("accuracy (%), 95% Wilson interval")
        ax.set_title(f"{summary['dataset']}, {name}: pooled over folds")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_ms.png")
        plt.close(fig)
    parts.append(f"Total time: {summary['seconds']:.0f} s.")
    (out / "summary.md").write_text("\n".join(parts) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="early_decisions.py", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--config", default=None, help="recipe (default nmnist; --quick: demo)")
    parser.add_argument("--root", default=None, help="dataset folder (data.root)")
    parser.add_argument("--frames", type=int, default=None, help="N (default 30; --quick: 10)")
    parser.add_argument(
        "--frame-ms", type=float, default=None, help="frame duration (default 10; --quick: 30)"
    )
    parser.add_argument("--steps", type=parse_ints, default=list(STEPS), help="T; N is added")
    parser.add_argument("--folds", type=int, default=None, help="default 5; --quick: 2")
    parser.add_argument("--fold-list", type=parse_ints, default=None, help="a subset of folds")
    parser.add_argument("--seeds", type=parse_ints, default=None, help="default 0,1; --quick: 0")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument(
        "--train-steps", type=int, default=None, help="T the students train at (default recipe's)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny: embedded data, seconds")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser


def cli_args(out: Path, quick: bool) -> list[str]:
    """The arguments ``hsd bench`` passes to :func:`main`: the full protocol on N-MNIST (its
    folder from ``--set data.root=DIR`` or the environment), or ``--quick``; output under
    ``out/early``."""
    return ["--out", str(out / "early"), *(["--quick"] if quick else [])]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    quick = QUICK_ARGS if args.quick else {}
    overrides = [*(QUICK if args.quick else []), *args.set]
    if args.root is not None:
        overrides.append(f"data.root={args.root}")
    config = args.config or quick.get("config", "nmnist")
    if not args.quick and args.root is None:
        from hsd.data.registry import default_root, resolve_dataset, root_variable

        cfg = load_config(config, overrides)
        if resolve_dataset(cfg.data.dataset).needs_root:
            root = cfg.data.root if cfg.data.root is not None else default_root(cfg.data.dataset)
            if root is None or not Path(root).exists():
                print(
                    f"early: skipping {cfg.data.dataset}: no dataset folder (--root DIR, --set "
                    f"data.root=DIR or {root_variable(cfg.data.dataset)})"
                )
                return 0
    summary = run_early(
        args.out,
        config=config,
        frames=args.frames or quick.get("frames", 30),
        frame_ms=args.frame_ms or quick.get("frame_ms", 10.0),
        steps=args.steps,
        folds=args.folds or quick.get("folds", 5),
        seeds=args.seeds or quick.get("seeds", [0, 1]),
        methods=[m for m in args.methods.split(",") if m],
        train_steps=args.train_steps,
        fold_list=args.fold_list,
        overrides=overrides,
    )
    print((Path(args.out) / "summary.md").read_text())
    print(f"early: {summary['seconds']:.0f} s; wrote {args.out}/summary.json, summary.md, plot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
