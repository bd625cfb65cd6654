"""Run configuration: dataclass defaults, then a YAML recipe, then command-line overrides.

Precedence (lowest first): the dataclass defaults below, a YAML recipe (``--config FILE``), then
``--set section.key=value`` overrides (values parsed as YAML scalars/lists, so ``--set
distill.steps=1`` is an int and ``--set evaluate.steps=[1,2,4]`` a list). YAML is always read with
``yaml.safe_load`` semantics: a config never constructs Python objects.

**The one validation layer.** Every key is declared once, in its dataclass, with :func:`setting`;
its type comes from the annotation and its range from the arguments::

    @dataclass
    class DataConfig:
        workers: int = setting(0, min=0, max=256, doc="loader processes, 0 = in-process")
        root: str | None = setting(None, nonempty=True, doc="dataset folder")   # None allowed
        size: list[int] | None = setting(None, length=2, min=1, max=4096)      # list items ranged

* types: ``bool``, ``int``, ``float``, ``str``, ``list[int]``, ``list[float]``, ``list[str]``,
  each optionally ``| None``. Only keys annotated ``| None`` accept ``null``;
* ``int``: whole numbers only (``2.0`` is taken as 2, ``2.5`` is refused, never truncated, and
  ``true`` is not a number); ``float``: always finite (``.nan``/``.inf`` refused);
* ``min``/``max`` (inclusive; ``min_open``/``max_open`` make them exclusive) apply to numbers and to
  the items of a list; ``length`` / ``nonempty`` to lists and strings; ``choices`` to strings and
  numbers (a near miss is answered with the nearest valid name); ``pattern`` is a regular
  expression a string must match in full, described by ``what`` in the message.
* rules between keys (``distill.steps <= data.frames``) go in :meth:`Config.validate`.

Unknown keys and keys written twice in one YAML mapping are refused with the nearest valid name
(:mod:`difflib`). Every fault is a :class:`~hsd.errors.ConfigError` whose message starts with the
key (or the file), so the CLI prints ``hsd: error: data.limit: must be >= 0, got -1``. Every way
of making a config (:func:`load_config`, :func:`config_from_dict`, :func:`config_with`,
:func:`apply_overrides` followed by :meth:`Config.validate`) runs the same checks before any work
starts. :func:`argtype` gives command-line options the same checks (``type=argtype(float,
min=0.001, finite=True)``).

The resolved configuration is saved next to every run as ``config.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from hsd.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "BaselineConfig",
    "Config",
    "DataConfig",
    "DistillConfig",
    "EvalConfig",
    "ModelConfig",
    "OptimConfig",
    "Setting",
    "TeacherConfig",
    "apply_overrides",
    "argtype",
    "config_from_dict",
    "config_to_dict",
    "config_with",
    "iter_settings",
    "load_config",
    "load_yaml",
    "nearest",
    "save_config",
    "setting",
]

_SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit


@dataclass(frozen=True)
class Setting:
    """What one key accepts (see the module docstring); stored in the field's metadata."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[Any, ...] | None = None
    length: int | None = None
    nonempty: bool = False
    pattern: str | None = None
    what: str = ""
    doc: str = ""

    def check(self, kind: Any, value: Any, name: str) -> Any:
        """``value`` converted to ``kind`` (``int``/``float``/... or ``list[int]``...; a
        ``X | None`` kind allows ``None``), or :class:`ConfigError` naming ``name``."""
        base, item, nullable = _parse_kind(kind)
        if value is None:
            if nullable:
                return None
            raise ConfigError(f"{name}: null is not allowed here; {self._expect(base, item)}")
        if base is list:
            if isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, list):
                raise ConfigError(
                    f"{name}: must be a list, got {_show(value)}; {self._expect(base, item)}"
                )
            self._check_size(value, name)
            return [self._scalar(item, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return self._scalar(base, value, name)

    def _scalar(self, base: type, value: Any, name: str) -> Any:
        if base is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: must be true or false, got {_show(value)}")
            return value
        if base is int:
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                fraction = isinstance(value, float) and math.isfinite(value)
                raise ConfigError(
                    f"{name}: must be a whole number, got {_show(value)}"
                    + ("; fractions are refused, not truncated" if fraction else "")
                    + self._range_hint()
                )
            self._check_range(value, name)
            return value
        if base is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{name}: must be a number, got {_show(value)}{self._range_hint()}"
                )
            try:
                value = float(value)
            except OverflowError:  # an int beyond 1.8e308
                raise ConfigError(
                    f"{name}: must be a finite number, got {_show(value)}{self._range_hint()}"
                ) from None
            if not math.isfinite(value):
                raise ConfigError(
                    f"{name}: must be a finite number, got {value}{self._range_hint()}"
                )
            self._check_range(value, name)
            return value
        if base is str:
            if isinstance(value, bool) and {"true", "false"} <= set(self.choices or ()):
                value = "true" if value else "false"  # YAML reads `compile=true` as a bool
            if not isinstance(value, str):
                raise ConfigError(
                    f"{name}: must be a string, got {_show(value)}{self._choice_hint()}"
                )
            if "\x00" in value:
                raise ConfigError(f"{name}: must not contain a NUL character")
            try:  # a lone surrogate ("\ud800" in YAML) names no file and cannot be written
                value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as exc:
                raise ConfigError(
                    f"{name}: holds {value[exc.start]!r}, a lone UTF-16 surrogate that is not text"
                ) from None
            self._check_size(value, name)
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                raise ConfigError(f"{name}: must be {self.what or self.pattern}, got {value!r}")
            self._check_choice(value, name)
            return value
        raise TypeError(f"{name}: unsupported setting type {base!r}")  # a declaration bug

    def _check_size(self, value: Any, name: str) -> None:
        if self.nonempty and len(value) == 0:
            raise ConfigError(f"{name}: must not be empty")
        if self.length is not None and len(value) != self.length:
            raise ConfigError(
                f"{name}: must have exactly {self.length} items, got {len(value)} ({value!r})"
            )

    def _check_range(self, value: float, name: str) -> None:
        self._check_choice(value, name)
        low_bad = self.min is not None and (
            value <= self.min if self.min_open else value < self.min
        )
        high_bad = self.max is not None and (
            value >= self.max if self.max_open else value > self.max
        )
        if low_bad or high_bad:
            raise ConfigError(f"{name}: must be {self._range()}, got {value}")

    def _check_choice(self, value: Any, name: str) -> None:
        if self.choices is None or value in self.choices:
            return
        close = nearest(str(value), [str(c) for c in self.choices])
        raise ConfigError(
            f"{name}: must be one of {', '.join(map(str, self.choices))}, got {value!r}"
            + (f" (did you mean {close!r}?)" if close else "")
        )

    def _range(self) -> str:
        if self.min is not None and self.max is not None:
            low = "(" if self.min_open else "["
            high = ")" if self.max_open else "]"
            return f"in {low}{_num(self.min)}, {_num(self.max)}{high}"
        if self.min is not None:
            return f"{'>' if self.min_open else '>='} {_num(self.min)}"
        if self.max is not None:
            return f"{'<' if self.max_open else '<='} {_num(self.max)}"
        return "valid"

    def _range_hint(self) -> str:
        if self.choices is not None:
            return self._choice_hint()
        return "" if self.min is None and self.max is None else f" (allowed: {self._range()})"

    def _choice_hint(self) -> str:
        return "" if self.choices is None else f" (one of {', '.join(map(str, self.choices))})"

    def _expect(self, base: type, item: type | None) -> str:
        kind = f"a list of {item.__name__}" if base is list else f"a {base.__name__}"
        extra = self._range_hint()
        return f"give {kind}{extra}" + (f" ({self.doc})" if self.doc else "")


def setting(default: Any = dataclasses.MISSING, *, factory: Any = None, **rules: Any) -> Any:
    """A dataclass field with its :class:`Setting` (type from the annotation, rules here).

    ``factory`` replaces ``default`` for mutable defaults (lists).
    """
    spec = Setting(**{k: tuple(v) if k == "choices" else v for k, v in rules.items()})
    if factory is not None:
        return field(default_factory=factory, metadata={"hsd": spec})
    return field(default=default, metadata={"hsd": spec})


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 4, 60, 60
_REPR.maxlong = 40


def _show(value: Any) -> str:
    """A short ``repr``: bounded in depth and length, so a YAML alias bomb (lists of aliases of
    lists, shared, 10**9 items when written out) or a huge number is never written out."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def nearest(word: str, candidates: Any) -> str | None:
    """The candidate closest to ``word`` (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return found[0] if found else None


_NONE_TYPES = (type(None),)


def _parse_kind(kind: Any) -> tuple[type, type | None, bool]:
    """``int`` -> (int, None, False); ``list[int] | None`` -> (list, int, True)."""
    nullable = False
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a not in _NONE_TYPES]
        nullable = len(args) < len(typing.get_args(kind))
        if len(args) != 1:
            raise TypeError(f"unsupported setting type {kind!r}")
        kind = args[0]
        origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind)
        return list, item, nullable
    return kind, None, nullable


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _field_setting(obj: Any, f: dataclasses.Field) -> tuple[Setting, Any]:
    return f.metadata.get("hsd", Setting()), _hints(type(obj))[f.name]


