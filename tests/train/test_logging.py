"""What a training run prints (non-TTY: no bar redraws, one line per epoch, also with
progress=false) and the optional TensorBoard event file beside metrics.jsonl."""

import io
import json
import subprocess
import sys

import pytest

from hsd.config import load_config
from hsd.pipeline import prepare_data, train_teacher
from hsd.progress import bars_enabled

TINY = [
    "model.width=0.25",
    "data.limit=32",
    "data.batch_size=16",
    "teacher.optim.epochs=2",
    "threads=1",
]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_and_only_with_progress():
    assert bars_enabled(True, _Tty())
    assert not bars_enabled(False, _Tty())
    assert not bars_enabled(True, io.StringIO())  # redirected output: no bars
    closed = io.StringIO()
    closed.close()
    assert not bars_enabled(True, closed)


@pytest.mark.parametrize("progress", ["true", "false"])
def test_epoch_lines_without_redraws_when_not_a_tty(progress, capsys, tmp_path):
    # capsys replaces stdout/stderr by non-TTY streams, as `make demo > log` does
    cfg = load_config(overrides=[*TINY, f"progress={progress}"])
    train_teacher(cfg, tmp_path / "teacher", data=prepare_data(cfg))
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("[teacher] epoch")]
    assert [line.split(":")[0] for line in lines] == [
        "[teacher] epoch 1/2",
        "[teacher] epoch 2/2",
    ]
    assert "\r" not in out and "\r" not in err  # no progress-bar redraws
    assert len(err) < 2000, err[-500:]


def test_cli_output_redirected_stays_small(tmp_path):
    """The whole `hsd teacher` command with its stdout/stderr redirected to pipes."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hsd.cli", "teacher", "--out", str(run)]
    for item in TINY:
        cmd += ["--set", item]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stdout + done.stderr
    epochs = [ln for ln in done.stdout.splitlines() if ln.startswith("[teacher] epoch")]
    assert len(epochs) == 2
    assert len(done.stdout) + len(done.stderr) < 5000


def test_tensorboard_has_the_scalars_of_metrics_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(overrides=[*TINY, "progress=false", "log.tensorboard=true"])
    out = tmp_path / "teacher"
    train_teacher(cfg, out, data=prepare_data(cfg))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"teacher/train_loss", "teacher/train_acc", "teacher/lr", "teacher/val_acc"} <= tags
    for key in ("train_loss", "train_acc", "val_acc", "lr"):
        events = acc.Scalars(f"teacher/{key}")
        assert [e.step for e in events] == [1, 2]
        for event, record in zip(events, records, strict=True):
            assert event.value == pytest.approx(record[key], rel=1e-6)


def test_tensorboard_off_by_default(tmp_path):
    cfg = load_config(overrides=[*TINY, "teacher.optim.epochs=1", "progress=false"])
    out = tmp_path / "teacher"
    train_teacher(cfg, out, data=prepare_data(cfg))
    assert not (out / "tensorboard").exists()
