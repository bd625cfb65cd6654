"""Intervals and significance marks for accuracy tables (``hsd demo``, ``hsd bench accuracy``).

Every accuracy is printed with its 95 % Wilson interval over the test recordings
(:func:`hsd.bench.stats.wilson_interval`), e.g. ``96.6 [93.0, 98.4]``. At one highlighted T,
every method is compared with a reference method (HSD by default) by the exact McNemar test on
the same test recordings (:func:`hsd.bench.stats.mcnemar_exact`); a method whose difference has
p < 0.05 carries a ``*``. With several seeds (same recordings, another training) a method is
marked only when the difference is significant, in the same direction, in every seed.

Input: the ``methods`` mapping of :func:`hsd.bench.runner.evaluate_methods` (one seed) or a list
of them (one per seed, same methods, same test recordings), each entry with ``"correct": {T:
[0/1 per recording]}``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hsd.bench.stats import mcnemar_exact, wilson_interval
from hsd.eval.report import latency_row, method_row, steps_of

__all__ = [
    "ALPHA",
    "compare_at",
    "interval_cell",
    "interval_table",
    "noise_sentence",
    "reference_method",
    "table_footer",
]

ALPHA = 0.05
Runs = Sequence[Mapping[str, Mapping[str, Any]]]


def _runs(methods: Mapping[str, Any] | Runs) -> list[Mapping[str, Mapping[str, Any]]]:
    return [methods] if isinstance(methods, Mapping) else list(methods)


def interval_cell(accuracy: float, total: int) -> str:
    """``"96.6 [93.0, 98.4]"``: accuracy and its 95 % Wilson interval in percent.

    ``accuracy`` is a fraction (a mean over seeds may fall between counts: the interval is the
    one of that proportion over ``total`` recordings)."""
    low, high = wilson_interval(accuracy * total, total)  # type: ignore[arg-type]
    return f"{100 * accuracy:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def reference_method(methods: Mapping[str, Any]) -> str:
    """The method the others are tested against: HSD when present, else the first student."""
    if "hsd" in methods:
        return "hsd"
    return next((m for m in methods if m != "teacher"), next(iter(methods)))


def compare_at(
    methods: Mapping[str, Any] | Runs, t: int | str, reference: str | None = None
) -> dict[str, dict[str, Any]]:
    """Exact McNemar test of every method against ``reference`` at T = ``t``.

    Returns ``{method: {"diff": mean accuracy(method) - accuracy(reference) (fraction), "p":
    [p per seed], "b": [only method right], "c": [only reference right], "significant":
    bool}}`` for every method but the reference; significant = p < :data:`ALPHA` in every seed
    with the same sign of the difference."""
    runs = _runs(methods)
    reference = reference or reference_method(runs[0])
    key = str(t)
    out: dict[str, dict[str, Any]] = {}
    for method in runs[0]:
        if method == reference:
            continue
        tests, diffs = [], []
        for run in runs:
            a = np.asarray(run[method]["correct"][key], dtype=bool)
            r = np.asarray(run[reference]["correct"][key], dtype=bool)
            tests.append(mcnemar_exact(a, r))
            diffs.append(float(a.mean() - r.mean()))
        signs = {np.sign(d) for d in diffs}
        out[method] = {
            "diff": statistics.fmean(diffs),
            "p": [x["p"] for x in tests],
            "b": [x["b"] for x in tests],
            "c": [x["c"] for x in tests],
            "significant": all(x["p"] < ALPHA for x in tests) and len(signs) == 1,
        }
    return out


def interval_table(
    methods: Mapping[str, Any] | Runs,
    *,
    highlight: int | str | None = None,
    reference: str | None = None,
    spread: Mapping[str, Mapping[str, float]] | None = None,
    latency: bool = True,
) -> str:
    """A Markdown table like :func:`hsd.eval.report.accuracy_table`, every cell
    ``acc [low, high]`` (percent, 95 % Wilson interval over the test recordings; with several
    seeds the mean over seeds, ``± std`` when ``spread`` gives it). At T = ``highlight`` the
    column is headed ``**T=..**``, the reference's cell carries ``(ref)`` and every cell whose
    method differs significantly from the reference (:func:`compare_at`) carries ``*``."""
    runs = _runs(methods)
    first = runs[0]
    reference = reference or reference_method(first)
    steps = steps_of(first)
    marks = compare_at(runs, highlight, reference) if highlight is not None else {}
    heads = [f"**T={t}**" if str(t) == str(highlight) else f"T={t}" for t in steps]
    rows = [
        "| method | trained at T | " + " | ".join(heads) + " |",
        "|---|---|" + "---|" * len(steps),
    ]
    for name, entry in first.items():
        cells = []
        for t in steps:
            key = str(t)
            if key not in entry.get("accuracy", {}):
                cells.append("")
                continue
            acc = statistics.fmean(run[name]["accuracy"][key] for run in runs)
            total = len(entry["correct"][key])
            cell = interval_cell(acc, total)
            if spread and name in spread and key in spread[name] and len(runs) > 1:
                cell = cell.replace(" [", f" ± {100 * spread[name][key]:.1f} [", 1)
            if key == str(highlight):
                if name == reference:
                    cell += " (ref)"
                elif marks.get(name, {}).get("significant"):
                    cell += " *"
            cells.append(cell)
        rows.append(method_row(name, entry, cells))
    if latency and (last := latency_row(first, steps)):
        rows.append(last)
    return "\n".join(rows)


def table_footer(
    methods: Mapping[str, Any] | Runs, highlight: int | str, reference: str | None = None
) -> str:
    """What the brackets and the stars of :func:`interval_table` mean, in one paragraph."""
    runs = _runs(methods)
    reference = reference or reference_method(runs[0])
    label = runs[0][reference].get("label", reference)
    seeds = (
        f" in each of the {len(runs)} seeds (same recordings, same direction)"
        if len(runs) > 1
        else ""
    )
    return (
        "Brackets: 95% Wilson interval of the accuracy over the test recordings. "
        f"At **T={highlight}**, `*` marks a method whose accuracy differs from {label} (ref) "
        f"by the exact two-sided McNemar test on the same test recordings, paired, "
        f"p < {ALPHA:g}{seeds}; an unmarked difference is not significant."
    )


def noise_sentence(
    methods: Mapping[str, Any] | Runs, highlight: int | str, reference: str | None = None
) -> str:
    """One sentence on what the table shows and what it does not: the recordings, the width of
    the intervals at T = ``highlight`` and which differences from the reference are significant
    (computed from the numbers, never written beforehand)."""
    runs = _runs(methods)
    first = runs[0]
    reference = reference or reference_method(first)
    key = str(highlight)
    total = len(first[reference]["correct"][key])
    halves = []
    for name in first:
        acc = statistics.fmean(run[name]["accuracy"][key] for run in runs)
        low, high = wilson_interval(acc * total, total)  # type: ignore[arg-type]
        halves.append((high - low) / 2)
    half = 100 * statistics.fmean(halves)
    marks = compare_at(runs, highlight, reference)
    ref_label = first[reference].get("label", reference)
    better = [
        first[m].get("label", m) for m, x in marks.items() if x["significant"] and x["diff"] > 0
    ]
    worse = [
        first[m].get("label", m) for m, x in marks.items() if x["significant"] and x["diff"] < 0
    ]
    if not better and not worse:
        verdict = (
            f"none of the T={highlight} differences from {ref_label} is significant "
            f"(exact McNemar, p >= {ALPHA:g}), so the table does not rank the methods there"
        )
    else:
        parts = []
        if worse:
            parts.append(f"significantly below {ref_label}: {', '.join(worse)}")
        if better:
            parts.append(f"significantly above it: {', '.join(better)}")
        verdict = (
            f"at T={highlight} {'; '.join(parts)} (exact McNemar, p < {ALPHA:g}); every other "
            "difference there is within noise (not significant)"
        )
    return (
        f"With {total} test recordings each accuracy is known to about ±{half:.1f} points "
        "(95% interval); " + verdict + "."
    )