def argtype(kind: type, *, name: str = "", **rules: Any):
    """An ``argparse`` ``type=`` callable that parses ``kind`` and checks it like a config key.

    ``argtype(int, min=1)`` refuses ``0``, ``2.5`` and ``x``; ``argtype(float, min=0.001)`` refuses
    ``nan`` and ``inf`` (floats are always finite). The message names the option (argparse adds
    ``argument --frame-ms:``).
    """
    import argparse

    spec = Setting(**{k: tuple(v) if k == "choices" else v for k, v in rules.items()})

    def parse(text: str) -> Any:
        value: Any = text
        if kind in (int, float):
            try:
                value = float(text) if kind is float else _parse_int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"must be {'a whole number' if kind is int else 'a number'}, got {text!r}"
                    + spec._range_hint()
                ) from None
        try:
            return spec.check(kind, value, name or "value")
        except ConfigError as exc:
            message = str(exc)
            raise argparse.ArgumentTypeError(
                message.split(": ", 1)[1] if not name else message
            ) from None

    parse.__name__ = kind.__name__  # argparse's "invalid <name> value" fallback
    return parse


def _parse_int(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)  # "2.0" -> 2 (checked), "2.5" refused by the check as a fraction
        return value


_PROTOCOLS = ("prefix", "rebin")
_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("cosine", "constant")


