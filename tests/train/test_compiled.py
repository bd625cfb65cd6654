"""The compiled path: the ``compile`` key, the ``auto`` rule, compiled outputs equal to eager."""

import pytest
import torch
from torch import nn

from hsd.config import Config, apply_overrides
from hsd.errors import ConfigError
from hsd.models import convert_to_snn, create_model, reset_states
from hsd.train.compiled import AUTO_MIN_STEPS, compile_network, wants_compile


@pytest.mark.parametrize("text, value", [("true", "true"), ("false", "false"), ("auto", "auto")])
def test_compile_key_takes_yaml_booleans_and_auto(text, value):
    cfg = apply_overrides(Config(), [f"compile={text}"]).validate()
    assert cfg.compile == value
    assert Config().compile == "auto"


def test_compile_key_refuses_other_values():
    with pytest.raises(ConfigError, match=r"compile: must be one of auto, true, false"):
        apply_overrides(Config(), ["compile=yes please"])
    with pytest.raises(ConfigError, match=r"^compile: must be a string"):
        apply_overrides(Config(), ["compile=1"])


def test_auto_compiles_long_training_runs_only():
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    assert wants_compile("auto", cpu, train_steps=AUTO_MIN_STEPS)
    assert wants_compile("auto", cuda, train_steps=10 * AUTO_MIN_STEPS)
    assert not wants_compile("auto", cpu, train_steps=AUTO_MIN_STEPS - 1)
    assert not wants_compile("auto", mps, train_steps=10 * AUTO_MIN_STEPS)
    assert not wants_compile("auto", cpu, train_steps=None)  # evaluation
    assert wants_compile("true", cpu, train_steps=1) and wants_compile(
        "true", cpu, train_steps=None
    )
    assert not wants_compile("false", cpu, train_steps=10 * AUTO_MIN_STEPS)


@pytest.mark.slow
def test_compiled_snn_equals_eager(tmp_path, monkeypatch):
    """Forward and backward of a tiny converted network, compiled against eager (same weights)."""
    monkeypatch.setenv("HSD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    torch.manual_seed(0)
    snn = convert_to_snn(
        create_model("demo", num_classes=3, in_channels=2, input_size=8, width=0.125)
    )
    fast = compile_network(snn)
    assert isinstance(fast, nn.Module) and fast is not snn
    x = torch.rand(3, 2, 2, 8, 8) * 4
    results = []
    for net in (snn, fast):
        reset_states(snn)
        snn.zero_grad()
        y = net(x)
        y.square().mean().backward()
        results.append((y.detach(), [p.grad.clone() for p in snn.parameters()]))
    (y_e, g_e), (y_c, g_c) = results
    torch.testing.assert_close(y_c, y_e, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_e, g_c, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "inductor").is_dir()  # the graph cache lies in hsd's cache folder
