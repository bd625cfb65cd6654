"""Statistics of accuracy reports against hand-computed / published values."""

import math

import numpy as np
import pytest

from hsd.bench.stats import mcnemar_exact, paired_bootstrap_diff, wilson_interval
from hsd.errors import HSDError


def test_wilson_known_values():
    # Newcombe (1998), example 81/263: Wilson 95 % interval 0.2553 .. 0.3662
    lo, hi = wilson_interval(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4)
    assert hi == pytest.approx(0.3662, abs=1e-4)
    # 0 of 10: lower bound 0, upper bound z^2 / (n + z^2)
    lo, hi = wilson_interval(0, 10)
    z2 = 1.959963984540054**2
    assert lo == 0.0
    assert hi == pytest.approx(z2 / (10 + z2), rel=1e-9)


def test_wilson_rejects_bad_counts():
    with pytest.raises(HSDError):
        wilson_interval(5, 0)
    with pytest.raises(HSDError):
        wilson_interval(11, 10)


def test_mcnemar_exact_hand_computed():
    # b = 1 (only A right), c = 5 (only B right): p = 2 * (C(6,0)+C(6,1)) / 64 = 14/64
    a = np.array([1, 0, 0, 0, 0, 0, 1, 1], dtype=bool)
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    r = mcnemar_exact(a, b)
    assert (r["b"], r["c"]) == (1, 5)
    assert r["p"] == pytest.approx(14 / 64)
    # no disagreements -> p = 1; symmetric b = c -> p capped at 1
    assert mcnemar_exact(a, a)["p"] == 1.0
    assert mcnemar_exact(np.array([1, 0], bool), np.array([0, 1], bool))["p"] == 1.0
    # 0 vs 10 discordant: p = 2 / 2^10
    r = mcnemar_exact(np.zeros(10, bool), np.ones(10, bool))
    assert r["p"] == pytest.approx(2 / 1024)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert r["p"] == pytest.approx(scipy_stats.binomtest(0, 10, 0.5).pvalue)


def test_paired_bootstrap_diff():
    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.6
    a = b | (rng.random(400) < 0.5)  # A is right wherever B is, and more often
    r = paired_bootstrap_diff(a, b, n_boot=2000, seed=0)
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    assert r["low"] > 0 and r["excludes_zero"]
    same = paired_bootstrap_diff(a, a, n_boot=200)
    assert same["diff"] == 0.0 and not same["excludes_zero"]
    assert math.isclose(same["low"], 0.0) and math.isclose(same["high"], 0.0)
