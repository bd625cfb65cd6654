"""Every paper recipe in configs/ runs its stages (teacher, distillation, baseline) for one short
epoch on a few samples of a fake dataset in its real on-disk layout. On a GPU with the real data
the same recipes are the real thing."""

from pathlib import Path

import numpy as np
import pytest

from hsd.config import load_config
from hsd.events.core import validate_events
from hsd.events.formats import write_aedat2, write_aedat31, write_atis_bin
from hsd.pipeline import distill, evaluate_checkpoint, prepare_data, train_baseline, train_teacher

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "hsd" / "recipes"
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _events(seed, n, sensor_size):
    rng = np.random.default_rng(seed)
    w, h = sensor_size
    return validate_events(
        np.sort(rng.integers(0, 300_000, n)),
        rng.integers(0, w, n),
        rng.integers(0, h, n),
        rng.integers(0, 2, n),
        sensor_size,
    )


def _cifar10dvs(root: Path) -> Path:
    for c, name in enumerate(CIFAR_CLASSES):
        (root / name).mkdir(parents=True)
        for j in range(4):
            write_aedat2(
                root / name / f"cifar10_{name}_{j}.aedat", _events(10 * c + j, 300, (128, 128))
            )
    return root


def _ncaltech101(root: Path) -> Path:
    for c, name in enumerate(["BACKGROUND_Google", "accordion", "airplanes"]):
        (root / name).mkdir(parents=True)
        for j in range(4):
            write_atis_bin(
                root / name / f"image_{j + 1:04d}.bin", _events(c * 7 + j, 300, (233, 173))
            )
    return root


def _dvsgesture(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = [(c + 1, 25_000 * c, 25_000 * (c + 1)) for c in range(11)]
    for n, name in enumerate(["user01_fluorescent", "user02_lab", "user24_led"]):
        write_aedat31(root / f"{name}.aedat", _events(n, 3000, (128, 128)))
        lines = ["class,startTime_usec,endTime_usec"] + [f"{c},{s},{e}" for c, s, e in rows]
        (root / f"{name}_labels.csv").write_text("\n".join(lines) + "\n")
    (root / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_lab.aedat\n")
    (root / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return root


FAKE = {
    "cifar10dvs-vggsnn": _cifar10dvs,
    "ncaltech101-vggsnn": _ncaltech101,
    "dvsgesture-vggsnn": _dvsgesture,
}


@pytest.mark.parametrize("recipe", sorted(FAKE))
def test_paper_recipe_runs_one_short_epoch_per_stage(recipe, tmp_path):
    root = FAKE[recipe](tmp_path / "data")
    cfg = load_config(
        CONFIGS / f"{recipe}.yaml",
        [
            f"data.root={root}",
            "data.limit=4",
            "data.batch_size=2",
            "model.width=0.0625",
            "teacher.optim.epochs=1",
            "distill.optim.epochs=1",
            "baseline.optim.epochs=1",
            "progress=false",
        ],
    )
    assert cfg.model.name == "vggsnn" and cfg.data.size == [48, 48] and cfg.data.frames == 10
    data = prepare_data(cfg)
    assert data.input_shape == (2, 48, 48)
    teacher = train_teacher(cfg, tmp_path / "teacher", data=data)
    student = distill(cfg, teacher, tmp_path / "hsd", data=data)
    baseline = train_baseline(cfg, tmp_path / "direct", data=data)
    for ckpt in (teacher, student, baseline):
        result = evaluate_checkpoint(ckpt, [1, 2], cfg=cfg, data=data, progress=False)
        assert set(result["accuracy"]) == {"1", "2"}