@dataclass
class AugmentConfig:
    """Train-time augmentation (off at evaluation).

    The defaults suit digits (no flip: a mirrored digit is another symbol); the paper's recipes
    for CIFAR10-DVS and N-Caltech101 set the authors' ``flip_p: 0.5, max_roll: 5``.
    """

    flip_p: float = setting(0.0, min=0.0, max=1.0, doc="probability of a horizontal flip")
    max_roll: int = setting(2, min=0, max=4096, doc="largest circular shift in pixels, 0 = off")
    crop: list[int] | None = setting(None, length=2, min=1, max=4096, doc="[h, w] random crop")


@dataclass
class DataConfig:
    """Which samples, how they become frames, how they are split and batched."""

    dataset: str = setting("digits-dvs", nonempty=True)
    root: str | None = setting(None, nonempty=True)
    # N: frames per sample seen by the teacher
    frames: int = setting(10, min=1, max=100_000)
    # "count" (equal event count, the paper's) or "time"
    split_by: str = setting("count", choices=("count", "time"))
    # with split_by "time": every frame lasts this long from the first event (null = the
    # recording divided into N equal parts); events after N frames are left out
    frame_us: int | None = setting(
        None, min=1, max=10**12, doc="fixed frame duration in microseconds, null = N equal parts"
    )
    # [H, W] resize, e.g. [48, 48] for CIFAR10-DVS
    size: list[int] | None = setting(None, length=2, min=1, max=4096, doc="[H, W] in pixels")
    # "events" (count-preserving) or "interpolate" (authors' F.interpolate)
    resize: str = setting("events", choices=("events", "interpolate"))
    clip: int | None = setting(None, min=1, doc="largest count per pixel and frame, null = none")
    seed: int = setting(0, min=0, max=_SEED_MAX)  # split seed
    val_fraction: float = setting(0.1, min=0.0, max=1.0, max_open=True)
    # only for datasets without an official split
    test_fraction: float = setting(0.1, min=0.0, max=1.0, min_open=True, max_open=True)
    # >0: stratified k-fold cross-validation over all samples
    folds: int = setting(0, min=0, max=1000, doc="0 = off, else >= 2")
    fold: int = setting(0, min=0)  # which fold is the test fold when folds > 0
    batch_size: int = setting(32, min=1, max=1 << 20)
    num_workers: int = setting(0, min=0, max=256, doc="feed threads ahead, 0 = in the loop")
    # frame-cache build processes; null = the cores available (os.sched_getaffinity)
    workers: int | None = setting(
        None, min=0, max=1024, doc="cache-build processes, null = all cores"
    )
    cache_dir: str | None = setting(None, nonempty=True)
    # >0: keep only this many samples per split (smoke tests of recipes)
    limit: int = setting(0, min=0, doc="samples per split, 0 = all")
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    name: str = setting("demo", nonempty=True)  # registered name or "pkg.mod:make_net"
    width: float = setting(0.5, min=0.0, min_open=True, max=64.0, doc="channel multiplier")
    levels: int = setting(8, min=1, max=4096)  # QCFS quantisation levels L
    # Initial QCFS clip lambda. The authors start at 4..8 and train for hundreds of epochs with
    # SGD, where lambda moves far. With Adam on short CPU schedules it barely moves (about lr per
    # step), so a lambda of 8 over BatchNorm outputs of unit scale leaves the converted network
    # almost silent at T = 1 (measured on digits-dvs: 11% at T=1 against 69% with 2.0).
    init_threshold: float = setting(2.0, min=0.0, min_open=True)


