"""The stages end to end on a small slice of the embedded dataset (CPU, seconds)."""

import json

import numpy as np
import pytest
import torch

from hsd.config import load_config
from hsd.data import get_dataset, make_manifest
from hsd.demo import run_demo
from hsd.errors import ConfigError
from hsd.pipeline import (
    convert_checkpoint,
    distill,
    evaluate_checkpoint,
    model_from_checkpoint,
    prepare_data,
    train_baseline,
    train_teacher,
)
from hsd.train.checkpoint import load_checkpoint
from hsd.train.engine import TrainingError, train_one_epoch
from hsd.train.feed import FrameFeed

TINY = [
    "model.width=0.25",
    "data.limit=48",
    "data.batch_size=16",
    "teacher.optim.epochs=1",
    "distill.optim.epochs=1",
    "baseline.optim.epochs=1",
    "progress=false",
    "threads=1",
]


@pytest.fixture(scope="module")
def cfg():
    return load_config(overrides=TINY)


@pytest.fixture(scope="module")
def data(cfg):
    return prepare_data(cfg)


@pytest.fixture(scope="module")
def teacher_ckpt(cfg, data, tmp_path_factory):
    return train_teacher(cfg, tmp_path_factory.mktemp("runs") / "teacher", data=data)


def test_prepared_split_is_disjoint_and_limited(data):
    assert len(data.train) == len(data.val) == len(data.test) == 48
    assert not set(data.train) & set(data.test)
    assert not set(data.val) & set(data.test)
    assert data.input_shape == (2, 34, 34)
    assert data.frames == 10


