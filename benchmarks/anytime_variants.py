"""Compare a variant of anytime distillation with the default one, on validation splits only.

Reuses the fold teachers and default anytime networks of a finished
``benchmarks/anytime_exit.py`` run (``RUNS/<dataset>/fold<k>/runs/{teacher,hsd_anytime}``),
fine-tunes the variant (``--set`` overrides on top of ``distill.loss=anytime`` and
``distill.steps=N``) from each fold's teacher, and reports the accuracy after every T on each
fold's **validation** split for both: the numbers a choice between them may be based on. The
test parts of the folds are not evaluated.

    python benchmarks/anytime_variants.py --runs OUT_OF_ANYTIME_EXIT --out OUT \\
        --set distill.prefix_weights=harmonic --set threads=1 --set progress=false

Writes ``OUT/validation.json`` (per fold and pooled mean per T) and prints the pooled means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from hsd.config import load_config
from hsd.pipeline import distill, evaluate_checkpoint, prepare_data
from hsd.runtime import keep_freed_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        row = {"fold": k, "validation_samples": len(data.val)}
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
    raise SystemExit(main())
