"""The accuracy benchmark on a tiny slice of digits-dvs: the structure of its JSON, the seed
statistics against hand values, the reuse of protocol-independent networks (never a benchmark)."""

import json
import statistics

import pytest

from hsd.bench.accuracy import BENCH_METHODS, aggregate_seeds, mean_std, run_accuracy
from hsd.errors import ConfigError

TINY = [
    "model.width=0.25",
    "data.limit=24",
    "data.batch_size=8",
    "teacher.optim.epochs=1",
    "distill.optim.epochs=1",
    "baseline.optim.epochs=1",
    "progress=false",
    "threads=1",
]


def _entry(accuracy, latency, **extra):
    return {"label": "m", "trained_steps": 2, "accuracy": accuracy, "latency_ms": latency, **extra}


def test_mean_std_is_the_sample_standard_deviation():
    assert mean_std([0.5]) == (0.5, 0.0)
    mean, std = mean_std([0.90, 0.80, 0.70])
    assert mean == pytest.approx(0.80)
    assert std == pytest.approx(0.10)  # sqrt(((.1)^2 + 0 + (.1)^2) / (3 - 1))


def test_aggregate_seeds_from_hand_values():
    per_seed = {
        "0": {
            "teacher": _entry({"1": 0.5, "2": 0.7}, {"1": 30.0, "2": 50.0}, all_frames=0.9),
            "hsd": _entry({"1": 0.6, "2": 0.9}, {"1": 30.0, "2": 50.0}),
        },
        "1": {
            "teacher": _entry({"1": 0.7, "2": 0.7}, {"1": 30.0, "2": 50.0}, all_frames=0.8),
            "hsd": _entry({"1": 0.8, "2": 0.6}, {"1": 30.0, "2": 50.0}),
        },
    }
    summary = aggregate_seeds(per_seed)
    assert list(summary) == ["teacher", "hsd"]
    hsd = summary["hsd"]
    assert hsd["seeds"] == 2
    assert hsd["accuracy"] == pytest.approx({"1": 0.7, "2": 0.75})
    assert hsd["std"]["1"] == pytest.approx(statistics.stdev([0.6, 0.8]))
    assert hsd["std"]["2"] == pytest.approx(0.2121320, rel=1e-6)  # |0.9 - 0.6| / sqrt(2)
    assert hsd["latency_ms"] == {"1": 30.0, "2": 50.0}
    assert summary["teacher"]["std"]["2"] == 0.0
    assert summary["teacher"]["all_frames"] == pytest.approx(0.85)
    assert summary["teacher"]["all_frames_std"] == pytest.approx(0.0707107, rel=1e-6)


def test_unknown_latency_stays_unknown():
    per_seed = {"0": {"m": _entry({"1": 0.5}, {"1": None})}}
    assert aggregate_seeds(per_seed)["m"]["latency_ms"] == {"1": None}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("accuracy")
    results = run_accuracy(
        None, out, seeds=[0, 1], protocols=["prefix", "rebin"], steps=[2, 1], overrides=TINY
    )
    return out, results


def test_results_json_structure(tiny_run):
    out, results = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert saved == results
    assert saved["dataset"] == "digits-dvs" and saved["emulated"] is True
    assert saved["seeds"] == [0, 1] and saved["steps"] == [1, 2]
    assert saved["protocols"] == ["prefix", "rebin"]
    assert saved["methods"] == list(BENCH_METHODS)
    assert "tet" in BENCH_METHODS and "hsd_anytime" in BENCH_METHODS
    for protocol in ("prefix", "rebin"):
        assert set(saved["runs"][protocol]) == {"0", "1"}
        for per_method in saved["runs"][protocol].values():
            assert list(per_method) == list(BENCH_METHODS)
            for entry in per_method.values():
                assert set(entry["accuracy"]) == set(entry["latency_ms"]) == {"1", "2"}
                assert all(0 <= a <= 1 for a in entry["accuracy"].values())
        summary = saved["summary"][protocol]
        assert summary == aggregate_seeds(saved["runs"][protocol])
        assert 0 <= summary["teacher"]["all_frames"] <= 1
    # rebin: every T sees the whole stream; prefix: the first T frames only
    prefix_ms = saved["summary"]["prefix"]["hsd"]["latency_ms"]
    rebin_ms = saved["summary"]["rebin"]["hsd"]["latency_ms"]
    assert prefix_ms["1"] < prefix_ms["2"] <= rebin_ms["1"] == pytest.approx(rebin_ms["2"])
    for name in ("accuracy_prefix.png", "accuracy_rebin.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    summary_md = (out / "summary.md").read_text()
    assert "### prefix protocol" in summary_md and "### rebin protocol" in summary_md
    assert "| SNN from scratch, TET | 2 |" in summary_md


def test_protocol_free_networks_are_trained_once_per_seed(tiny_run):
    _, results = tiny_run
    for seed in ("0", "1"):
        prefix, rebin = (results["runs"][p][seed] for p in ("prefix", "rebin"))
        for method in ("teacher", "converted", "hsd_anytime"):
            assert prefix[method]["checkpoint"] == rebin[method]["checkpoint"]
            assert f"seed{seed}/{method}/" in prefix[method]["checkpoint"]
        for method in ("hsd", "finetune_ce", "kd_mean", "direct", "tet"):
            assert prefix[method]["checkpoint"] != rebin[method]["checkpoint"]
            assert f"seed{seed}/rebin/{method}/" in rebin[method]["checkpoint"]
    # the teacher on all N frames is the same network on the same frames under both protocols
    for seed in ("0", "1"):
        assert (
            results["runs"]["prefix"][seed]["teacher"]["all_frames"]
            == results["runs"]["rebin"][seed]["teacher"]["all_frames"]
        )


def test_refuses_steps_beyond_the_frames(tmp_path):
    with pytest.raises(ConfigError, match="exceeds the 10 frames"):
        run_accuracy(None, tmp_path, seeds=[0], steps=[1, 20], overrides=TINY)
