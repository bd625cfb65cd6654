"""The scripts in examples/ run (tiny settings: one epoch on a slice of the embedded data)."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_hsd_on_your_network_runs(capsys):
    spec = importlib.util.spec_from_file_location("example", EXAMPLES / "hsd_on_your_network.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len((EXAMPLES / "hsd_on_your_network.py").read_text().splitlines()) < 80
    acc = module.main(["--epochs", "1", "--limit", "64"])
    assert len(acc) == 2 and all(0.0 <= a <= 1.0 for a in acc)
    out = capsys.readouterr().out
    assert "teacher (ANN, N=10)" in out and "HSD student (SNN): T=1" in out
