"""Streaming inference: frames as events arrive, one network step per frame, early exit."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hsd.cli import main
from hsd.config import config_to_dict, load_config
from hsd.errors import ConfigError, EventFileError
from hsd.events.core import Events, validate_events
from hsd.events.formats import read_events, write_atis_bin
from hsd.events.frames import integrate_frames
from hsd.models import convert_to_snn, create_model, reset_states
from hsd.pipeline import model_from_checkpoint
from hsd.stream import (
    ExitPolicy,
    StreamClassifier,
    apply_policy,
    exit_sweep,
    open_recording,
    replay,
    running_scores,
    stream_source,
    training_framing,
)
from hsd.train.checkpoint import load_checkpoint, save_checkpoint
from hsd.train.engine import forward_sequence

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
KWARGS = {
    "in_channels": 2,
    "num_classes": 10,
    "input_size": 34,
    "width": 0.25,
    "levels": 8,
    "init_threshold": 0.5,
}


def _save(path: Path, split_by: str = "count") -> Path:
    torch.manual_seed(0)
    model = create_model("demo", **KWARGS)
    with torch.no_grad():  # lively spiking in every layer and confident, changing decisions
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(4.0)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(50.0)
    snn = convert_to_snn(model)
    cfg = load_config(overrides=[f"data.split_by={split_by}"])
    payload = {
        "model": {"name": "demo", "kwargs": KWARGS, "spiking": True},
        "state_dict": snn.state_dict(),
        "classes": [f"digit{i}" for i in range(10)],
        "stage": "converted",
        "epoch": 0,
        "metrics": {},
        "config": config_to_dict(cfg),
        "manifest_hash": None,
    }
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("stream") / "snn.pt")


@pytest.fixture(scope="module")
def ckpt(ckpt_path) -> dict:
    return load_checkpoint(ckpt_path)


def _events(n: int = 3000, seed: int = 1, gap_us: int = 0) -> Events:
    """Random 34x34 events over ~30 ms; with ``gap_us`` a silence in the middle."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 30_000, n))
    t[n // 2 :] += gap_us
    return validate_events(
        t, rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n), (34, 34)
    )


def _no_exit() -> ExitPolicy:
    return ExitPolicy(confidence=None, margin=None)


def _pieces(events: Events, sizes: list[int]) -> list[Events]:
    cuts = np.cumsum(sizes)
    bounds = [0, *cuts[cuts < len(events)].tolist(), len(events)]
    return [events.select(slice(a, b)) for a, b in itertools.pairwise(bounds)]


def test_stepping_one_frame_at_a_time_equals_one_sequence_call(ckpt):
    model = model_from_checkpoint(ckpt).eval()
    x = torch.randint(0, 4, (6, 2, 2, 34, 34)).float()
    with torch.no_grad():
        whole = forward_sequence(model, x)
        reset_states(model)
        stepped = torch.cat([model(x[t][None]) for t in range(6)])
    assert whole.abs().sum() > 0
    torch.testing.assert_close(stepped, whole, rtol=0, atol=1e-6)


def test_count_framing_matches_offline_frames_and_prefix_decisions(ckpt):
    events = _events(3000)
    k = 400
    classifier = StreamClassifier(ckpt, frame_events=k, policy=_no_exit())
    decisions = classifier.push(events)
    assert [d.step for d in decisions] == list(range(1, 8))  # 3000 // 400 frames complete
    assert [d.events for d in decisions] == [k * s for s in range(1, 8)]
    assert [d.time_us for d in decisions] == [
        int(events.t[k * s - 1] - events.t[0]) for s in range(1, 8)
    ]
    frames = integrate_frames(events.select(slice(0, 7 * k)), 7, "count")
    model = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        logits = forward_sequence(model, torch.from_numpy(frames).float()[:, None])[:, 0]
    label, confidence, margin = running_scores(logits)
    assert [d.label for d in decisions] == label.tolist()
    np.testing.assert_allclose([d.confidence for d in decisions], confidence.numpy(), atol=1e-5)
    np.testing.assert_allclose([d.margin for d in decisions], margin.numpy(), atol=1e-5)
    assert all(d.class_name == f"digit{d.label}" for d in decisions)
    flushed = classifier.flush()  # the 200 remaining events make one more step
    assert [(d.step, d.events, d.time_us) for d in flushed] == [(8, 3000, events.duration_us)]
    assert classifier.flush() == []