@dataclass
class OptimConfig:
    optimizer: str = setting("adam", choices=_OPTIMIZERS)
    lr: float = setting(1e-3, min=0.0, min_open=True)
    weight_decay: float = setting(5e-4, min=0.0, max=1.0)
    momentum: float = setting(0.9, min=0.0, max=1.0, max_open=True)
    epochs: int = setting(10, min=0, max=1_000_000)
    schedule: str = setting("cosine", choices=_SCHEDULES)
    # max gradient norm, 0 = off
    grad_clip: float = setting(0.0, min=0.0, doc="max gradient norm, 0 = off")


@dataclass
class TeacherConfig:
    """Stage 1: the QCFS ANN trained on all N frames (cross-entropy of the frame-mean logits)."""

    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class DistillConfig:
    """Stage 3: fine-tune the converted SNN at ``steps`` time steps.

    ``loss``: "skd" (step-wise distillation, HSD), "kd_mean" (KD on the mean output only), "ce"
    (cross-entropy fine-tuning only), "tet", or "anytime" (SKD with the cross-entropy on every
    prefix's running mean: a network good at every T, for early exit; use ``steps`` = N).
    ``reduction``: "batchmean" (correct KL) or "mean"
    (the authors' ``KLDivLoss()`` default, which also divides by the number of classes).
    ``prefix_weights`` (loss "anytime" only): how the prefixes' cross-entropies are weighted,
    "uniform" or "harmonic" (1/k: the short prefixes weigh most).
    ``teacher_target``: what step t is distilled from: "stream" (the teacher's mean logits over
    all N frames, the paper's HSD) or "prefix" (its mean over the first t + 1 frames, the same
    events the student has seen by then; protocol "prefix" only).
    ``self_kd`` (loss "anytime" only): weight of a self-distillation term pulling the running
    mean after each prefix k < T towards the network's own (detached) running mean after all T
    steps; 0 (default) = off.
    """

    steps: int = setting(2, min=1, max=100_000)
    # "prefix" (first T of N frames) or "rebin" (stream re-cut into T)
    protocol: str = setting("prefix", choices=_PROTOCOLS)
    loss: str = setting("skd", choices=("skd", "kd_mean", "anytime", "ce", "tet"))
    tau: float = setting(2.0, min=0.0, min_open=True)
    alpha: float = setting(1.0, min=0.0)
    reduction: str = setting("batchmean", choices=("batchmean", "mean"))
    prefix_weights: str = setting("uniform", choices=("uniform", "harmonic"))
    teacher_target: str = setting("stream", choices=("stream", "prefix"))
    self_kd: float = setting(0.0, min=0.0)
    optim: OptimConfig = field(
        # lr chosen on digits-dvs' validation split among 1e-4 and 1e-3 (val accuracy at
        # T=1/T=2: 91.3/96.3 and 95.7/98.8 with the same teacher)
        default_factory=lambda: OptimConfig(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=5)
    )


