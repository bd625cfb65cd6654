"""Each benchmark script still runs end to end on tiny settings (never the real benchmark)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(name: str, *args: str) -> None:
    """Run ``benchmarks/<name>`` from the repository root; fail with its stderr."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def run_script(name: str, out: Path, *extra: str) -> dict:
    run(name, "--tiny", "--out", str(out), *extra)
    return json.loads(out.read_text())


def test_bench_speed_tiny(tmp_path):
    record = run_script("bench_speed.py", tmp_path / "speed.json")
    rows, summary = record["rows"], record["summary"]
    variants = {"ann", "snn", "snn_fast", "spikingjelly", "loop"}
    keys = {(n, t, p) for n in ("demo", "vggsnn") for t in (1, 2) for p in ("infer", "train")}
    assert all(set(r) == {"network", "T", "phase", "variant", "seconds", "repeat"} for r in rows)
    assert {(r["network"], r["T"], r["phase"]) for r in rows} == keys
    for key in keys:  # every variant timed once (--tiny: one repeat) per network, T and phase
        assert sorted(r["variant"] for r in rows if (r["network"], r["T"], r["phase"]) == key) == (
            sorted(variants)
        )
    assert all(isinstance(r["seconds"], float) and r["seconds"] > 0 for r in rows)
    # the summary's ratios are ratios of the rows' medians (one repeat: the row itself)
    seconds = {(r["network"], r["T"], r["phase"], r["variant"]): r["seconds"] for r in rows}
    assert [(s["network"], s["T"], s["phase"]) for s in summary] == sorted(
        keys, key=lambda k: (k[0], k[1], k[2])
    )
    for s in summary:
        key = (s["network"], s["T"], s["phase"])
        assert s["time_over_ann"]["snn"] == pytest.approx(
            seconds[(*key, "snn")] / seconds[(*key, "ann")]
        )
        assert s["snn_fast_over_spikingjelly"] == pytest.approx(
            seconds[(*key, "snn_fast")] / seconds[(*key, "spikingjelly")]
        )
        assert s["loop_vs_snn_max_abs_diff"] <= 1e-4
        assert s["snn_fast_vs_snn_max_abs_diff"] <= 1e-3
    assert record["machine"]["torch_threads"] == 1
    assert (record["snn_fast"], record["compile_backend"]) == ("torch.compile", "eager")
    assert record["spikingjelly_compiled"] is False


def test_bench_memory_tiny(tmp_path):
    record = run_script("bench_memory.py", tmp_path / "memory.json")
    one, two = record["results"]
    assert (one["variant"], one["steps"], two["steps"]) == ("snn", 1, 2)
    assert one["saved_bytes"] > 0
    # BPTT keeps every step's activations: twice the steps, about twice the saved bytes
    assert two["saved_bytes"] == pytest.approx(2 * one["saved_bytes"], rel=0.1)
    assert two["peak_bytes"] > one["peak_bytes"] > 0


def test_bench_energy_tiny(tmp_path):
    record = run_script("bench_energy.py", tmp_path / "energy.json")
    assert [r["steps"] for r in record["results"]] == [1, 2]
    for r in record["results"]:
        assert r["mac_ops"] == r["steps"] * record["layers"][0]["macs"]
        assert r["ann_energy_uj"] == pytest.approx(r["ann_macs"] * 4.6e-6)
    check = record["spikingjelly_check"]
    if check["available"]:
        for row in check["layers"]:
            assert row["hsd_macs"] == row["sj_macs"]
        linear = check["layers"][-1]
        assert linear["hsd_sops"] == pytest.approx(linear["sj_sops"])


def test_bench_frames_tiny(tmp_path):
    out = tmp_path / "frames.json"
    run("bench_frames.py", "--events", "20000", "--repeats", "1", "--out", str(out))
    record = json.loads(out.read_text())
    assert record["n_events"] == 20000 and "hsd count" in record["median_s"]
    assert record["command"].startswith(".venv/bin/python benchmarks/bench_frames.py")


def test_bench_loading_tiny(tmp_path, shared_data):
    out = tmp_path / "loading.json"
    root = shared_data / "nmnist-small"
    run("bench_loading.py", "--root", str(root), "--repeats", "1", "--out", str(out))
    record = json.loads(out.read_text())
    assert record["samples"] == 1100 and record["warm_s"] < record["cold_s"]


def test_accuracy_latency_tiny(tmp_path):
    run(
        "accuracy_latency.py",
        *("--quick", "--seeds", "0", "--protocols", "prefix", "--steps", "1,2"),
        *("--methods", "teacher,converted", "--out", str(tmp_path)),
        *("--set", "data.limit=16", "--set", "progress=false", "--set", "threads=1"),
    )
    record = json.loads((tmp_path / "digits-dvs" / "results.json").read_text())
    assert list(record["summary"]["prefix"]) == ["teacher", "converted"]
    assert record["seeds"] == [0] and record["steps"] == [1, 2]


def test_accuracy_latency_folds_tiny(tmp_path):
    run(
        "accuracy_latency.py",
        *("--config", "demo", "--folds", "2", "--skip-official"),
        *("--out", str(tmp_path)),
        *("--set", "data.limit=16", "--set", "model.width=0.25", "--set", "progress=false"),
        *("--set", "teacher.optim.epochs=1", "--set", "distill.optim.epochs=1"),
        *("--set", "baseline.optim.epochs=1", "--set", "threads=1"),
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["folds"] == 2 and summary["official"] is None
    assert "hsd" in summary["cv_mean"] and set(summary["cv_std"]["hsd"]) == {"1", "2", "4", "10"}
    assert (tmp_path / "fold1" / "results.json").is_file()
    # the folds' test parts pooled: every recording once, Wilson interval of the pooled count
    from hsd.bench.stats import wilson_interval

    folds = [json.loads((tmp_path / f"fold{k}" / "results.json").read_text()) for k in (0, 1)]
    hsd = [f["methods"]["hsd"]["correct"]["2"] for f in folds]
    right, total = sum(map(sum, hsd)), sum(map(len, hsd))
    low, high = wilson_interval(right, total)
    report = (tmp_path / "summary.md").read_text()
    assert f"Pooled over the 2 folds' test parts ({total} recordings" in report
    assert f"{100 * right / total:.1f} [{100 * low:.1f}, {100 * high:.1f}] (ref)" in report