def test_teacher_run_directory(teacher_ckpt):
    run = teacher_ckpt.parent.parent
    for name in ("config.yaml", "environment.json", "manifest.json", "metrics.jsonl"):
        assert (run / name).is_file(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["stage"] == "teacher"
    raw = torch.load(teacher_ckpt, weights_only=True)  # loads without unpickling code
    assert raw["stage"] == "teacher" and not raw["model"]["spiking"]
    assert (run / "checkpoints" / "last.pt").is_file()


def test_convert_distill_baseline_evaluate(cfg, data, teacher_ckpt, tmp_path):
    before = {k: v.clone() for k, v in load_checkpoint(teacher_ckpt)["state_dict"].items()}
    converted = convert_checkpoint(teacher_ckpt, tmp_path / "converted")
    assert load_checkpoint(converted)["model"]["spiking"]

    student = distill(cfg, teacher_ckpt, tmp_path / "hsd", data=data)
    after = load_checkpoint(teacher_ckpt)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # teacher untouched
    baseline = train_baseline(cfg, tmp_path / "direct", data=data)

    for path in (converted, student, baseline):
        result = evaluate_checkpoint(path, [1, 2, 4, 10], cfg=cfg, data=data, progress=False)
        assert set(result["accuracy"]) == {"1", "2", "4", "10"}
        assert all(0.0 <= a <= 1.0 for a in result["accuracy"].values())
        latency = [result["latency_ms"][t] for t in ("1", "2", "4", "10")]
        assert latency == sorted(latency) and latency[0] > 0  # prefix: more steps, more stream
        assert result["firing_rates"] and all(0 <= r <= 1 for r in result["firing_rates"].values())

    trained = {
        p: evaluate_checkpoint(p, [1], cfg=cfg, data=data, progress=False)["trained_steps"]
        for p in (teacher_ckpt, converted, student, baseline)
    }
    # hsd evaluate's "trained at T" column: N frames, none, distill.steps, baseline.steps
    assert trained == {
        teacher_ckpt: cfg.data.frames,
        converted: None,
        student: cfg.distill.steps,
        baseline: cfg.baseline.steps,
    }
    assert cfg.distill.steps == 2
    rebin = evaluate_checkpoint(
        student, [1, 2], protocol="rebin", cfg=cfg, data=data, progress=False
    )
    assert rebin["latency_ms"]["1"] == pytest.approx(rebin["latency_ms"]["2"])  # whole stream


def test_evaluation_is_deterministic(cfg, data, teacher_ckpt, tmp_path):
    converted = convert_checkpoint(teacher_ckpt, tmp_path / "converted")
    a = evaluate_checkpoint(converted, [1, 3], cfg=cfg, data=data, progress=False)
    b = evaluate_checkpoint(converted, [1, 3], cfg=cfg, data=data, progress=False)
    assert a["accuracy"] == b["accuracy"]


def test_teacher_prefix_accuracy_matches_a_direct_computation(cfg, data, teacher_ckpt):
    """Accuracy after T frames = argmax of the mean of the first T per-frame logits."""
    model = model_from_checkpoint(load_checkpoint(teacher_ckpt)).eval()
    result = evaluate_checkpoint(teacher_ckpt, [3], cfg=cfg, data=data, progress=False)
    x = torch.from_numpy(np.asarray(data.arrays.frames[data.test])).float().transpose(0, 1)
    with torch.no_grad():
        logits = model(x[:3]).mean(0)
    labels = torch.from_numpy(data.arrays.labels[data.test])
    expected = (logits.argmax(1) == labels).float().mean().item()
    assert result["accuracy"]["3"] == pytest.approx(expected)


def test_distill_refuses_a_teacher_from_another_split(cfg, teacher_ckpt, tmp_path):
    other = load_config(overrides=[*TINY, "data.seed=1"])
    with pytest.raises(ConfigError, match="another split"):
        distill(other, teacher_ckpt, tmp_path / "x")


def test_resume_after_an_interruption_reaches_the_same_weights(data, tmp_path, monkeypatch):
    two = load_config(overrides=[*TINY, "teacher.optim.epochs=2"])
    straight = train_teacher(two, tmp_path / "straight", data=data)

    import hsd.pipeline as pipeline

    real = pipeline.train_one_epoch

    def crash_in_second_epoch(*args, **kwargs):
        if kwargs["epoch"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train_one_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(two, tmp_path / "resumed", data=data)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(pipeline, "train_one_epoch", real)
    resumed = train_teacher(two, tmp_path / "resumed", data=data, resume=True)

    a = load_checkpoint(straight.parent / "last.pt")["state_dict"]
    b = load_checkpoint(resumed.parent / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert len((tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()) == 2


def test_non_finite_loss_stops_with_a_clear_error(cfg, data):
    model = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(2 * 34 * 34, 10))
    feed = FrameFeed(data.arrays.frames, data.arrays.labels, data.train, batch_size=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)

    def nan_loss(logits, labels, teacher_logits=None):
        return {"loss": logits.sum() * float("nan")}

    with pytest.raises(TrainingError, match="epoch 1, step 1"):
        train_one_epoch(
            model,
            feed,
            nan_loss,
            optimizer,
            scheduler,
            device=torch.device("cpu"),
            epoch=0,
            input_key="teacher",
            progress=False,
        )


def test_demo_writes_report_plot_and_results(tmp_path):
    results = run_demo(tmp_path / "demo", overrides=TINY)
    out = tmp_path / "demo"
    saved = json.loads((out / "results.json").read_text())
    assert saved["methods"].keys() == {
        "teacher",
        "converted",
        "finetune_ce",
        "kd_mean",
        "direct",
        "hsd",
        "hsd_anytime",
    }
    assert saved["dataset"] == "digits-dvs" and saved["emulated"] is True
    assert saved["frames"] == 10 and saved["protocol"] == "prefix"
    for method in saved["methods"].values():
        assert set(method["accuracy"]) == {"1", "2", "4", "10"}
    assert 0 <= saved["methods"]["teacher"]["all_frames"] <= 1
    assert results["seconds"] > 0
    report = (out / "report.md").read_text()
    assert "emulated, not recorded" in report and "| HSD (step-wise KD) | 2 |" in report
    # every accuracy carries the Wilson interval of its count of correct test recordings
    from hsd.bench.stats import wilson_interval

    hsd = saved["methods"]["hsd"]
    for t in ("1", "2", "4", "10"):
        right, total = sum(hsd["correct"][t]), len(hsd["correct"][t])
        assert total == saved["test_samples"] and right / total == pytest.approx(hsd["accuracy"][t])
        low, high = wilson_interval(right, total)
        assert f"{100 * right / total:.1f} [{100 * low:.1f}, {100 * high:.1f}]" in report
    assert "(ref)" in report and "McNemar" in report
    assert f"With {saved['test_samples']} test recordings" in report
    assert (out / "accuracy_vs_steps.png").read_bytes()[:4] == b"\x89PNG"


def test_manifest_is_the_one_in_the_run(cfg, teacher_ckpt):
    dataset = get_dataset("digits-dvs")
    manifest = make_manifest(dataset, seed=cfg.data.seed)
    assert load_checkpoint(teacher_ckpt)["manifest_hash"] == manifest.hash


@pytest.mark.parametrize("target", ["stream", "prefix"])
def test_the_teacher_target_of_each_step(target, data):
    """ "stream": every step gets the teacher's mean over all N frames; "prefix": step t gets its
    mean over the first t + 1 frames (computed here from the teacher's per-frame logits)."""
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(2 * 34 * 34, 10))
    student = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(2 * 34 * 34, 10))
    feed = FrameFeed(
        data.arrays.frames, data.arrays.labels, data.train[:8], batch_size=8, student_steps=3
    )
    optimizer = torch.optim.SGD(student.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    seen = []

    def capture(logits, labels, teacher_logits=None):
        seen.append(teacher_logits)
        return {"loss": logits.sum() * 0.0}

    train_one_epoch(
        student,
        feed,
        capture,
        optimizer,
        scheduler,
        device=torch.device("cpu"),
        epoch=0,
        teacher=teacher,
        progress=False,
        teacher_target=target,
    )
    (batch,) = list(feed)
    with torch.no_grad():
        per_frame = teacher(batch.teacher)  # [N, B, C]
    if target == "stream":
        torch.testing.assert_close(seen[0], per_frame.mean(0))
    else:
        assert seen[0].shape == (3, 8, 10)
        for t in range(3):
            torch.testing.assert_close(seen[0][t], per_frame[: t + 1].mean(0))


def test_distillation_from_the_teacher_on_the_same_prefix_runs(cfg, data, teacher_ckpt, tmp_path):
    run_cfg = load_config(overrides=[*TINY, "distill.teacher_target=prefix"])
    best = distill(run_cfg, teacher_ckpt, tmp_path / "d", data=data)
    assert load_checkpoint(best)["config"]["distill"]["teacher_target"] == "prefix"
    anytime = load_config(
        overrides=[*TINY, "distill.loss=anytime", "distill.steps=10", "distill.self_kd=0.5"]
    )
    assert distill(anytime, teacher_ckpt, tmp_path / "a", data=data).exists()


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["distill.teacher_target=prefix", "distill.protocol=rebin"], "distill.teacher_target"),
        (["distill.self_kd=0.5"], "distill.self_kd"),
    ],
)
def test_teacher_target_and_self_kd_are_refused_where_they_mean_nothing(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=overrides)