def test_time_framing_by_hand(ckpt):
    events = validate_events(
        np.array([0, 100, 250, 1000]) + 5_000, [1, 2, 3, 4], [1, 1, 1, 1], [0, 1, 1, 0], (34, 34)
    )
    classifier = StreamClassifier(ckpt, frame_ms=0.2, policy=_no_exit())
    decisions = classifier.push(events)
    # windows of 200 us from t0: [0,100] | [250] | empty | empty | empty; 1000 stays pending
    assert [(d.step, d.events, d.time_us) for d in decisions] == [
        (1, 2, 200),
        (2, 3, 400),
        (3, 3, 600),
        (4, 3, 800),
        (5, 3, 1000),
    ]
    assert [(d.step, d.events, d.time_us) for d in classifier.flush()] == [(6, 4, 1000)]


@pytest.mark.parametrize("framing", [{"frame_events": 120}, {"frame_ms": 2.5}])
def test_one_piece_or_many_pieces_give_the_same_decisions(ckpt, framing):
    events = _events(1500, seed=2, gap_us=9_000)
    whole = StreamClassifier(ckpt, **framing, policy=_no_exit())
    expected = whole.push(events) + whole.flush()
    assert len(expected) >= 10
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 300, 100).tolist()
    pieces = StreamClassifier(ckpt, **framing, policy=_no_exit())
    got = [d for part in _pieces(events, sizes) for d in pieces.push(part)] + pieces.flush()
    assert got == expected
    single = StreamClassifier(ckpt, **framing, policy=_no_exit())
    one_by_one = [
        d for i in range(len(events)) for d in single.push(events.select(slice(i, i + 1)))
    ]
    assert one_by_one + single.flush() == expected