@dataclass
class BaselineConfig:
    """A spiking network of the same shape trained from scratch (surrogate gradients, BPTT)."""

    steps: int = setting(2, min=1, max=100_000)
    protocol: str = setting("prefix", choices=_PROTOCOLS)
    loss: str = setting("ce", choices=("ce", "tet"))  # "ce" on the mean output, or "tet"
    tet_lamb: float = setting(1e-3, min=0.0)
    # initial firing threshold of the from-scratch network
    threshold: float = setting(1.0, min=0.0, min_open=True)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class EvalConfig:
    steps: list[int] = setting(factory=lambda: [1, 2, 4, 10], nonempty=True, min=1, max=100_000)
    protocol: str = setting("prefix", choices=_PROTOCOLS)
    batch_size: int = setting(256, min=1, max=1 << 20)


@dataclass
class LogConfig:
    # also write metrics.jsonl's scalars as TensorBoard events in <run>/tensorboard/
    tensorboard: bool = False


_NAME = r"[^/\\\x00]+"
_DEVICE = r"auto|cpu|mps|cuda(:[0-9]{1,3})?"


@dataclass
class Config:
    name: str = setting("run", pattern=_NAME, what="a name without '/' (it names run folders)")
    out_dir: str = setting("runs", nonempty=True)
    # training seed (initialisation, shuffling, augmentation)
    seed: int = setting(0, min=0, max=_SEED_MAX)
    # "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1"...
    device: str = setting("auto", pattern=_DEVICE, what="'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
    threads: int = setting(0, min=0, max=1024, doc="torch CPU threads, 0 = torch's default")
    # progress bars (drawn only on a terminal); the per-epoch lines are printed either way
    progress: bool = True
    # torch.use_deterministic_algorithms: bit-exact reruns/resumes
    deterministic: bool = False
    # mixed precision on CUDA: "none", "bf16" or "fp16" (with a GradScaler)
    amp: str = setting("none", choices=("none", "bf16", "fp16"))
    sync_bn: bool = False  # SyncBatchNorm across processes under torchrun (CUDA only)
    # torch.compile the networks of the training stages and hsd evaluate: "true", "false" or
    # "auto" (training runs of >= 2000 optimiser steps on CPU/CUDA; see hsd.train.compiled)
    compile: str = setting("auto", choices=("auto", "true", "false"))
    # also write last.pt every this many steps (0 = per epoch)
    checkpoint_every_steps: int = setting(0, min=0)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def validate(self) -> Config:
        """Check every key against its :func:`setting` (type, range, finiteness, nulls), then
        the rules between keys; returns ``self``. Raises :class:`ConfigError` naming the key."""
        _check_all(self, "")
        d = self.data
        _check(d.folds != 1, "data.folds: must be 0 (off) or >= 2, got 1")
        _check(
            d.folds == 0 or d.fold < d.folds,
            f"data.fold: must be in [0, data.folds) = [0, {d.folds}), got {d.fold}",
        )
        _check(
            d.frame_us is None or d.split_by == "time",
            f"data.frame_us: fixed-duration frames ({d.frame_us} us) need data.split_by=time, "
            f"got {d.split_by}",
        )
        for stage in ("distill", "baseline"):
            s = getattr(self, stage)
            _check(
                s.protocol == "rebin" or s.steps <= d.frames,
                f"{stage}.steps: {s.steps} cannot exceed data.frames ({d.frames}) with the "
                "prefix protocol (lower it, raise data.frames, or use protocol rebin)",
            )
        _check(
            self.distill.teacher_target == "stream" or self.distill.protocol == "prefix",
            "distill.teacher_target: 'prefix' needs distill.protocol 'prefix' (with 'rebin' the "
            "student's step t covers other events than the teacher's first t + 1 frames)",
        )
        _check(
            self.distill.self_kd == 0 or self.distill.loss == "anytime",
            f"distill.self_kd: only the 'anytime' loss has a self-distillation term (loss is "
            f"'{self.distill.loss}'); set it to 0",
        )
        if d.size is not None and d.augment.crop is not None:
            _check(
                all(c <= s for c, s in zip(d.augment.crop, d.size, strict=True)),
                f"data.augment.crop: {d.augment.crop} is larger than data.size {d.size}",
            )
        return self


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_all(obj: Any, where: str) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            _check_all(value, f"{where}{f.name}.")
            continue
        spec, kind = _field_setting(obj, f)
        setattr(obj, f.name, spec.check(kind, value, f"{where}{f.name}"))


def iter_settings(obj: Any = None, where: str = "") -> Any:
    """Every key of the configuration: ``(dotted name, Setting, kind, default)`` in order,
    e.g. ``("data.limit", Setting(min=0, ...), int, 0)`` (the fuzz tests walk this)."""
    obj = Config() if obj is None else obj
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from iter_settings(value, f"{where}{f.name}.")
        else:
            spec, kind = _field_setting(obj, f)
            yield f"{where}{f.name}", spec, kind, value


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _unknown_key(obj: Any, key: Any, where: str) -> ConfigError:
    known = [f.name for f in fields(obj)]
    close = nearest(str(key), known)
    hint = f"did you mean '{where}{close}'?" if close else f"known: {', '.join(sorted(known))}"
    return ConfigError(f"{where}{key}: unknown config key ({hint})")


def _merge(obj: Any, values: Any, where: str) -> None:
    if not isinstance(values, dict):
        raise ConfigError(
            f"{where.rstrip('.') or 'config'}: expected a mapping of keys, got {_show(values)}"
        )
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if not isinstance(key, str) or key not in known:
            raise _unknown_key(obj, key, where)
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where}{key}: is a section, not a value; set its keys instead "
                    f"({where}{key}.<key>=..., keys: {', '.join(f.name for f in fields(current))})"
                )
            _merge(current, value, f"{where}{key}.")
        else:
            spec, kind = _field_setting(obj, known[key])
            setattr(obj, key, spec.check(kind, value, f"{where}{key}"))


