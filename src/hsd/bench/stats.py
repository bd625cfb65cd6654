"""Statistics for accuracy reports: intervals and paired tests (pure numpy + stdlib).

Decisions (issue 13, item 4):

* Interval beside an accuracy: the **Wilson score interval** at 95 % (z = 1.959964).
  It needs only the pooled count of correct recordings and the count of recordings,
  stays inside [0, 1] and behaves at accuracies near 0 or 1, where the normal
  approximation does not.
* Pairwise test of two methods on the *same* recordings: the **exact McNemar test**
  (two-sided binomial test on the discordant pairs, b = only A right, c = only B right,
  p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2)). With b + c = 0 the
  two methods never disagree and p = 1.
* Interval of the difference of two accuracies on the same recordings: a **paired
  bootstrap** over recordings (percentile interval, seeded, so reports are reproducible).
"""

from __future__ import annotations

import math

import numpy as np

from hsd.errors import HSDError

Z95 = 1.959963984540054


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / total``.

    Args:
        correct: number of correctly classified recordings (0 <= correct <= total).
        total: number of recordings (> 0).
        z: normal quantile; the default gives a two-sided 95 % interval.

    Returns:
        ``(low, high)``, fractions in [0, 1].
    """
    if total <= 0 or correct < 0 or correct > total:
        raise HSDError(
            f"wilson_interval: need 0 <= correct <= total and total > 0, got {correct}/{total}"
        )
    p = correct / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact two-sided McNemar test of two classifiers on the same recordings.

    Args:
        correct_a, correct_b: boolean arrays ``[R]``, whether each method classified
            recording r correctly (same recordings, same order).

    Returns:
        ``{"b": only A right, "c": only B right, "p": two-sided p-value}``.
    """
    a = np.asarray(correct_a, dtype=bool)
    b_arr = np.asarray(correct_b, dtype=bool)
    if a.shape != b_arr.shape or a.ndim != 1:
        raise HSDError(
            f"mcnemar_exact: need two 1-D arrays of equal length, got {a.shape} and {b_arr.shape}"
        )
    b = int(np.sum(a & ~b_arr))
    c = int(np.sum(~a & b_arr))
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "p": 1.0}
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return {"b": b, "c": c, "p": min(1.0, 2.0 * tail)}


def paired_bootstrap_diff(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Paired bootstrap of ``acc(A) - acc(B)`` over recordings.

    Args:
        correct_a, correct_b: boolean arrays ``[R]`` on the same recordings.
        n_boot: bootstrap resamples.
        seed: RNG seed (reports are reproducible).
        level: interval coverage.

    Returns:
        ``{"diff": observed difference, "low", "high": percentile interval,
        "excludes_zero": bool}``; differences are fractions (not percent).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise HSDError(
            "paired_bootstrap_diff: need two non-empty 1-D arrays of equal length, "
            f"got {a.shape} and {b.shape}"
        )
    d = a.astype(np.float64) - b.astype(np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return {
        "diff": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "excludes_zero": bool(low > 0 or high < 0),
    }
