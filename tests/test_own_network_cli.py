"""An own network (import path) and an own folder of recordings (``folder`` dataset) through
teacher, distillation, evaluation, streaming and ONNX export, all from the command line."""

import json
import sys

import numpy as np
import pytest

from hsd.cli import main
from hsd.events.core import validate_events
from hsd.events.formats import write_atis_bin

from .test_own_network_pipeline import NETS


@pytest.fixture
def own(tmp_path, monkeypatch):
    (tmp_path / "own_nets_cli.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HSD_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for c, cls in enumerate(["left", "right"]):  # headerless ATIS files, each on half the sensor
        folder = tmp_path / "recordings" / cls
        folder.mkdir(parents=True)
        for i in range(10):
            n = 500
            x = rng.integers(0, 17, n) + 17 * c
            t = np.sort(rng.integers(0, 100_000, n))
            events = validate_events(t, x, rng.integers(0, 34, n), rng.integers(0, 2, n), (34, 34))
            write_atis_bin(folder / f"r{i}.bin", events)
    yield tmp_path
    sys.modules.pop("own_nets_cli", None)


def test_own_network_and_folder_from_the_command_line(own, capsys):
    common = ["--root", str(own / "recordings")]
    for key in (
        "data.dataset=folder",
        "model.name=own_nets_cli:make_net",
        "teacher.optim.epochs=1",
        "distill.optim.epochs=1",
        "distill.steps=2",
        "progress=false",
        "threads=1",
        "data.batch_size=8",
    ):
        common += ["--set", key]
    runs = own / "runs"
    assert main(["teacher", *common, "--out", str(runs / "t")]) == 0
    assert main(["distill", *common, "--teacher", str(runs / "t"), "--out", str(runs / "d")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(runs / "d"), "--steps", "1,2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["accuracy"]) == {"1", "2"}
    recording = own / "recordings" / "right" / "r0.bin"  # x >= 17: the sensor is all files' extent
    assert main(["stream", str(runs / "d"), str(recording), "--frame-events", "100", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["type"] == "final" and lines[-1]["events_received"] == 500
    pytest.importorskip("onnx")
    assert main(["export", "onnx", str(runs / "d"), str(own / "d.onnx")]) == 0
    assert (own / "d.onnx").stat().st_size > 0
