"""The names exported from ``hsd`` itself: lazy (no torch on ``import hsd``) and usable."""

import subprocess
import sys

import hsd


def test_import_hsd_stays_light_and_every_name_resolves():
    code = "import sys, hsd; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for name in hsd.__all__:
        assert getattr(hsd, name) is not None, name
    from hsd.models import QCFS
    from hsd.train.losses import skd_loss

    assert hsd.QCFS is QCFS and hsd.skd_loss is skd_loss
    assert {"convert_to_snn", "forward_sequence", "prefix_accuracy", "StreamClassifier"} <= set(
        dir(hsd)
    )


def test_time_first_loader():
    import numpy as np

    from hsd.data.cache import FrameArrays

    frames = np.arange(5 * 3 * 2 * 4 * 4, dtype=np.int16).reshape(5, 3, 2, 4, 4)
    arrays = FrameArrays(
        frames=frames,
        labels=np.array([0, 1, 2, 0, 1]),
        end_times_us=np.full((5, 3), -1, dtype=np.int64),
        keys=[f"s{i}" for i in range(5)],
    )
    x, y = next(iter(hsd.make_loader(arrays, [0, 1, 2, 3], batch_size=4, time_first=True)))
    assert x.shape == (3, 4, 2, 4, 4) and y.tolist() == [0, 1, 2, 0]
    assert np.array_equal(x[:, 1].numpy(), frames[1].astype(np.float32))
    xb, _ = next(iter(hsd.make_loader(arrays, [0, 1, 2, 3], batch_size=4)))
    assert xb.shape == (4, 3, 2, 4, 4)


def test_evaluate_refuses_a_plain_state_dict_clearly(tmp_path):
    import subprocess
    import sys

    import torch

    from hsd.models import create_model

    path = tmp_path / "weights.pt"
    net = create_model("demo", in_channels=2, num_classes=10, input_size=34, width=0.25)
    torch.save(net.state_dict(), path)
    run = [sys.executable, "-m", "hsd.cli", "evaluate", str(path), "--steps", "1"]
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"hsd: error: {path}: a plain state dict (weights only" in out.stderr
    assert "cannot rebuild it" in out.stderr
