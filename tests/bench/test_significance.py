"""Intervals and significance marks in the accuracy reports, on hand-made outcomes."""

import re

import numpy as np
import pytest

from hsd.bench.significance import (
    compare_at,
    interval_cell,
    interval_table,
    noise_sentence,
    table_footer,
)
from hsd.bench.stats import mcnemar_exact, wilson_interval
from hsd.demo import closing_line, demo_table


def _entry(label, correct_by_t, trained=2):
    return {
        "label": label,
        "trained_steps": trained,
        "accuracy": {t: float(np.mean(c)) for t, c in correct_by_t.items()},
        "latency_ms": {t: 10.0 * int(t) for t in correct_by_t},
        "correct": {t: list(map(int, c)) for t, c in correct_by_t.items()},
    }


def _outcomes(right, total=100, shift=0):
    """``right`` correct of ``total``: ones at positions shift..shift+right-1 (mod total)."""
    c = np.zeros(total, dtype=int)
    c[(np.arange(right) + shift) % total] = 1
    return c


def _methods(hsd_right, other_right, total=100):
    return {
        "teacher": _entry("teacher", {"1": _outcomes(90, total), "2": _outcomes(95, total)}, 10),
        "hsd": _entry(
            "HSD (step-wise KD)", {"1": _outcomes(hsd_right, total), "2": _outcomes(95, total)}
        ),
        "finetune_ce": _entry(
            "fine-tune, CE only",
            {"1": _outcomes(other_right, total), "2": _outcomes(95, total)},
        ),
    }


def test_cells_are_wilson_intervals_of_the_counts():
    for right, total in ((173, 179), (0, 20), (20, 20), (57, 100)):
        low, high = wilson_interval(right, total)
        assert interval_cell(right / total, total) == (
            f"{100 * right / total:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
        )
    assert interval_cell(173 / 179, 179) == "96.6 [92.9, 98.5]"
    table = interval_table(_methods(80, 80), highlight=1)
    low, high = wilson_interval(80, 100)
    assert f"80.0 [{100 * low:.1f}, {100 * high:.1f}] (ref)" in table
    cells = re.findall(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", table)
    assert len(cells) == 6  # every accuracy of every method at every T carries its interval
    assert "**T=1**" in table and "| T=2 |" in table and "| 10 ms |" in table


def test_clearly_better_method_is_marked_and_a_tie_is_not():
    better = _methods(hsd_right=95, other_right=60)  # HSD right on 35 more, wrong on none more
    marks = compare_at(better, 1)
    assert marks["finetune_ce"]["p"] == [
        mcnemar_exact(better["finetune_ce"]["correct"]["1"], better["hsd"]["correct"]["1"])["p"]
    ]
    assert marks["finetune_ce"]["significant"] and marks["finetune_ce"]["diff"] < 0
    table = interval_table(better, highlight=1)
    row = next(line for line in table.splitlines() if line.startswith("| fine-tune, CE only"))
    assert row.split("|")[3].strip().endswith("*")
    assert not row.split("|")[4].strip().endswith("*")  # T=2 is not the highlighted T
    sentence = noise_sentence(better, 1)
    assert "significantly below HSD (step-wise KD): fine-tune, CE only" in sentence
    assert sentence.startswith("With 100 test recordings")

    tie = _methods(hsd_right=80, other_right=80)
    tie["finetune_ce"]["correct"]["1"] = list(map(int, _outcomes(80, shift=10)))  # 10 vs 10
    assert compare_at(tie, 1)["finetune_ce"]["p"] == [1.0]
    assert not compare_at(tie, 1)["finetune_ce"]["significant"]
    rows = interval_table(tie, highlight=1).splitlines()
    assert not next(r for r in rows if r.startswith("| fine-tune")).split("|")[3].strip()[-1] == "*"
    # the teacher, right on 10 more recordings than HSD and wrong on none more, is marked
    assert next(r for r in rows if r.startswith("| teacher")).split("|")[3].strip()[-1] == "*"
    assert "significantly above it: teacher" in noise_sentence(tie, 1)
    del tie["teacher"]
    assert "none of the T=1 differences from HSD (step-wise KD) is significant" in (
        noise_sentence(tie, 1)
    )
    assert "exact two-sided McNemar" in table_footer(tie, 1)


def test_several_seeds_mark_only_what_every_seed_shows():
    clear = _methods(95, 60)
    split = _methods(95, 95)  # second seed: no difference
    assert compare_at([clear, clear], 1)["finetune_ce"]["significant"]
    mixed = compare_at([clear, split], 1)["finetune_ce"]
    assert not mixed["significant"] and len(mixed["p"]) == 2
    assert mixed["diff"] == pytest.approx((-0.35 + 0.0) / 2)
    table = interval_table(
        [clear, split], highlight=1, spread={"hsd": {"1": 0.0}, "finetune_ce": {"1": 0.175}}
    )
    assert "77.5 ± 17.5 [" in table


def test_demo_table_and_closing_line():
    results = {"settings": {"distill_steps": 1}, "methods": _methods(95, 60)}
    table = demo_table(results)
    assert "**T=1**" in table and "McNemar" in table
    line = closing_line(results)
    assert line.startswith("With 100 test recordings") and line.endswith(
        "(one training seed, one split)."
    )
