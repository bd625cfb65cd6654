"""ONNX export of one spiking step with explicit membranes; NIR export refused with reasons."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hsd.cli import main
from hsd.config import config_to_dict, load_config
from hsd.events.core import validate_events
from hsd.events.frames import integrate_frames
from hsd.export import ExportError, OnnxStep, export_nir, export_onnx, nir_obstacles
from hsd.models import QCFSNeuron, convert_to_snn, create_model
from hsd.pipeline import model_from_checkpoint
from hsd.train.checkpoint import load_checkpoint, save_checkpoint
from hsd.train.engine import forward_sequence

KWARGS = {
    "in_channels": 2,
    "num_classes": 10,
    "input_size": 34,
    "width": 0.25,
    "levels": 8,
    "init_threshold": 1.0,
}


def _save(path: Path, spiking: bool) -> Path:
    torch.manual_seed(0)
    model = create_model("demo", **KWARGS)
    with torch.no_grad():  # lively spiking in every layer; distinct thresholds per layer
        for i, m in enumerate(m for m in model.modules() if hasattr(m, "lam")):
            m.lam.fill_(0.4 + 0.2 * i)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(3.0)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(40.0)
    if spiking:
        model = convert_to_snn(model)
    payload = {
        "model": {"name": "demo", "kwargs": KWARGS, "spiking": spiking},
        "state_dict": model.state_dict(),
        "classes": [str(i) for i in range(10)],
        "stage": "converted" if spiking else "teacher",
        "epoch": 0,
        "metrics": {},
        "config": config_to_dict(load_config()),
        "manifest_hash": None,
    }
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def snn_path(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("export") / "snn.pt", spiking=True)


@pytest.fixture(scope="module")
def ann_path(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("export") / "ann.pt", spiking=False)


def _frames(seed: int, batch: int = 1) -> torch.Tensor:
    """Count frames ``[10, batch, 2, 34, 34]`` of random 3000-event recordings."""
    out = []
    for b in range(batch):
        rng = np.random.default_rng(seed + b)
        n = 3000
        events = validate_events(
            np.sort(rng.integers(0, 300_000, n)),
            rng.integers(0, 34, n),
            rng.integers(0, 34, n),
            rng.integers(0, 2, n),
            (34, 34),
        )
        out.append(torch.from_numpy(integrate_frames(events, 10, "count")).float())
    return torch.stack(out, 1)


def _session(path: Path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (hsd[export])")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run_steps(session, frames: torch.Tensor) -> np.ndarray:
    from hsd.export import onnx_initial_state

    state = onnx_initial_state(session)
    names = [o.name for o in session.get_outputs()]
    logits = []
    for t in range(frames.shape[0]):
        result = dict(
            zip(names, session.run(None, {"frame": frames[t].numpy(), **state}), strict=True)
        )
        logits.append(result["logits"])
        state = {name: result[f"{name}_next"] for name in state}
    return np.stack(logits)


def test_onnx_step_by_step_matches_pytorch_over_a_sample(snn_path, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (hsd[export])")
    ckpt = load_checkpoint(snn_path)
    result = export_onnx(ckpt, tmp_path / "snn.onnx")
    assert result.inputs == ["frame", "membrane_0", "membrane_1", "membrane_2"]
    assert result.outputs == ["logits", *(f"membrane_{i}_next" for i in range(3))]
    assert result.membrane_shapes == [(1, 8, 34, 34), (1, 16, 17, 17), (1, 32, 8, 8)]
    session = _session(result.path)
    frames = _frames(seed=0)
    model = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        expected = forward_sequence(model, frames).numpy()
    assert np.abs(np.diff(expected, axis=0)).max() > 1.0  # the state matters over time
    np.testing.assert_allclose(_run_steps(session, frames), expected, atol=1e-4, rtol=0)


def test_onnx_metadata_and_initial_state(snn_path, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (hsd[export])")
    from hsd.export import onnx_initial_state

    export_onnx(snn_path, tmp_path / "snn.onnx")
    session = _session(tmp_path / "snn.onnx")
    meta = session.get_modelmeta().custom_metadata_map
    model = model_from_checkpoint(load_checkpoint(snn_path))
    neurons = [(n, m) for n, m in model.named_modules() if isinstance(m, QCFSNeuron)]
    assert json.loads(meta["hsd.membrane_layers"]) == [n for n, _ in neurons]
    assert json.loads(meta["hsd.classes"]) == [str(i) for i in range(10)]
    assert json.loads(meta["hsd.data"])["frames"] == 10
    halves = [0.5 * float(m.v_threshold.detach()) for _, m in neurons]
    assert json.loads(meta["hsd.initial_membranes"]) == pytest.approx(halves)
    assert halves == pytest.approx([0.2, 0.3, 0.4])
    state = onnx_initial_state(session)
    assert [float(np.unique(v)[0]) for v in state.values()] == pytest.approx(halves)


def test_onnx_batch_of_two_and_ann(snn_path, ann_path, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed (hsd[export])")
    export_onnx(snn_path, tmp_path / "b2.onnx", batch_size=2)
    frames = _frames(seed=5, batch=2)
    model = model_from_checkpoint(load_checkpoint(snn_path)).eval()
    with torch.no_grad():
        expected = forward_sequence(model, frames).numpy()
    got = _run_steps(_session(tmp_path / "b2.onnx"), frames)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)

    result = export_onnx(ann_path, tmp_path / "ann.onnx")
    assert result.inputs == ["frame"] and result.outputs == ["logits"]
    ann = model_from_checkpoint(load_checkpoint(ann_path)).eval()
    with torch.no_grad():
        expected = ann(frames[:, :1]).numpy()
    got = _run_steps(_session(tmp_path / "ann.onnx"), frames[:, :1])
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_onnx_step_module_leaves_the_model_alone(snn_path):
    model = model_from_checkpoint(load_checkpoint(snn_path)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = OnnxStep(model)
    state = step.initial_state((2, 34, 34), 1)
    step.train()
    step(torch.ones(1, 2, 34, 34), *state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="expected 3 membranes"):
        step(torch.ones(1, 2, 34, 34))


def test_onnx_without_the_package_says_how_to_install(snn_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ExportError, match=r"hsd-snn\[export\]"):
        export_onnx(snn_path, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_nir_is_refused_with_the_reasons(snn_path, ann_path, tmp_path, capsys):
    snn = model_from_checkpoint(load_checkpoint(snn_path))
    problems = nir_obstacles(snn)
    assert len(problems) == 3
    assert "soft reset" in problems[0] and "3 integrate-and-fire layers" in problems[0]
    assert "hard reset" in problems[0]
    assert "threshold / 2" in problems[1] and "no initial membrane" in problems[1]
    assert "v >= threshold" in problems[2] and "v > v_threshold" in problems[2]
    assert nir_obstacles(model_from_checkpoint(load_checkpoint(ann_path))) == [
        "QCFS activations (quantised clip-floor-shift) have no NIR primitive"
    ]
    with pytest.raises(ExportError, match="soft reset"):
        export_nir(snn_path, tmp_path / "x.nir")
    out = tmp_path / "snn.nir"
    assert main(["export", "nir", str(snn_path), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hsd: error: {snn_path}: cannot be exported to NIR")
    assert "soft reset" in err and "threshold / 2" in err and "hsd export onnx" in err
    assert "Traceback" not in err
    assert not out.exists()
    ann_out = tmp_path / "ann.nir"
    assert main(["export", "nir", str(ann_path), str(ann_out)]) == 2
    assert "QCFS activations" in capsys.readouterr().err
    assert not ann_out.exists()


def test_cli_export_onnx(snn_path, tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx is not installed (hsd[export])")
    out = tmp_path / "cli.onnx"
    assert main(["export", "onnx", str(snn_path), str(out)]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: inputs frame, membrane_0")
    assert "3 membrane states, batch 1" in printed
    assert main(["export", "onnx", str(tmp_path / "missing.pt"), str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
