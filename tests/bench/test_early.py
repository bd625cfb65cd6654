"""The fine-time protocol (``hsd bench early``): its summary against hand-made fold results, and
one tiny end-to-end run on the embedded data (a few methods, two folds, one epoch)."""

import json

import numpy as np
import pytest
import torch

from hsd.bench import BENCHMARKS, BY_NAME_ONLY
from hsd.bench.early import bootstrap_diff, main, pool_folds, protocol_overrides, summarise
from hsd.bench.stats import mcnemar_exact, paired_bootstrap_diff, wilson_interval
from hsd.errors import ConfigError


def _fold(fold, seed, outcomes, keys):
    """One fold/seed result with ``outcomes = {method: {T: [0/1]}}``."""
    methods = {
        m: {
            "label": m,
            "trained_steps": 2,
            "accuracy": {t: float(np.mean(c)) for t, c in by_t.items()},
            "latency_ms": {t: 10.0 * int(t) for t in by_t},
            "correct": by_t,
        }
        for m, by_t in outcomes.items()
    }
    return {
        "fold": fold,
        "seed": seed,
        "test_samples": len(keys),
        "test_keys": keys,
        "methods": methods,
    }


def test_summary_pools_folds_and_tests_pairs_on_the_pooled_recordings():
    rng = np.random.default_rng(0)
    hsd = {s: rng.random(40) < 0.9 for s in (0, 1)}
    ce = {s: rng.random(40) < 0.5 for s in (0, 1)}
    results = [
        _fold(
            k,
            s,
            {
                "hsd": {"1": hsd[s][20 * k : 20 * k + 20].astype(int).tolist(), "3": [1] * 20},
                "finetune_ce": {
                    "1": ce[s][20 * k : 20 * k + 20].astype(int).tolist(),
                    "3": [1] * 20,
                },
            },
            [f"r{20 * k + i}" for i in range(20)],
        )
        for k in (0, 1)
        for s in (0, 1)
    ]
    pooled = pool_folds(results)
    assert list(pooled) == [0, 1]
    assert pooled[0]["hsd"]["keys"] == [f"r{i}" for i in range(40)]
    assert pooled[1]["hsd"]["correct"]["1"] == hsd[1].astype(int).tolist()
    summary = summarise(results, [1, 3])
    row = summary["methods"]["hsd"]["T"]["1"]
    acc = (hsd[0].sum() + hsd[1].sum()) / 80
    assert row["accuracy"] == pytest.approx(acc)
    assert row["per_seed"] == pytest.approx([hsd[0].mean(), hsd[1].mean()])
    assert row["per_fold"] == pytest.approx(
        [
            (hsd[0][:20].mean() + hsd[1][:20].mean()) / 2,
            (hsd[0][20:].mean() + hsd[1][20:].mean()) / 2,
        ]
    )
    assert row["interval"] == pytest.approx(list(wilson_interval(acc * 40, 40)))
    assert row["recordings"] == 40 and row["latency_ms"] == 10.0
    pair = summary["pairwise"]["1"]["hsd vs finetune_ce"]
    assert [m["p"] for m in pair["mcnemar"]] == [mcnemar_exact(hsd[s], ce[s])["p"] for s in (0, 1)]
    assert pair["significant_all_seeds"] and pair["diff"] > 0.2
    assert pair["bootstrap"]["excludes_zero"] and pair["bootstrap"]["low"] > 0
    tie = summary["pairwise"]["3"]["hsd vs finetune_ce"]
    assert tie["diff"] == 0 and not tie["significant_all_seeds"]
    assert tie["bootstrap"]["excludes_zero"] is False


def test_bootstrap_of_one_seed_is_the_paired_bootstrap():
    rng = np.random.default_rng(1)
    a, b = rng.random(50) < 0.8, rng.random(50) < 0.6
    assert bootstrap_diff(a[None], b[None]) == paired_bootstrap_diff(a, b)


def test_protocol_overrides_and_refusals(tmp_path):
    assert protocol_overrides(30, 10, None)[:3] == [
        "data.frames=30",
        "data.split_by=time",
        "data.frame_us=10000",
    ]
    assert "distill.steps=1" in protocol_overrides(30, 5, 1)
    with pytest.raises(ConfigError, match="--frame-ms"):
        protocol_overrides(30, 0.0001, None)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        main(["--quick", "--folds", "1", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match=r"every T must be in \[1, 10\]"):
        main(["--quick", "--steps", "1,20", "--out", str(tmp_path)])
    assert "early" in BENCHMARKS and BY_NAME_ONLY == {"early"}


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_quick_run_end_to_end(tmp_path, keep_threads, capsys):
    out = tmp_path / "early"
    args = [
        "--quick",
        *("--methods", "teacher,hsd,direct", "--frames", "4", "--frame-ms", "75"),
        *("--steps", "1,2", "--out", str(out), "--set", "threads=1"),
    ]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    proto = summary["protocols"]["4x75ms"]
    assert summary["dataset"] == "digits-dvs" and summary["emulated"]
    assert proto["steps"] == [1, 2, 4] and proto["ms"] == {"1": 75.0, "2": 150.0, "4": 300.0}
    assert proto["folds_run"] == [0, 1] and proto["seeds"] == [0]
    assert list(proto["methods"]) == ["teacher", "hsd", "direct"]
    # fold results on disk hold the per-recording outcomes the tests were computed from
    folds = [
        json.loads((out / "digits-dvs" / f"fold{k}" / "seed0" / "result.json").read_text())
        for k in (0, 1)
    ]
    recordings = sum(f["test_samples"] for f in folds)
    for method, entry in proto["methods"].items():
        for t, row in entry["T"].items():
            right = sum(sum(f["methods"][method]["correct"][t]) for f in folds)
            assert row["recordings"] == recordings
            assert row["accuracy"] == pytest.approx(right / recordings)
            assert row["interval"] == pytest.approx(list(wilson_interval(right, recordings)))
            assert row["latency_ms"] == pytest.approx(75.0 * int(t))
    assert set(proto["pairwise"]) == {"1", "2"}  # T <= 3 only
    assert set(proto["pairwise"]["1"]) == {"teacher vs hsd", "teacher vs direct", "hsd vs direct"}
    report = (out / "summary.md").read_text()
    assert "4 frames of 75 ms, 2 of 2 folds" in report and "McNemar" in report
    assert (out / "accuracy_vs_ms.png").read_bytes()[:4] == b"\x89PNG"
    # a second run reuses the finished folds
    first = (out / "digits-dvs" / "fold0" / "seed0" / "result.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "digits-dvs" / "fold0" / "seed0" / "result.json").stat().st_mtime_ns == first
    assert "reusing" in capsys.readouterr().out


def test_full_protocol_without_data_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HSD_NMNIST_ROOT", raising=False)
    assert main(["--out", str(tmp_path / "o")]) == 0
    assert "early: skipping nmnist: no dataset folder" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()
