"""benchmarks/gpu_check.sh: its CPU-safe parts (syntax, the dry run's plan, the time budget)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
STEPS = ["env", "tests", "amp_bf16", "amp_fp16", "sync_bn", "speed", "feed", "train"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_dry_run_lists_every_step_within_eight_minutes(tmp_path):
    res = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"],
        cwd=SCRIPT.parents[1],
        env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        check=True,
    )
    names = [line.split()[0] for line in res.stdout.splitlines() if re.match(r"\w+ +\d+s ", line)]
    assert names == STEPS
    total = int(re.search(r"total of the limits: (\d+)s", res.stdout).group(1))
    limits = [int(m) for m in re.findall(r"^\w+ +(\d+)s ", res.stdout, flags=re.M)]
    assert total == sum(limits) and total < 8 * 60
    assert "--vgg-batch 64 --steps 1,2,4,10" in res.stdout
    assert "amp=bf16" in res.stdout and "amp=fp16" in res.stdout and "sync_bn=true" in res.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
