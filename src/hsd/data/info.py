"""``hsd data info`` and ``hsd data show``: what a dataset holds, and one sample drawn as frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hsd.data.base import EventDataset
from hsd.data.registry import get_dataset
from hsd.errors import DatasetError
from hsd.events.frames import FrameSpec

__all__ = ["format_summary", "show_sample", "summarize"]

MAX_MEASURED = 200


def _event_counts(dataset: EventDataset, indices: np.ndarray) -> np.ndarray:
    counts = getattr(dataset, "event_counts", None)
    if counts is not None:
        return np.asarray(counts())[indices]
    if dataset.kind == "frames":
        return np.array([int(dataset.load_frames(int(i)).sum()) for i in indices])
    return np.array([len(dataset.load_events(int(i))) for i in indices])


def summarize(
    name: str, root: str | Path | None, *, max_measured: int = MAX_MEASURED, seed: int = 0
) -> dict[str, Any]:
    """JSON-ready description of a dataset: sensor size, classes, samples per split and class,
    and events per sample (min/median/max). Events are counted on every sample, or on
    ``max_measured`` samples drawn with ``seed`` when the dataset is larger (the result says
    so); for stored frames the "events" are the frames' total counts."""
    dataset = get_dataset(name, root)
    splits = ("train", "test") if dataset.has_official_split else ("all",)
    per_class: dict[str, dict[str, int]] = {c: dict.fromkeys(splits, 0) for c in dataset.classes}
    for s in dataset.samples:
        per_class[dataset.classes[s.label]][s.split or "all"] += 1
    per_split = {sp: sum(c[sp] for c in per_class.values()) for sp in splits}
    n = len(dataset)
    every = n <= max_measured or getattr(dataset, "event_counts", None) is not None
    if every:
        measured = np.arange(n)
    else:
        measured = np.sort(np.random.default_rng(seed).choice(n, max_measured, replace=False))
    dataset.prepare(progress=False)
    counts = _event_counts(dataset, measured)
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "emulated": dataset.emulated,
        "description": dataset.description,
        "kind": dataset.kind,
        "sensor_size": list(dataset.sensor_size),
        "classes": list(dataset.classes),
        "num_samples": n,
        "official_split": dataset.has_official_split,
        "samples_per_split": per_split,
        "samples_per_class": per_class,
        "events_per_sample": {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
            "measured_on": len(measured),
            "sampled": not every,
            "seed": None if every else seed,
        },
        "published_at": dataset.published_at,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few lines of text, one line per class."""
    width, height = summary["sensor_size"]
    splits = list(summary["samples_per_split"])
    ev = summary["events_per_sample"]
    measured = (
        f"all {ev['measured_on']} samples"
        if not ev["sampled"]
        else f"{ev['measured_on']} samples drawn with seed {ev['seed']}"
    )
    split_text = ", ".join(f"{k} {v}" for k, v in summary["samples_per_split"].items())
    official = "official split" if summary["official_split"] else "no official split"
    unit = "counts in stored frames" if summary["kind"] == "frames" else "events"
    lines = [
        f"{summary['dataset']}: {summary['description']}",
        f"root: {summary['root']}",
        f"sensor: {width}x{height} (width x height), {len(summary['classes'])} classes",
        f"samples: {summary['num_samples']} ({split_text}; {official})",
        f"{unit} per sample: min {ev['min']}, median {ev['median']:g}, max {ev['max']} "
        f"(on {measured})",
        "per class: " + " / ".join(splits),
    ]
    name_width = max(len(c) for c in summary["classes"])
    for cls, counts in summary["samples_per_class"].items():
        lines.append(f"  {cls:<{name_width}}  " + " / ".join(str(counts[s]) for s in splits))
    return "\n".join(lines)


def sample_index(dataset, index: int, split: str | None = None) -> tuple[int, str]:
    """Position in ``dataset.samples`` of sample ``index`` of ``split``, and the split used.

    ``split``: "train" / "test" (official splits; "train" is the default when the dataset has
    them) or "all" (the dataset's order; the default otherwise). Raises
    :class:`~hsd.errors.DatasetError` for an index outside the split or a train/test split of
    a dataset without an official split.
    """
    if split is None:
        split = "train" if dataset.has_official_split else "all"
    if split == "all":
        chosen = list(range(len(dataset)))
    elif not dataset.has_official_split:
        raise DatasetError(
            f"{dataset.name}: has no official {split} split (its split is made per run); "
            "use --split all"
        )
    else:
        chosen = [i for i, s in enumerate(dataset.samples) if s.split == split]
    if not 0 <= index < len(chosen):
        raise DatasetError(
            f"{dataset.name}: index {index} is outside [0, {len(chosen)}) (split {split})"
        )
    return chosen[index], split


def show_sample(
    name: str,
    root: str | Path | None,
    index: int,
    out_png: str | Path,
    n_frames: int = 10,
    split: str | None = None,
) -> Path:
    """Draw sample ``index`` of ``split`` as one row of frames into ``out_png``, with a legend
    (ON events, brightness up: red; OFF events, brightness down: blue).

    ``split``: "train" or "test" (the official split; default "train" when the dataset has
    one) or "all" (every sample in the dataset's order; the default otherwise). A dataset
    without an official split has only "all". Event datasets are integrated into ``n_frames``
    frames of equal event count; stored frames (sj-frames) are drawn as stored. The title names
    the class, split, key and number of events.
    """
    from matplotlib.figure import Figure

    dataset = get_dataset(name, root)
    index, split = sample_index(dataset, index, split)
    sample = dataset.samples[index]
    dataset.prepare(progress=False)
    if dataset.kind == "frames":
        frames = np.asarray(dataset.load_frames(index), dtype=np.float64)
        what = f"{int(frames.sum())} counts"
    else:
        events = dataset.load_events(index)
        frames = FrameSpec(n_frames=n_frames).apply(events).astype(np.float64)
        what = f"{len(events)} events, {events.duration_us / 1000:.0f} ms"
    scale = max(float(frames.max()), 1.0)
    n = frames.shape[0]
    fig = Figure(figsize=(1.6 * n, 2.1), dpi=100)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for i, ax in enumerate(axes):
        off = frames[i, 0] / scale
        on = frames[i, 1] / scale if frames.shape[1] > 1 else np.zeros_like(off)
        ax.imshow(np.stack([on, np.zeros_like(on), off], axis=-1), interpolation="nearest")
        ax.set_title(f"frame {i + 1}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(
        f"{dataset.name} ({split}): class {dataset.classes[sample.label]} | {sample.key} | {what}",
        fontsize=9,
    )
    legend = "red: ON events (brightness up)   blue: OFF events (brightness down)"
    if frames.shape[1] == 1:
        legend = "blue: events (one channel)"
    fig.text(0.5, 0.02, legend, ha="center", fontsize=8)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor="white", format="png")  # exactly at out, whatever its suffix
    return out
