"""Operation counts and energy estimate: hand-computed cases on tiny networks."""

import math

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

from hsd.eval.energy import (
    E_AC_PJ,
    E_MAC_PJ,
    LayerCost,
    count_macs,
    energy_estimate,
    synaptic_ops,
)
from hsd.models import FiringRateMonitor, FrameNet, convert_to_snn, reset_states


def tiny(plan=(2, 3, "pool"), threshold: float = 1.0) -> FrameNet:
    torch.manual_seed(0)
    return FrameNet(
        plan,
        in_channels=1,
        num_classes=3,
        input_size=4,
        width=1.0,
        levels=8,
        init_threshold=threshold,
    )


# tiny(): conv 1->2 on 4x4: 16 * 2 * 1*9 = 288; conv 2->3 on 4x4: 16 * 3 * 2*9 = 864;
# pool to 2x2, linear 3*2*2 = 12 -> 3: 36.
EXPECTED = [
    LayerCost("features.0.0", "conv", 288, None),
    LayerCost("features.2.0", "conv", 864, "features.1"),
    LayerCost("classifier.1", "linear", 36, "features.3"),
]


def test_count_macs_hand_computed_ann_and_snn_agree():
    ann = tiny()
    assert count_macs(ann, (1, 4, 4)) == EXPECTED
    assert count_macs(convert_to_snn(ann), (1, 4, 4)) == EXPECTED


def test_count_macs_grouped_strided_conv():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = layer.SeqToANNContainer(
                nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False),
                nn.Flatten(),
                nn.Linear(6 * 3 * 3, 5),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    # 5x5 -> 3x3 (stride 2, pad 1); fan-in per output = 4/2 * 9 = 18: 6*9*18 = 972; 54*5 = 270
    assert count_macs(Net(), (4, 5, 5)) == [
        LayerCost("body.0", "conv", 972, None),
        LayerCost("body.2", "linear", 270, None),
    ]


def test_count_macs_leaves_model_untouched():
    ann = tiny()
    ann.train()
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    count_macs(ann, (1, 4, 4))
    assert ann.training
    after = ann.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included


def test_count_macs_refuses_model_without_weight_layers():
    class Pool(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3, 4))

    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        count_macs(Pool(), (1, 4, 4))


def test_synaptic_ops_and_energy_hand_computed():
    rates = {"features.1": 0.25, "features.3": 0.5}
    # T=2: conv2 2 * 0.25 * 864 = 432 SOPs; linear 2 * 0.5 * 36 = 36 SOPs
    assert synaptic_ops(EXPECTED, rates, 2) == {"features.2.0": 432.0, "classifier.1": 36.0}
    est = energy_estimate(EXPECTED, rates, 2)
    assert [(r.name, r.op, r.ops, r.rate) for r in est.layers] == [
        ("features.0.0", "MAC", 576.0, 1.0),
        ("features.2.0", "AC", 432.0, 0.25),
        ("classifier.1", "AC", 36.0, 0.5),
    ]
    assert est.mac_ops == 576.0
    assert est.sops == 468.0
    assert est.energy_pj == pytest.approx(576 * 4.6 + 468 * 0.9)  # 3070.8 pJ
    assert est.ann_macs == 2 * (288 + 864 + 36)
    assert est.ann_energy_pj == pytest.approx(2376 * 4.6)
    assert est.ratio == pytest.approx(3070.8 / 10929.6)
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)


def test_energy_custom_costs_and_silent_network():
    est = energy_estimate(EXPECTED, {"features.1": 0.0, "features.3": 0.0}, 3, e_mac_pj=1.0)
    assert est.sops == 0.0
    assert est.energy_pj == 3 * 288
    assert est.ann_energy_pj == 3 * 1188


@pytest.mark.parametrize(
    ("rates", "steps", "match"),
    [
        ({"features.1": 0.1}, 1, "no firing rate for 'features.3'.*'classifier.1'"),
        ({"features.1": 0.1, "features.3": 1.5}, 1, "must be in \\[0, 1\\]"),
        ({"features.1": 0.1, "features.3": 0.1}, 0, "steps must be >= 1"),
    ],
)
def test_bad_rates_or_steps(rates, steps, match):
    with pytest.raises(ValueError, match=match):
        synaptic_ops(EXPECTED, rates, steps)


def test_sops_equal_event_driven_count_for_linear_fed_by_spikes():
    """A linear layer fed straight by spikes: each spike adds out_features weights, so the
    measured rate x T x MACs equals the exact event-driven count."""
    snn = convert_to_snn(tiny(plan=(4,), threshold=0.5)).eval()
    torch.manual_seed(1)
    x = torch.rand(5, 2, 1, 4, 4) * 2.0  # T=5, B=2
    seen = []
    hook = snn.classifier[1].register_forward_hook(
        lambda m, inputs, out: seen.append(int(torch.count_nonzero(inputs[0])) * m.out_features)
    )
    with FiringRateMonitor(snn) as monitor, torch.no_grad():
        reset_states(snn)
        snn(x)
    hook.remove()
    rates = monitor.rates()
    assert 0.0 < rates["features.1"] < 1.0
    sops = synaptic_ops(count_macs(snn, (1, 4, 4)), rates, 5)
    assert sops["classifier.1"] == pytest.approx(seen[0] / 2)  # per sample
    assert math.isfinite(sops["classifier.1"])


def test_count_macs_matches_spikingjelly_mac_counter():
    op_counter = pytest.importorskip("spikingjelly.activation_based.op_counter")
    ann = tiny(threshold=3.0).eval()  # QCFS levels of 3/8: not mistaken for binary spikes
    counter = op_counter.MACCounter()
    torch.manual_seed(2)
    with op_counter.DispatchCounterMode([counter]), torch.no_grad():
        ann(torch.rand(1, 1, 1, 4, 4) * 10.0)
    counts = counter.get_counts()
    for cost in count_macs(ann, (1, 4, 4)):
        assert sum(counts[f"FrameNet.{cost.name}"].values()) == cost.macs
