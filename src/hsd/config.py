"""Run configuration: dataclass defaults, then a YAML recipe, then command-line overrides.

Precedence (lowest first): the dataclass defaults below, a YAML recipe (``--config FILE``), then
``--set section.key=value`` overrides (values parsed as YAML scalars/lists, so ``--set
distill.steps=1`` is an int and ``--set evaluate.steps=[1,2,4]`` a list). Unknown keys are refused
with :class:`~hsd.errors.ConfigError` rather than silently ignored. YAML is always read with
``yaml.safe_load``: a config never constructs Python objects.

The resolved configuration is saved next to every run as ``config.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
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
    "TeacherConfig",
    "apply_overrides",
    "config_to_dict",
    "config_with",
    "load_config",
    "save_config",
]


@dataclass
class AugmentConfig:
    """Train-time augmentation (off at evaluation).

    The defaults suit digits (no flip: a mirrored digit is another symbol); the paper's recipes
    for CIFAR10-DVS and N-Caltech101 set the authors' ``flip_p: 0.5, max_roll: 5``.
    """

    flip_p: float = 0.0
    max_roll: int = 2
    crop: list[int] | None = None


@dataclass
class DataConfig:
    """Which samples, how they become frames, how they are split and batched."""

    dataset: str = "digits-dvs"
    root: str | None = None
    frames: int = 10  # N: frames per sample seen by the teacher
    split_by: str = "count"  # "count" (equal event count, the paper's) or "time"
    size: list[int] | None = None  # [H, W] resize, e.g. [48, 48] for CIFAR10-DVS
    resize: str = "events"  # "events" (count-preserving) or "interpolate" (authors' F.interpolate)
    clip: int | None = None
    seed: int = 0  # split seed
    val_fraction: float = 0.1
    test_fraction: float = 0.1  # only for datasets without an official split
    folds: int = 0  # >0: stratified k-fold cross-validation over all samples
    fold: int = 0  # which fold is the test fold when folds > 0
    batch_size: int = 32
    num_workers: int = 0
    cache_dir: str | None = None
    limit: int = 0  # >0: keep only this many samples per split (smoke tests of recipes)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    name: str = "demo"  # "demo" or "vggsnn"
    width: float = 0.5
    levels: int = 8  # QCFS quantisation levels L
    # Initial QCFS clip lambda. The authors start at 4..8 and train for hundreds of epochs with
    # SGD, where lambda moves far. With Adam on short CPU schedules it barely moves (about lr per
    # step), so a lambda of 8 over BatchNorm outputs of unit scale leaves the converted network
    # almost silent at T = 1 (measured on digits-dvs: 11% at T=1 against 69% with 2.0).
    init_threshold: float = 2.0


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # "sgd", "adam" or "adamw"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    epochs: int = 10
    schedule: str = "cosine"  # "cosine" or "constant"
    grad_clip: float = 0.0  # max gradient norm, 0 = off


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
    """

    steps: int = 2
    protocol: str = "prefix"  # "prefix" (first T of N frames) or "rebin" (stream re-cut into T)
    loss: str = "skd"
    tau: float = 2.0
    alpha: float = 1.0
    reduction: str = "batchmean"
    prefix_weights: str = "uniform"
    optim: OptimConfig = field(
        # lr chosen on digits-dvs' validation split among 1e-4 and 1e-3 (val accuracy at
        # T=1/T=2: 91.3/96.3 and 95.7/98.8 with the same teacher)
        default_factory=lambda: OptimConfig(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=5)
    )


@dataclass
class BaselineConfig:
    """A spiking network of the same shape trained from scratch (surrogate gradients, BPTT)."""

    steps: int = 2
    protocol: str = "prefix"
    loss: str = "ce"  # "ce" on the mean output, or "tet"
    tet_lamb: float = 1e-3
    threshold: float = 1.0  # initial firing threshold of the from-scratch network
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class EvalConfig:
    steps: list[int] = field(default_factory=lambda: [1, 2, 4, 10])
    protocol: str = "prefix"
    batch_size: int = 256


