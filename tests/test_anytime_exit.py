"""benchmarks/anytime_exit.py runs end to end on tiny settings (a fake N-MNIST in its real layout,
one epoch per stage), and its goal check and pooling are right on hand-made numbers."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hsd.events.core import validate_events
from hsd.events.formats import write_atis_bin

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    """A script under benchmarks/ as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_nmnist(root: Path) -> Path:
    for split, per_class in (("Train", 4), ("Test", 1)):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for j in range(per_class):
                rng = np.random.default_rng(100 * digit + 10 * j + (split == "Test"))
                n = 400
                events = validate_events(
                    np.sort(rng.integers(0, 300_000, n)),
                    rng.integers(0, 34, n),
                    rng.integers(0, 34, n),
                    rng.integers(0, 2, n),
                    (34, 34),
                )
                write_atis_bin(folder / f"{j:05d}.bin", events)
    return root


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_tiny_run_end_to_end(tmp_path, keep_threads):
    root = _fake_nmnist(tmp_path / "nmnist")
    out = tmp_path / "out"
    common = [
        "--config",
        str(REPO / "src" / "hsd" / "recipes" / "nmnist.yaml"),
        "--set",
        f"data.root={root}",
    ]
    args = [
        *common,
        "--demo-config",
        str(REPO / "src" / "hsd" / "recipes" / "nmnist.yaml"),
        "--tiny",
        "--folds",
        "2",
        "--specialist-steps",
        "1,2",
        "--latency-steps",
        "4",
        "--latency-warmup",
        "1",
        "--set",
        "threads=1",
        "--out",
        str(out),
    ]
    assert _load("anytime_exit").main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["cv"]["per_t"]
    assert [r["T"] for r in rows] == list(range(1, 11))
    assert [("specialist" in r) for r in rows] == [True, True] + [False] * 8
    assert summary["folds_run"] == [0, 1] and len(summary["fold_results"]) == 2
    assert all((out / "nmnist" / f"fold{k}" / "result.json").is_file() for k in (0, 1))
    exit_cv = summary["cv"]["exit"]
    assert exit_cv["samples"] == sum(f["test_samples"] for f in summary["fold_results"])
    assert len(exit_cv["fixed_t"]) == 10
    for p in exit_cv["confidence"] + exit_cv["margin"]:
        assert 1.0 <= p["mean_steps"] <= 10.0 and 0.0 <= p["accuracy"] <= 1.0
    assert summary["latency"]["stream_step_ms"] > 0 and summary["latency"]["torch_step_ms"] > 0
    assert summary["latency"]["steps_timed"] == 4
    for name in ("accuracy_vs_T.png", "accuracy_vs_steps.png", "summary.md"):
        assert (out / name).stat().st_size > 0
    # a second run reuses the finished folds instead of training them again
    first = (out / "nmnist" / "fold0" / "result.json").stat().st_mtime_ns
    assert _load("anytime_exit").main(args) == 0
    assert (out / "nmnist" / "fold0" / "result.json").stat().st_mtime_ns == first
    # --replot redraws the report from summary.json alone
    (out / "summary.md").unlink()
    assert _load("anytime_exit").main(["--replot", "--out", str(out)]) == 0
    assert "anytime against specialists (2 of 2 folds)" in (out / "summary.md").read_text()

    # benchmarks/anytime_variants.py reuses the run's fold teachers and reports validation only
    variants = tmp_path / "variants"
    tiny = [x for o in _load("anytime_exit").TINY_OVERRIDES for x in ("--set", o)]
    assert (
        _load("anytime_variants").main(
            [
                *common,
                "--runs",
                str(out),
                "--folds",
                "2",
                "--out",
                str(variants),
                "--set",
                "distill.prefix_weights=harmonic",
                *tiny,
            ]
        )
        == 0
    )
    report = json.loads((variants / "validation.json").read_text())
    assert [f["fold"] for f in report["folds"]] == [0, 1]
    assert all(set(f) >= {"default", "variant", "validation_samples"} for f in report["folds"])
    assert list(report["mean"]["variant"]) == [str(t) for t in range(1, 11)]
    assert (variants / "fold0" / "checkpoints" / "best.pt").is_file()


def _fold(anytime, teacher, specialists, samples=10):
    per_t = {str(t): a for t, a in enumerate(anytime, start=1)}
    return {
        "frames": len(anytime),
        "anytime": per_t,
        "teacher": {str(t): a for t, a in enumerate(teacher, start=1)},
        "specialists": {str(t): {str(t): a} for t, a in specialists.items()},
        "exit": {
            "samples": samples,
            "fixed_t": list(anytime),
            "confidence": [
                {
                    "threshold": 0.9,
                    "accuracy": anytime[0],
                    "mean_steps": 1.0 + samples / 10,
                    "exited": 1.0,
                    "mean_latency_ms": None,
                }
            ],
            "margin": [],
        },
    }


def test_goal_check_and_pooling_by_hand():
    agg = _load("anytime_exit").aggregate
    folds = [
        _fold([0.90, 0.95], [0.80, 0.96], {1: 0.905, 2: 0.95}, samples=10),
        _fold([0.92, 0.95], [0.82, 0.96], {1: 0.935, 2: 0.97}, samples=30),
    ]
    summary = agg(folds, [1, 2])
    one, two = summary["per_t"]
    assert one["anytime"] == pytest.approx((0.91, 0.01))
    assert one["gap_specialist"] == pytest.approx(0.91 - 0.92)  # exactly 1 point below: met
    assert one["gap_teacher"] == pytest.approx(0.10)
    assert one["goal_met"]
    assert two["gap_specialist"] == pytest.approx(0.95 - 0.96)
    assert two["gap_teacher"] == pytest.approx(-0.01)  # below the teacher: missed
    assert not two["goal_met"]
    # equal accuracies that differ only by float32 rounding are not "below the teacher"
    level = agg([_fold([0.9472727179527283], [0.9472727298736572], {})], [])
    assert level["per_t"][0]["goal_met"]
    pooled = summary["exit"]
    assert pooled["samples"] == 40
    assert pooled["fixed_t"][0] == pytest.approx((10 * 0.90 + 30 * 0.92) / 40)
    point = pooled["confidence"][0]
    assert point["mean_steps"] == pytest.approx((10 * 2.0 + 30 * 4.0) / 40)
    assert point["mean_latency_ms"] is None
