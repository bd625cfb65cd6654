"""Reports: accuracy-against-steps tables (Markdown) and plots (PNG).

Input is the ``methods`` mapping of ``results.json``::

    {"hsd": {"accuracy": {"1": 0.93, "2": 0.95, ...}, "latency_ms": {"1": 31.0, ...},
             "trained_steps": 2, "label": "HSD (step-wise KD)"}, ...}

Accuracies are fractions in [0, 1]; tables print them as percentages with one decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["accuracy_table", "latency_row", "method_row", "plot_accuracy_vs_steps", "steps_of"]


def steps_of(methods: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """Every T any method has an accuracy for, ascending."""
    steps: set[int] = set()
    for result in methods.values():
        steps.update(int(t) for t in result.get("accuracy", {}))
    return sorted(steps)


def method_row(name: str, result: Mapping[str, Any], cells: list[str]) -> str:
    """One table row: the method's label, the T it was trained at ("–" when none), ``cells``."""
    trained = result.get("trained_steps")
    trained = "–" if trained is None else trained
    return f"| {result.get('label', name)} | {trained} | " + " | ".join(cells) + " |"


def latency_row(methods: Mapping[str, Mapping[str, Any]], steps: list[int]) -> str | None:
    """The last row of an accuracy table: the mean event time consumed at each T (ms), from the
    first method that has it; None when none has."""
    lat = next(
        (
            r["latency_ms"]
            for r in methods.values()
            if any(v is not None for v in r.get("latency_ms", {}).values())
        ),
        None,
    )
    if not lat:
        return None
    cells = [f"{lat[str(t)]:.0f} ms" if lat.get(str(t)) is not None else "" for t in steps]
    return "| *event time to decision* | | " + " | ".join(cells) + " |"


def accuracy_table(
    methods: Mapping[str, Mapping[str, Any]],
    *,
    spread: Mapping[str, Mapping[str, float]] | None = None,
    latency: bool = True,
) -> str:
    """A Markdown table, one row per method, one column per number of steps T.

    ``spread``: optional ``{method: {T: std}}`` printed as ``mean ± std`` (cross-validation).
    A last row gives the mean event time consumed at each T (milliseconds) when available.
    """
    steps = steps_of(methods)
    header = "| method | trained at T | " + " | ".join(f"T={t}" for t in steps) + " |"
    rule = "|---|---|" + "---|" * len(steps)
    rows = [header, rule]
    for name, result in methods.items():
        acc = result.get("accuracy", {})
        cells = []
        for t in steps:
            if str(t) not in acc:
                cells.append("")
                continue
            cell = f"{100 * acc[str(t)]:.1f}"
            if spread and name in spread and str(t) in spread[name]:
                cell += f" ± {100 * spread[name][str(t)]:.1f}"
            cells.append(cell)
        rows.append(method_row(name, result, cells))
    if latency and (last := latency_row(methods, steps)):
        rows.append(last)
    return "\n".join(rows)


def plot_accuracy_vs_steps(
    methods: Mapping[str, Mapping[str, Any]],
    out: str | Path,
    *,
    title: str = "Accuracy against time steps",
    reference: tuple[str, float] | None = None,
    spread: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One line per method (accuracy in % against T), optional horizontal reference line
    (e.g. the teacher on all N frames). Writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(8.4, 4.2), dpi=120)
    for name, result in methods.items():
        acc = result.get("accuracy", {})
        steps = sorted(int(t) for t in acc)
        if not steps:
            continue
        values = [100 * acc[str(t)] for t in steps]
        line = ax.plot(steps, values, marker="o", label=result.get("label", name))[0]
        if spread and name in spread:
            err = [100 * spread[name].get(str(t), 0.0) for t in steps]
            ax.fill_between(
                steps,
                [v - e for v, e in zip(values, err, strict=True)],
                [v + e for v, e in zip(values, err, strict=True)],
                color=line.get_color(),
                alpha=0.15,
            )
    if reference is not None:
        ax.axhline(
            100 * reference[1], color="black", linestyle="--", linewidth=1, label=reference[0]
        )
    ax.set_xlabel("time steps T (frames seen by the network)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    # beside the axes, never over the lines (the benchmarks draw up to nine of them)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