@dataclass
class Config:
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0  # training seed (initialisation, shuffling, augmentation)
    device: str = "auto"  # "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1"...
    threads: int = 0  # torch CPU threads, 0 = torch's default
    progress: bool = True
    deterministic: bool = False  # torch.use_deterministic_algorithms: bit-exact reruns/resumes
    amp: str = "none"  # mixed precision on CUDA: "none", "bf16" or "fp16" (with a GradScaler)
    sync_bn: bool = False  # SyncBatchNorm across processes under torchrun (CUDA only)
    checkpoint_every_steps: int = 0  # also write last.pt every this many steps (0 = per epoch)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> Config:
        """Refuse values that would fail later with an obscure error; returns ``self``."""
        _check(self.amp in ("none", "bf16", "fp16"), "amp must be 'none', 'bf16' or 'fp16'")
        _check(self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0")
        d = self.data
        _check(d.frames >= 1, "data.frames must be >= 1")
        _check(d.split_by in ("count", "time"), "data.split_by must be 'count' or 'time'")
        _check(d.resize in ("events", "interpolate"), "data.resize must be 'events'/'interpolate'")
        _check(0 <= d.val_fraction < 1, "data.val_fraction must be in [0, 1)")
        _check(0 < d.test_fraction < 1, "data.test_fraction must be in (0, 1)")
        _check(d.folds == 0 or d.folds >= 2, "data.folds must be 0 (off) or >= 2")
        _check(d.folds == 0 or 0 <= d.fold < d.folds, "data.fold must be in [0, data.folds)")
        _check(d.batch_size >= 1, "data.batch_size must be >= 1")
        _check(d.size is None or len(d.size) == 2, "data.size must be [H, W]")
        _check(self.model.levels >= 1, "model.levels must be >= 1")
        _check(self.model.init_threshold > 0, "model.init_threshold must be > 0")
        for stage in ("distill", "baseline"):
            s = getattr(self, stage)
            _check(s.steps >= 1, f"{stage}.steps must be >= 1")
            _check(s.protocol in ("prefix", "rebin"), f"{stage}.protocol must be prefix/rebin")
            _check(
                s.protocol == "rebin" or s.steps <= d.frames,
                f"{stage}.steps ({s.steps}) cannot exceed data.frames ({d.frames}) with the "
                "prefix protocol",
            )
        _check(
            self.distill.loss in ("skd", "kd_mean", "anytime", "ce", "tet"),
            "distill.loss must be skd, kd_mean, anytime, ce or tet",
        )
        _check(self.distill.reduction in ("batchmean", "mean"), "distill.reduction unknown")
        _check(self.distill.tau > 0, "distill.tau must be > 0")
        _check(
            self.distill.prefix_weights in ("uniform", "harmonic"),
            "distill.prefix_weights must be 'uniform' or 'harmonic'",
        )
        _check(self.baseline.loss in ("ce", "tet"), "baseline.loss must be 'ce' or 'tet'")
        _check(self.baseline.threshold > 0, "baseline.threshold must be > 0")
        _check(self.evaluate.protocol in ("prefix", "rebin"), "evaluate.protocol unknown")
        _check(
            bool(self.evaluate.steps) and all(int(t) >= 1 for t in self.evaluate.steps),
            "evaluate.steps must be a non-empty list of positive integers",
        )
        for stage in ("teacher", "distill", "baseline"):
            o = getattr(self, stage).optim
            _check(o.optimizer in ("sgd", "adam", "adamw"), f"{stage}.optim.optimizer unknown")
            _check(o.schedule in ("cosine", "constant"), f"{stage}.optim.schedule unknown")
            _check(o.lr > 0 and o.epochs >= 0, f"{stage}.optim: lr must be > 0, epochs >= 0")
        return self


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _merge(obj: Any, values: dict[str, Any], where: str) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key '{where}{key}' (known: {', '.join(sorted(known))})"
            )
        current = getattr(obj, key)
        if is_dataclass(current):
            _merge(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, _coerce(current, value, f"{where}{key}"))


def _coerce(current: Any, value: Any, name: str) -> Any:
    """Keep the declared scalar type: ints for int fields, floats for float fields."""
    if value is None or current is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true/false, got {value!r}")
        return value
    if isinstance(current, int) and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if isinstance(current, str) and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    if isinstance(current, list) and not isinstance(value, list):
        raise ConfigError(f"{name} must be a list, got {value!r}")
    return value


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (values parsed with ``yaml.safe_load``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        dotted, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{item}': value is not valid YAML ({exc})") from None
        nested: Any = value
        for part in reversed(dotted.strip().split(".")):
            nested = {part: nested}
        _merge(cfg, nested, "")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``; validated."""
    cfg = Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        _merge(cfg, values, "")
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
        target = out
        for part in path:
            target = getattr(target, part)
        if not hasattr(target, last):
            raise ConfigError(f"unknown config key {dotted.replace('__', '.')!r}")
        setattr(target, last, value)
    return out.validate()


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