def test_early_exit_stops_at_the_step_the_offline_policy_picks(ckpt):
    events = _events(4000, seed=4)
    probe = StreamClassifier(ckpt, frame_events=200, policy=_no_exit())
    all_decisions = probe.push(events)
    threshold = sorted(d.confidence for d in all_decisions)[len(all_decisions) // 2]
    policy = ExitPolicy(confidence=threshold, min_steps=2)
    expected = next(d for d in all_decisions if d.step >= 2 and d.confidence >= threshold)
    classifier = StreamClassifier(ckpt, frame_events=200, policy=policy)
    decisions = classifier.push(events)
    assert decisions[-1].step == expected.step
    assert decisions[-1].exit and not any(d.exit for d in decisions[:-1])
    assert classifier.finished and classifier.final == decisions[-1]
    assert classifier.push(events) == [] and classifier.flush() == []
    classifier.reset()
    assert not classifier.finished and classifier.steps == 0
    assert classifier.push(events)[-1].step == expected.step
    assert classifier.final.confidence == pytest.approx(expected.confidence, abs=1e-6)


def test_max_steps_and_margin_policies(ckpt):
    events = _events(3000, seed=5)
    capped = StreamClassifier(ckpt, frame_events=100, policy=ExitPolicy(None, None, 1, 3))
    assert [d.exit for d in capped.push(events)] == [False, False, True]
    first = StreamClassifier(ckpt, frame_events=100, policy=ExitPolicy(None, margin=1e-9))
    assert [d.step for d in first.push(events)] == [1]  # any positive margin fires at once


def test_bad_inputs_are_refused(ckpt):
    with pytest.raises(ConfigError, match="exactly one"):
        StreamClassifier(ckpt)
    with pytest.raises(ConfigError, match="exactly one"):
        StreamClassifier(ckpt, frame_events=10, frame_ms=1.0)
    with pytest.raises(ConfigError, match="positive"):
        StreamClassifier(ckpt, frame_events=0)
    for frame_ms in (1e300, 2.0**53, float("nan"), 1e-4):  # 1e300: OverflowError in push
        with pytest.raises(ConfigError, match="frame_ms"):
            StreamClassifier(ckpt, frame_ms=frame_ms)
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        ExitPolicy(confidence=1.5)
    with pytest.raises(ConfigError, match="max_steps"):
        ExitPolicy(min_steps=4, max_steps=2)
    events = _events(100)
    classifier = StreamClassifier(ckpt, frame_events=10)
    classifier.push(events.select(slice(50, 100)))
    with pytest.raises(EventFileError, match="back in time"):
        classifier.push(events.select(slice(0, 50)))
    big = validate_events([0, 1], [40, 50], [0, 0], [0, 1], (64, 64))
    with pytest.raises(EventFileError, match="do not fit the 34x34 sensor"):
        StreamClassifier(ckpt, frame_events=1).push(big)
    wrong = StreamClassifier(ckpt, frame_events=1, sensor_size=(64, 64))
    with pytest.raises(ConfigError, match="expects 2x34x34"):
        wrong.push(big)


def test_smaller_sensor_events_are_placed_on_the_training_sensor(ckpt):
    events = _events(600, seed=6)
    inferred = events.with_sensor_size((int(events.x.max()) + 1, int(events.y.max()) + 1))
    a = StreamClassifier(ckpt, frame_events=100, policy=_no_exit())
    b = StreamClassifier(ckpt, frame_events=100, policy=_no_exit())
    assert a.push(events) == b.push(inferred)


def test_training_framing(ckpt):
    events = _events(1003)
    assert training_framing(ckpt, events) == {"frame_events": 100}
    timed = {**ckpt, "config": {**ckpt["config"], "data": {**ckpt["config"]["data"]}}}
    timed["config"]["data"]["split_by"] = "time"
    assert training_framing(timed, events) == {"frame_ms": (events.duration_us // 10) / 1000}
    timed["config"]["data"]["frame_us"] = 10_000  # fixed-duration frames: the same duration
    assert training_framing(timed, events) == {"frame_ms": 10.0}


def test_apply_policy_and_exit_sweep_by_hand():
    logits = torch.tensor(
        [
            [[0.0, 0.0], [4.0, 0.0], [-10.0, 0.0]],  # means [0,0], [2,0], [-2,0]
            [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]],  # mean [0,1] every step
        ]
    )
    labels = torch.tensor([0, 1])
    result = apply_policy(logits, ExitPolicy(confidence=0.85))
    assert result.steps.tolist() == [2, 3]
    assert result.predictions.tolist() == [0, 1]
    assert result.exited.tolist() == [True, False]
    end_times = np.array([[10_000, 20_000, 30_000], [5_000, 6_000, 7_000]])
    points = exit_sweep(logits, labels, [0.5, 0.85, 0.99], end_times_us=end_times)
    assert [(p.accuracy, p.mean_steps, p.exited) for p in points] == [
        (1.0, 1.0, 1.0),
        (1.0, 2.5, 0.5),
        (0.5, 3.0, 0.0),
    ]
    assert [p.mean_latency_ms for p in points] == [7.5, 13.5, 18.5]
    sigmoid2 = 1 / (1 + math.exp(-2))
    margin = exit_sweep(logits, labels, [2 * sigmoid2 - 1 - 1e-6], criterion="margin")[0]
    assert (margin.mean_steps, margin.accuracy) == (2.5, 1.0)
    assert exit_sweep(logits, labels, [0.5])[0].mean_latency_ms is None
    unknown = exit_sweep(logits, labels, [0.5], end_times_us=-np.ones((2, 3)))[0]
    assert unknown.mean_latency_ms is None


def test_sweep_agrees_with_the_stream(ckpt):
    events = _events(2400, seed=7)
    probe = StreamClassifier(ckpt, frame_events=300, policy=_no_exit())
    decisions = probe.push(events)
    frames = integrate_frames(events, 8, "count")
    model = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        logits = forward_sequence(model, torch.from_numpy(frames).float()[:, None])
    threshold = decisions[3].confidence - 1e-6
    policy = ExitPolicy(confidence=threshold)
    offline = apply_policy(logits.transpose(0, 1), policy)
    online = StreamClassifier(ckpt, frame_events=300, policy=policy)
    final = online.push(events)[-1]
    assert (final.step, final.label) == (int(offline.steps[0]), int(offline.predictions[0]))


def test_cli_stream_json_and_text(ckpt_path, tmp_path, capsys):
    events = _events(2000, seed=8)
    path = tmp_path / "rec.bin"
    write_atis_bin(path, events)
    assert main(["stream", str(ckpt_path), str(path), "--no-exit", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["type"] for x in lines] == ["decision"] * 10 + ["final"]
    assert [x["events"] for x in lines[:10]] == [200 * s for s in range(1, 11)]
    final = lines[-1]
    assert final["stopped"] == "end_of_stream" and final["frame_events"] == 200
    classifier, read = open_recording(ckpt_path, path, policy=_no_exit())
    expected = list(replay(classifier, read))
    assert [x["label"] for x in lines[:10]] == [d.label for d in expected]
    assert final["step"] == 10 and final["label"] == expected[-1].label

    args = ["--no-exit", "--max-steps", "2", "--frame-events", "50"]
    assert main(["stream", str(ckpt_path), str(path), *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: file; frame events 50 per frame"
    assert len(out) == 5 and out[2].startswith("step   2")
    assert out[-2].startswith("final: ") and out[-2].endswith("(early exit)")
    # the file is read in chunks of 1024 events: the first one completes both steps
    assert "after 2 steps" in out[-2] and "100 events (1024 received)" in out[-2]
    assert out[-1].startswith("latency from arrival to decision: median ")
    assert out[-1].endswith("ms over 2 decisions")

    assert main(["stream", str(ckpt_path), str(path), "--frame-events", "3000"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "no decision: the 2000 events received do not complete one frame "
        "(--flush counts a partial frame)"
    ]
    assert main(["stream", str(ckpt_path), str(path), "--frame-events", "3000", "--flush"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and "2000 events (2000 received)" in out[-2]

    assert main(["stream", str(ckpt_path), str(tmp_path / "missing.bin")]) == 2
    assert main(["stream", str(ckpt_path), str(path), "--exit-confidence", "2"]) == 2
    assert "(0, 1]" in capsys.readouterr().err


def test_real_recording_in_pieces(ckpt):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found: {SHARED_DATA}")
    path = (
        SHARED_DATA
        / "nmnist-small"
        / "Test"
        / "3"
        / sorted(p.name for p in (SHARED_DATA / "nmnist-small" / "Test" / "3").glob("*.bin"))[0]
    )
    classifier, events = open_recording(ckpt, path, policy=_no_exit())
    assert events.sensor_size == (34, 34)
    k = classifier.frame_events
    assert k == len(events) // 10
    whole = list(replay(classifier, events, chunk_events=len(events)))
    assert [d.events for d in whole] == [k * s for s in range(1, 11)]
    classifier.reset()
    assert list(replay(classifier, events, chunk_events=37)) == whole
    classifier.reset()
    flushed = list(replay(classifier, events, chunk_events=37, flush=True))
    assert flushed[:10] == whole
    assert [(d.step, d.events) for d in flushed[10:]] == [(11, len(events))] * (
        len(events) % 10 > 0
    )
    frames = integrate_frames(read_events(path, sensor_size=(34, 34)), 10, "count")
    model = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        logits = forward_sequence(model, torch.from_numpy(frames).float()[:, None])[:, 0]
    # the first 9 frames are the training frames exactly
    assert [d.label for d in whole[:9]] == running_scores(logits)[0][:9].tolist()


def test_cli_stream_bad_files_name_the_file(ckpt_path, tmp_path, capsys):
    missing = tmp_path / "missing.bin"
    unknown = tmp_path / "rec.xyz"
    unknown.write_bytes(b"garbage")
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(b"\x00" * 7)
    for path, reason in (
        (missing, "no such file"),
        (unknown, "unknown extension"),
        (truncated, "not a multiple of 5"),
    ):
        assert main(["stream", str(ckpt_path), str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hsd: error: {path}: ") and reason in err
        assert "Traceback" not in err
    assert main(["stream", str(tmp_path / "none.pt"), str(truncated)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


# --- sources: files in chunks, DV network streams, Ctrl-C -------------------------------------

REPO = Path(__file__).resolve().parents[1]
DV_SEND = REPO / "benchmarks" / "dv_send.py"
try:
    import dv_processing  # noqa: F401

    HAVE_DV = True
except ImportError:
    HAVE_DV = False
needs_dv = pytest.mark.skipif(not HAVE_DV, reason="dv-processing (extra 'live') not installed")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_sender(path: Path, *args: str):
    """benchmarks/dv_send.py serving ``path`` on a free loopback port, once it listens."""
    import subprocess
    import sys

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(DV_SEND), str(path), str(port), "--sensor-size", "34,34", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("dv_send: listening"), line
    return proc, port


@pytest.mark.parametrize("framing", [{"frame_events": 150}, {"frame_ms": 1.5}])
def test_chunked_file_gives_the_decisions_of_the_whole_file(ckpt, tmp_path, framing):
    from hsd.events.sources import FileSource

    events = _events(2500, seed=9, gap_us=5_000)
    path = tmp_path / "rec.bin"
    write_atis_bin(path, events)
    whole = StreamClassifier(ckpt, **framing, policy=_no_exit())
    expected = whole.push(read_events(path, sensor_size=(34, 34))) + whole.flush()
    assert len(expected) >= 15
    for chunking in ({"chunk_events": 1}, {"chunk_events": 97}, {"chunk_us": 700}):
        classifier = StreamClassifier(ckpt, **framing, policy=_no_exit())
        got = list(stream_source(classifier, FileSource(path, **chunking), flush=True))
        assert got == expected
        assert all(d.latency_ms is not None and d.latency_ms >= 0 for d in got)


def test_cli_stream_source_errors(ckpt_path, tmp_path, capsys, monkeypatch):
    for source, fault in (
        ("dv://127.0.0.1:99999", "port must be an integer in 1..65535"),
        ("dv://127.0.0.1", "no port"),
        ("udp://127.0.0.1:7777", "unknown source scheme 'udp'"),
    ):
        assert main(["stream", str(ckpt_path), source]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hsd: error: {source}: ") and fault in err
    monkeypatch.setitem(__import__("sys").modules, "dv_processing", None)
    assert main(["stream", str(ckpt_path), "camera", "--frame-events", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hsd: error: camera: live sources need dv-processing")
    assert "[live]'" in err and "Traceback" not in err


@needs_dv
def test_cli_stream_live_errors(ckpt_path, capsys):
    port = _free_port()
    assert main(["stream", str(ckpt_path), f"dv://127.0.0.1:{port}", "--frame-events", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hsd: error: dv://127.0.0.1:{port}: cannot connect") and "refused" in err
    import dv_processing as dv

    if not list(dv.io.camera.discover()):
        assert main(["stream", str(ckpt_path), "camera:XYZ", "--frame-ms", "5"]) == 2
        assert "hsd: error: camera:XYZ: no iniVation camera found" in capsys.readouterr().err


@needs_dv
def test_cli_stream_from_a_dv_network_stream_equals_the_file(ckpt_path, tmp_path, capsys):
    events = _events(3000, seed=10)
    path = tmp_path / "rec.bin"
    write_atis_bin(path, events)
    args = ["--frame-events", "170", "--no-exit", "--json"]
    assert main(["stream", str(ckpt_path), str(path), *args]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(from_file) == 3000 // 170 + 1

    sender, port = _start_sender(path, "--batch-events", "256")
    try:
        assert main(["stream", str(ckpt_path), f"dv://127.0.0.1:{port}", *args]) == 0
        assert sender.wait(20) == 0
    finally:
        sender.kill()
    live = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    def decided(lines):
        keys = ("type", "step", "label", "events", "time_us", "exit")
        return [{k: x[k] for k in keys} for x in lines]

    assert decided(live) == decided(from_file)
    np.testing.assert_allclose(
        [x["confidence"] for x in live], [x["confidence"] for x in from_file], atol=1e-6
    )
    final = live[-1]
    assert final["stopped"] == "end_of_stream" and final["events_received"] == 3000
    assert final["latency"]["decisions"] == 3000 // 170
    assert 0 <= final["latency"]["median_ms"] <= final["latency"]["p99_ms"]
    assert all(x["latency_ms"] >= 0 for x in live[:-1])

    assert main(["stream", str(ckpt_path), f"dv://127.0.0.1:{port}"]) == 2  # no framing
    assert "a live stream has no known length" in capsys.readouterr().err


def _interrupt_after(command: list[str], decisions: int = 2) -> tuple[int, list[dict]]:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hsd.cli", *command, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(decisions)]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines += [json.loads(line) for line in out.splitlines()]
    assert "Traceback" not in err
    return proc.returncode, lines


def test_ctrl_c_prints_the_final_decision(ckpt_path, tmp_path):
    events = _events(3000, seed=11)  # stretched over 60 s of event time, replayed in real time
    events = Events(events.t * 2000, events.x, events.y, events.p, events.sensor_size)
    path = tmp_path / "long.bin"
    write_atis_bin(path, events)
    rc, lines = _interrupt_after(
        ["stream", str(ckpt_path), str(path), "--realtime", "--frame-events", "20", "--no-exit"]
    )
    assert rc == 0
    final = lines[-1]
    assert final["type"] == "final" and final["stopped"] == "interrupted"
    assert [x["type"] for x in lines[:-1]] == ["decision"] * (len(lines) - 1)
    assert final["step"] == lines[-2]["step"] >= 2 and final["events_received"] < 3000


@needs_dv
def test_ctrl_c_on_a_live_stream(ckpt_path, tmp_path):
    events = _events(2000, seed=12)
    path = tmp_path / "rec.bin"
    write_atis_bin(path, events)
    sender, port = _start_sender(path, "--hold")  # sends, then keeps the connection open
    try:
        source = f"dv://127.0.0.1:{port}"
        rc, lines = _interrupt_after(  # all 4 frames decided, then the stream goes quiet
            ["stream", str(ckpt_path), source, "--frame-events", "500", "--no-exit"], decisions=4
        )
    finally:
        sender.kill()
    assert rc == 0
    assert [x["type"] for x in lines] == ["decision"] * 4 + ["final"]
    assert lines[-1]["stopped"] == "interrupted" and lines[-1]["events_received"] == 2000
    assert lines[-1]["step"] == 4


def test_stream_compile_true_equals_eager_with_dynamo_eager_backend(ckpt_path, monkeypatch):
    """``compile="true"``: dynamo captures the step network (here with its ``eager`` backend, no
    code generation, to stay in seconds; the inductor run through the CLI is the slow test
    below); the same decisions as eager, over the first-step graph, the steps that carry state
    and a reset."""
    import hsd.stream
    from hsd.train.compiled import compile_network

    monkeypatch.setattr(
        hsd.stream, "compile_network", lambda net: compile_network(net, backend="eager")
    )
    events = _events(1000, seed=8)
    eager = StreamClassifier(ckpt_path, frame_events=100, policy=_no_exit())
    fast = StreamClassifier(ckpt_path, frame_events=100, policy=_no_exit(), compile="true")
    assert fast.network is not fast.model and eager.network is eager.model
    want = eager.push(events)
    for _ in range(2):  # the second stream after a reset: the state starts over
        got = fast.push(events)
        assert [d.label for d in got] == [d.label for d in want]
        for a, b in zip(want, got, strict=True):
            assert b.confidence == pytest.approx(a.confidence, rel=1e-5, abs=1e-5)
            assert b.margin == pytest.approx(a.margin, rel=1e-5, abs=1e-5)
        fast.reset()


@pytest.mark.slow
def test_stream_cli_compile_true_equals_eager_inductor(ckpt_path, tmp_path, capsys, monkeypatch):
    """``hsd stream --set compile=true`` (inductor, 20-40 s of compilation here) against eager:
    the same decisions, confidences and margins to float tolerance."""
    monkeypatch.setenv("HSD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    path = tmp_path / "rec.bin"
    write_atis_bin(path, _events(2000, seed=8))
    runs = {}
    for mode in ("false", "true"):
        args = ["stream", str(ckpt_path), str(path), "--no-exit", "--json", "--frame-events", "200"]
        assert main([*args, "--set", f"compile={mode}"]) == 0
        runs[mode] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    eager, compiled = runs["false"], runs["true"]
    assert [x["type"] for x in compiled] == ["decision"] * 10 + ["final"]
    assert [x["label"] for x in compiled] == [x["label"] for x in eager]
    for a, b in zip(eager[:10], compiled[:10], strict=True):
        assert b["confidence"] == pytest.approx(a["confidence"], rel=1e-5, abs=1e-5)
        assert b["margin"] == pytest.approx(a["margin"], rel=1e-5, abs=1e-5)
    assert (tmp_path / "cache" / "inductor").is_dir()


def test_stream_set_reads_only_compile(ckpt_path, tmp_path, capsys):
    path = tmp_path / "rec.bin"
    write_atis_bin(path, _events(500, seed=2))
    assert main(["stream", str(ckpt_path), str(path), "--set", "device=cuda"]) == 2
    assert "--set device=cuda: hsd stream reads only compile" in capsys.readouterr().err
    assert main(["stream", str(ckpt_path), str(path), "--set", "compile=maybe"]) == 2
    assert "compile: must be one of auto, true, false" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="compile must be"):
        StreamClassifier(ckpt_path, frame_events=10, compile="yes")
    eager = StreamClassifier(ckpt_path, frame_events=10)  # auto: eager, as for evaluation
    assert eager.network is eager.model
