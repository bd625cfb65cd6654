"""Firing-rate monitor: exact spike counts on a hand-computed neuron, names, lifecycle."""

import pytest
import torch
from torch import nn

from hsd.models import QCFS, DemoNet, FiringRateMonitor, convert_to_snn, reset_states


def _one_layer() -> nn.Module:
    return convert_to_snn(nn.Sequential(QCFS(levels=4, init_threshold=1.0)))


def test_rate_of_a_hand_computed_neuron():
    # lam = 1, v0 = 0.5, constant input 0.5: v = 1.0 (spike -> 0), 0.5, 1.0 (spike), 0.5
    snn = _one_layer()
    x = torch.full((4, 3, 5), 0.5)  # T = 4, B = 3, 5 neurons
    with FiringRateMonitor(snn) as monitor:
        reset_states(snn)
        snn(x)
    assert monitor.rates() == {"0": 0.5}
    assert monitor.neurons() == {"0": 5}
    activity = monitor.activity["0"]
    assert (activity.spikes, activity.neuron_steps, activity.samples, activity.steps) == (
        30.0,
        60.0,
        3,
        4,
    )


def test_records_accumulate_stop_after_exit_and_reset():
    snn = _one_layer()
    monitor = FiringRateMonitor(snn)
    with monitor:
        reset_states(snn)
        snn(torch.full((4, 1, 2), 0.5))  # 4 spikes in 8 slots
        reset_states(snn)
        snn(torch.zeros(4, 1, 2))  # v stays at 0.5: no spike in 8 slots
    assert monitor.rates() == {"0": 0.25}
    assert monitor.activity["0"].samples == 2
    reset_states(snn)
    snn(torch.full((4, 1, 2), 5.0))  # not monitored any more
    assert monitor.rates() == {"0": 0.25}
    monitor.reset()
    assert monitor.rates() == {} and monitor.neurons() == {}


def test_layers_of_a_converted_backbone():
    snn = convert_to_snn(DemoNet(width=0.125, init_threshold=0.5)).eval()
    with FiringRateMonitor(snn) as monitor, torch.no_grad():
        reset_states(snn)
        snn(torch.rand(3, 2, 2, 34, 34) * 3)
    assert set(monitor.rates()) == {"features.1", "features.4", "features.7"}
    assert monitor.neurons() == {
        "features.1": 4 * 34 * 34,
        "features.4": 8 * 17 * 17,
        "features.7": 16 * 8 * 8,
    }
    assert all(0.0 <= r <= 1.0 for r in monitor.rates().values())


def test_an_ann_cannot_be_monitored():
    with pytest.raises(ValueError, match="no spiking neuron layer"):
        FiringRateMonitor(DemoNet(width=0.125))