class _DuplicateKey(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it below
                    continue
                if first is not None:
                    raise _DuplicateKey(
                        f"line {line}: key '{key}' is written twice in one mapping (first at "
                        f"line {first}); keep one"
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: PyYAML (YAML 1.1) reads ``1e-3`` (no dot) as a string.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML ``text`` safely, refusing duplicate keys; errors name ``where``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{where}: not valid YAML ({detail})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        # a tagged scalar the constructor cannot convert: `!!int abc`, `!!bool maybe`,
        # `!!timestamp 2001-13-45`, an integer of more than 4300 digits
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{where}: not valid YAML (a value cannot be read: {detail})") from None


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (values parsed as safe YAML, duplicates refused).

    Types and ranges are checked key by key as they are set; call :meth:`Config.validate`
    afterwards for the rules between keys."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"--set {item}: not of the form key=value (e.g. --set distill.steps=1)"
            )
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(p.strip() for p in parts):
            raise ConfigError(f"--set {item}: '{dotted}' is not a dotted key like distill.steps")
        value = load_yaml(raw, f"--set {dotted.strip()}") if raw.strip() else None
        nested: Any = value
        for part in reversed(parts):
            nested = {part.strip(): nested}
        _merge(cfg, nested, "")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``; validated.

    ``path`` is a YAML file, or the name of a recipe shipped with hsd (``"nmnist"``,
    ``"cifar10dvs-vggsnn.yaml"``; :mod:`hsd.recipes`)."""
    cfg = Config()
    if path is not None:
        from hsd.recipes import resolve_config

        path = resolve_config(path)  # an existing file, else a shipped recipe by name
        if not path.is_file():
            raise ConfigError(f"{path}: not a regular file; --config needs a YAML file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
        values = load_yaml(text, str(path))
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of keys, got {_show(values)}")
        try:
            _merge(cfg, values, "")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    apply_overrides(cfg, overrides or [])
    return cfg.validate()


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :func:`config_to_dict` output (e.g. a saved run)."""
    cfg = Config()
    _merge(cfg, values, "")
    return cfg.validate()


def config_with(cfg: Config, **changes: Any) -> Config:
    """A validated deep copy of ``cfg`` with ``section__key=value`` changes, e.g.
    ``config_with(cfg, distill__loss="anytime", distill__steps=10, seed=1)``."""
    out = copy.deepcopy(cfg)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        nested: Any = value
        for part in reversed([*path, last]):
            nested = {part: nested}
        _merge(out, nested, "")
    return out.validate()


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
