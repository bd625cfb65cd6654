"""The HSD stages as library functions; the CLI and the demo call these and nothing else.

Stages of Hybrid Step-wise Distillation:

1. :func:`train_teacher`: QCFS ANN on all N frames, cross-entropy of the frame-mean logits.
2. :func:`convert_checkpoint`: ANN -> SNN on a copy (the teacher checkpoint is untouched).
3. :func:`distill`: fine-tune the converted SNN at T steps; ``distill.loss`` picks step-wise
   distillation ("skd", HSD), KD on the mean output ("kd_mean"), plain cross-entropy ("ce") or TET.
4. :func:`train_baseline`: the same architecture as a spiking network trained from scratch at T
   steps with surrogate gradients (BPTT), cross-entropy or TET.
5. :func:`evaluate_checkpoint`: accuracy after every requested number of steps T, the event time
   consumed to decide (milliseconds), firing rate per layer.

Model selection uses the validation split only; the test split is evaluated once, at the end.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hsd.config import Config, OptimConfig, config_from_dict, config_to_dict
from hsd.data import Augment, FrameArrays, get_dataset, kfold_manifests, load_frames, make_manifest
from hsd.errors import CheckpointError, ConfigError, HSDError, RunDirError
from hsd.events.frames import FrameSpec
from hsd.models import (
    FiringRateMonitor,
    convert_to_snn,
    create_model,
    is_spiking,
    list_models,
    resolve_model,
)
from hsd.progress import TensorBoardWriter, epoch_line
from hsd.runtime import admit
from hsd.train import distributed as dist
from hsd.train.checkpoint import load_checkpoint, require, save_checkpoint
from hsd.train.compiled import compile_network, wants_compile
from hsd.train.engine import (
    build_optimizer,
    build_scheduler,
    predict_step_logits,
    prefix_accuracy,
    resolve_device,
    set_deterministic,
    train_one_epoch,
)
from hsd.train.feed import FrameFeed
from hsd.train.losses import make_loss
from hsd.train.rundir import RunDir, prepare_run_dir

__all__ = [
    "PreparedData",
    "convert_checkpoint",
    "distill",
    "evaluate_checkpoint",
    "evaluate_model",
    "model_from_checkpoint",
    "prepare_data",
    "train_baseline",
    "train_teacher",
]


# --- data ------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Frames of every sample at N frames, the split (positions into the arrays) and, on demand,
    the same streams re-cut into T frames for the ``rebin`` protocol."""

    cfg: Config
    dataset: Any
    manifest: Any
    arrays: FrameArrays
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    _rebinned: dict[int, FrameArrays] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.dataset.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(P, H, W) of one frame."""
        _, _, p, h, w = self.arrays.frames.shape
        return int(p), int(h), int(w)

    @property
    def frames(self) -> int:
        return int(self.arrays.frames.shape[1])

    def spec(self, n_frames: int) -> FrameSpec:
        """The whole stream in ``n_frames`` frames (``rebin``): ``data.frame_us`` does not apply,
        fixed-duration frames re-cut into T would only be the first T of them."""
        d = self.cfg.data
        return FrameSpec(
            n_frames=n_frames,
            split_by=d.split_by,
            size=None if d.size is None else (int(d.size[0]), int(d.size[1])),
            resize=d.resize,
            clip=d.clip,
        )

    def arrays_for(self, n_frames: int) -> FrameArrays:
        """The streams cut into ``n_frames`` frames (the ``rebin`` protocol), cached on disk."""
        if n_frames == self.frames:
            return self.arrays
        if n_frames not in self._rebinned:
            arrays = load_frames(
                self.dataset,
                self.spec(n_frames),
                cache_dir=self.cfg.data.cache_dir,
                progress=self.cfg.progress,
                workers=self.cfg.data.workers,
            )
            if list(arrays.keys) != list(self.arrays.keys):
                raise RuntimeError("re-binned frame arrays list samples in a different order")
            self._rebinned[n_frames] = arrays
        return self._rebinned[n_frames]

    def split(self, name: str) -> np.ndarray:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def prepare_data(cfg: Config) -> PreparedData:
    """Open the dataset, build the split manifest and load (or build) the cached frames."""
    d = cfg.data
    dataset = get_dataset(d.dataset, d.root)
    if d.folds:
        manifest = kfold_manifests(dataset, k=d.folds, seed=d.seed, val_fraction=d.val_fraction)[
            d.fold
        ]
    else:
        manifest = make_manifest(
            dataset, seed=d.seed, val_fraction=d.val_fraction, test_fraction=d.test_fraction
        )
    spec = FrameSpec(
        n_frames=d.frames,
        split_by=d.split_by,
        size=None if d.size is None else (int(d.size[0]), int(d.size[1])),
        resize=d.resize,
        clip=d.clip,
        frame_us=d.frame_us,
    )
    arrays = load_frames(
        dataset, spec, cache_dir=d.cache_dir, progress=cfg.progress, workers=d.workers
    )
    position = {key: i for i, key in enumerate(arrays.keys)}

    def positions(keys: list[str]) -> np.ndarray:
        idx = np.array([position[k] for k in keys], dtype=np.int64)
        return idx[: d.limit] if d.limit else idx

    return PreparedData(
        cfg,
        dataset,
        manifest,
        arrays,
        positions(manifest.train),
        positions(manifest.val),
        positions(manifest.test),
    )


def _augment(cfg: Config):
    a = cfg.data.augment
    if a.flip_p <= 0 and a.max_roll <= 0 and not a.crop:
        return None
    return Augment(
        flip_p=a.flip_p, max_roll=a.max_roll, crop=None if a.crop is None else tuple(a.crop)
    )


# --- models and checkpoints ------------------------------------------------------------------


def _model_kwargs(cfg: Config, data: PreparedData, init_threshold: float | None = None) -> dict:
    p, h, w = data.input_shape
    if h != w:
        raise ConfigError(f"backbones expect square frames, got {h}x{w}; set data.size")
    return {
        "in_channels": p,
        "num_classes": len(data.classes),
        "input_size": h,
        "width": cfg.model.width,
        "levels": cfg.model.levels,
        "init_threshold": cfg.model.init_threshold if init_threshold is None else init_threshold,
    }


def network_bytes(
    name: str, kwargs: dict, *, batch: int, steps: int, training: bool
) -> tuple[int, int]:
    """Estimated bytes of (weights, activations) of network ``name`` for ``batch`` samples of
    ``steps`` frames: built and run on the ``meta`` device, so nothing is allocated.

    Training counts the weights four times (weights, gradients, two Adam moments) and the
    activations twice (kept for backward, their gradients); inference counts each once.
    """
    with torch.device("meta"):
        shell = create_model(name, **kwargs)
    weights = sum(t.numel() * t.element_size() for t in shell.state_dict().values())
    total = [0]

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * 4

    leaves = [m for m in shell.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        p, side = int(kwargs["in_channels"]), int(kwargs["input_size"])
        with torch.no_grad():
            shell(torch.empty(steps, batch, p, side, side, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return (4 if training else 1) * weights, (2 if training else 1) * total[0]


def _admit_network(
    name: str, kwargs: dict, *, batch: int, steps: int, training: bool, keys: str
) -> None:
    """:func:`hsd.runtime.admit` the network a stage is about to build and run."""
    try:
        weights, activations = network_bytes(
            name, kwargs, batch=batch, steps=steps, training=training
        )
    except (TypeError, ValueError, RuntimeError, HSDError) as exc:
        raise ConfigError(f"model.name={name}: cannot build it with {kwargs} ({exc})") from None
    admit(
        weights + activations,
        f"{keys}: {'training' if training else 'running'} the '{name}' network on batches of "
        f"{batch} x {steps} frames",
        hint="lower the batch size, model.width, data.size or the number of steps",
    )


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the network a checkpoint describes and load its weights.

    The architecture is first built on the ``meta`` device (no memory) to admit its size
    (:func:`hsd.runtime.admit`); an unknown architecture, arguments it does not take, and weights
    of another shape or architecture raise :class:`CheckpointError` naming the checkpoint.
    """
    where = ckpt.get("path", "<checkpoint>")
    spec = ckpt["model"]
    name, kwargs = spec["name"], spec["kwargs"]
    try:
        resolve_model(name)
    except ConfigError as exc:
        raise CheckpointError(
            f"{where}: unknown architecture '{name}' (this hsd knows {', '.join(list_models())}; "
            f"an own network's module must be importable here: {exc})"
        ) from None
    try:
        with torch.device("meta"):
            shell = create_model(name, **kwargs)
    except (TypeError, ValueError, HSDError) as exc:
        raise CheckpointError(
            f"{where}: model.kwargs do not build the '{name}' architecture ({exc})"
        ) from None
    admit(
        2 * sum(t.numel() * t.element_size() for t in shell.state_dict().values()),
        f"{where}: the '{name}' network it describes",
    )
    model = create_model(name, **kwargs)
    if spec["spiking"]:
        model = convert_to_snn(model)
    expected = model.state_dict()
    given = ckpt["state_dict"]
    problems = [f"missing {k}" for k in expected if k not in given]
    problems += [f"unexpected {k}" for k in given if k not in expected]
    problems += [
        f"{k} is {tuple(given[k].shape)}, the network needs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and tuple(given[k].shape) != tuple(v.shape)
    ]
    problems += [
        f"{k} is {given[k].dtype}, the network needs {v.dtype}"
        for k, v in expected.items()
        if k in given and given[k].is_floating_point() != v.is_floating_point()
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"{where}: its weights do not fit the '{name}' architecture it names: "
            f"{'; '.join(problems[:3])}{more}"
        )
    model.load_state_dict(given)
    for k, v in model.state_dict().items():  # a float64 1e300 is inf in float32
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(
                f"{where}: weight '{k}' is not finite in {v.dtype} (its {given[k].dtype} values "
                "overflow it); the network is unusable"
            )
    return model


def _payload(
    model: nn.Module, model_spec: dict, cfg: Config, data: PreparedData, stage: str, **extra: Any
) -> dict[str, Any]:
    return {
        "model": {**model_spec, "spiking": is_spiking(model)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": data.classes,
        "stage": stage,
        "config": config_to_dict(cfg),
        "manifest_hash": data.manifest.hash,
        **extra,
    }


# --- the training loop with validation-based selection, checkpoints and resume ---------------


class _RankRun(RunDir):
    """The run directory as seen by ranks other than 0: its paths, never written or created."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)


def _rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as plain containers and tensors."""
    # hsd draws from explicit generators only; the legacy global numpy state is kept for
    # third-party code that may draw from it.
    _, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _validate(
    model: nn.Module, feed: FrameFeed, *, device: torch.device, input_key: str, steps: int
) -> float | None:
    """Accuracy after ``steps`` steps over every rank's share of the validation split."""
    correct = count = 0.0
    if len(feed.indices):
        logits, labels, _ = predict_step_logits(model, feed, device=device, input_key=input_key)
        predictions = logits.cumsum(1)[:, steps - 1].argmax(1)
        correct, count = float((predictions == labels).sum()), float(len(labels))
    totals = dist.all_reduce_sums({"correct": correct, "count": count}, device)
    return totals["correct"] / totals["count"] if totals["count"] else None


def _fit(
    model: nn.Module,
    model_spec: dict,
    *,
    cfg: Config,
    data: PreparedData,
    run: RunDir,
    stage: str,
    optim: OptimConfig,
    loss_fn,
    train_feed: FrameFeed,
    val_feed: FrameFeed | None,
    input_key: str,
    val_steps: int,
    device: torch.device,
    teacher: nn.Module | None = None,
    resume: bool = False,
    teacher_target: str = "stream",
) -> nn.Module:
    """Train ``model`` in place; under torchrun it is wrapped in DDP for the optimiser steps only.

    Rank 0 writes ``last.pt`` at the end of every epoch (and every ``checkpoint_every_steps``
    steps within one) and ``best.pt`` when validation accuracy improves; ``resume`` continues
    from ``last.pt`` at the batch where it stopped. Every rank returns rank 0's best weights.
    """
    main = dist.is_main()
    if cfg.sync_bn and dist.is_distributed():
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model.parameters(), optim)
    scheduler = build_scheduler(optimizer, optim, len(train_feed))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    start_epoch, skip, tally, best = 0, 0, None, -1.0
    if resume:
        state, problem = None, None
        if main:
            try:
                state = _resumable(run, cfg, stage, data)
            except HSDError as exc:
                problem = exc
        state, problem = dist.broadcast_object((state, problem))
        if problem is not None:
            raise problem
        if state is not None:
            try:
                model.load_state_dict(state["state_dict"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                if scaler is not None and "scaler" in state:
                    scaler.load_state_dict(state["scaler"])
                if "rng" in state:
                    _set_rng_state(state["rng"])
                start_epoch, best = int(state["epoch"]), float(state["best_val"])
            except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise RunDirError(
                    f"{state['path']}: cannot resume from it: its training state does not fit "
                    f"this run ({type(exc).__name__}: {str(exc)[:200]})"
                ) from None
            skip, tally = int(state.get("batches_done", 0)), state.get("tally")
            if skip and int(state.get("world_size", 1)) != dist.world_size():
                raise ConfigError(
                    f"{state['path']}: written in the middle of an epoch by "
                    f"{state.get('world_size', 1)} processes; resume it with as many "
                    f"(this run has {dist.world_size()})"
                )
            if main:
                kept = [
                    r
                    for r in run.read_metrics()
                    if isinstance(r.get("epoch"), int) and r["epoch"] <= start_epoch
                ]
                run.write_text("metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
                print(f"[{stage}] resuming from {run.last} at epoch {start_epoch}, batch {skip}")
    train_net = model
    if dist.is_distributed():
        train_net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if wants_compile(cfg.compile, device, train_steps=optim.epochs * len(train_feed)):
        train_net = compile_network(train_net)  # shares the parameters; checkpoints stay eager
    epochs = optim.epochs
    every = cfg.checkpoint_every_steps

    def resume_payload(epoch_done: int, **extra: Any) -> dict[str, Any]:
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "best_val": best,
            "world_size": dist.world_size(),
            **extra,
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        return _payload(model, model_spec, cfg, data, stage, epoch=epoch_done, **state)

    # flushed after every epoch, so a run that stops early keeps its events
    board = TensorBoardWriter(run.path / "tensorboard") if main and cfg.log.tensorboard else None
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        train_feed.set_epoch(epoch, skip_batches=skip)
        steps_per_epoch = len(train_feed)

        def mid_epoch(
            step: int, running: dict[str, Any], epoch: int = epoch, n: int = steps_per_epoch
        ) -> None:
            if main and step % every == 0 and step < n:
                payload = resume_payload(epoch, batches_done=step, tally=running)
                save_checkpoint(payload, run.last)

        metrics = train_one_epoch(
            train_net,
            train_feed,
            loss_fn,
            optimizer,
            scheduler,
            device=device,
            epoch=epoch,
            input_key=input_key,
            teacher=teacher,
            grad_clip=optim.grad_clip,
            progress=cfg.progress and main,
            desc=f"{stage} {epoch + 1}/{epochs}",
            on_step=mid_epoch if every else None,
            start_step=skip,
            tally=tally,
            amp=cfg.amp,
            scaler=scaler,
            teacher_target=teacher_target,
        )
        skip, tally = 0, None
        dist.broadcast_state(model)  # BatchNorm statistics: rank 0's on every rank
        val_acc = None
        if val_feed is not None:
            val_acc = _validate(
                model, val_feed, device=device, input_key=input_key, steps=val_steps
            )
        score = val_acc if val_acc is not None else float(epoch)
        improved = score > best
        best = max(best, score)
        if not main:
            continue
        record = {
            "stage": stage,
            "epoch": epoch + 1,
            "lr": scheduler.get_last_lr()[0],
            **{f"train_{k}": v for k, v in metrics.items()},
            "val_acc": val_acc,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        run.log(record)
        if board is not None:
            board.add(record)
        tail = "" if val_acc is None else f" val acc {100 * val_acc:.1f}%"
        epoch_line(
            f"[{stage}] epoch {epoch + 1}/{epochs}: loss {metrics['loss']:.4f} "
            f"train acc {100 * metrics['acc']:.1f}%{tail} ({record['seconds']:.1f}s)"
        )
        if improved:
            payload = _payload(
                model, model_spec, cfg, data, stage, epoch=epoch + 1, best_val=best, metrics=record
            )
            save_checkpoint(payload, run.best)
        save_checkpoint(resume_payload(epoch + 1, metrics=record), run.last)
    if board is not None:
        board.close()
    if main:
        if run.best.is_file():
            model.load_state_dict(load_checkpoint(run.best, map_location=device)["state_dict"])
        else:  # zero epochs: the network as given is the result
            save_checkpoint(_payload(model, model_spec, cfg, data, stage, epoch=0), run.best)
    dist.broadcast_state(model)
    return model


# Keys that may differ between a run and its resumption: where and how it runs, not what it
# computes. Every other key of the saved config must be equal (another recipe is refused).
RESUME_MAY_CHANGE = (
    "name",
    "out_dir",
    "progress",
    "threads",
    "device",
    "deterministic",
    "checkpoint_every_steps",
    "compile",
    "log",
    "data.root",
    "data.cache_dir",
    "data.num_workers",
    "data.workers",
)


def _flat(values: dict[str, Any], where: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{where}{key}."))
        else:
            out[f"{where}{key}"] = value
    return out


def _resumable(run: RunDir, cfg: Config, stage: str, data: PreparedData) -> dict[str, Any]:
    """``last.pt`` of ``run`` if this run may continue from it: it exists and loads, was written
    by the same stage, on the same split, with the same recipe (but :data:`RESUME_MAY_CHANGE`)."""
    if not run.last.is_file():
        raise RunDirError(
            f"{run.path}: nothing to resume: {run.last} does not exist; start without --resume"
        )
    state = load_checkpoint(run.last)
    where = state["path"]
    if state["stage"] != stage:
        raise RunDirError(
            f"{where}: is a checkpoint of stage '{state['stage']}', this command trains "
            f"'{stage}'; resume it with the command that started it, or choose another --out"
        )
    for key in ("optimizer", "scheduler", "epoch", "best_val"):
        if key not in state:
            raise RunDirError(f"{where}: holds no training state ('{key}'); it cannot be resumed")
    if state.get("manifest_hash") not in (None, data.manifest.hash):
        raise RunDirError(
            f"{where}: was trained on another split (manifest {str(state['manifest_hash'])[:12]}"
            f" != {data.manifest.hash[:12]}); resume it with the data settings that started it"
        )
    saved, now = _flat(state["config"]), _flat(config_to_dict(cfg))
    changed = [
        f"{key} {saved[key]!r} -> {now[key]!r}"
        for key in now
        if key in saved
        and saved[key] != now[key]
        and not any(key == k or key.startswith(k + ".") for k in RESUME_MAY_CHANGE)
    ]
    if changed:
        more = f" (and {len(changed) - 4} more)" if len(changed) > 4 else ""
        raise RunDirError(
            f"{where}: was written with another recipe: {'; '.join(changed[:4])}{more}; resume "
            "with the config that started the run, or start a new run (--force or another --out)"
        )
    return state


def _prepare_out(out: str | Path, *, resume: bool, force: bool, replace: bool) -> None:
    """Check the run directory before any work (rank 0 of a torchrun job only)."""
    if int(os.environ.get("RANK", "0") or 0) == 0:
        prepare_run_dir(out, resume=resume, force=force, replace=replace)
        if replace and not resume:  # the demo's / benchmarks' scratch runs: start clean
            run = Path(out)
            for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.jsonl"):
                (run / name).unlink(missing_ok=True)


def _start_run(
    cfg: Config, out: str | Path, data: PreparedData, *, resume_stage: str | None = None
) -> tuple[RunDir, torch.device]:
    """Join the torchrun process group (if any), seed, pick the device, and (rank 0 only)
    write config.yaml, manifest.json and environment.json into the run directory.

    ``resume_stage``: the run is resumed as this stage; its ``last.pt`` is checked
    (:func:`_resumable`) before anything is written, so a refused resume changes no file."""
    if resume_stage is not None and int(os.environ.get("RANK", "0") or 0) == 0:
        _resumable(_RankRun(out), cfg, resume_stage, data)
    device = dist.setup(cfg.device)
    if cfg.amp != "none" and device.type != "cuda":
        raise ConfigError(f"amp={cfg.amp} needs CUDA; this run is on {device} (set amp=none)")
    if cfg.sync_bn and dist.is_distributed() and device.type != "cuda":
        raise ConfigError("sync_bn needs CUDA devices (SyncBatchNorm has no CPU implementation)")
    set_deterministic(cfg.deterministic)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)  # noqa: NPY002 (the legacy global state, see _rng_state)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not dist.is_main():
        return _RankRun(out), device
    run = RunDir(out)
    run.save_config(cfg)
    data.manifest.save(run.path / "manifest.json")
    run.save_environment(seed=cfg.seed, device=str(device), manifest_hash=data.manifest.hash)
    env = json.loads((run.path / "environment.json").read_text())
    env.update(
        world_size=dist.world_size(),
        backend=dist.backend(),
        deterministic=cfg.deterministic,
        amp=cfg.amp,
        sync_bn=cfg.sync_bn,
    )
    run.write_json("environment.json", env)
    return run, device


def _feeds(
    cfg: Config, data: PreparedData, *, steps: int, protocol: str, teacher: bool
) -> tuple[FrameFeed, FrameFeed | None]:
    """Training feed (shuffled, augmented) and validation feed for a stage.

    Under torchrun each process gets its shard of both: training batches of ``data.batch_size``
    per process (global batch = batch size x processes), every process's own validation samples.
    ``data.num_workers`` background threads build the training batches ahead of the loop (0 =
    synchronous; the batches are the same either way); on CUDA they are pinned.
    """
    student_frames = None
    if steps and protocol == "rebin":
        student_frames = data.arrays_for(steps).frames
    common = {
        "teacher": teacher,
        "student_steps": steps,
        "student_frames": student_frames,
    }
    rank, world = dist.rank(), dist.world_size()
    train = FrameFeed(
        data.arrays.frames,
        data.arrays.labels,
        data.train,
        batch_size=cfg.data.batch_size,
        shuffle=True,
        seed=cfg.seed,
        augment=_augment(cfg),
        shard=(rank, world),
        num_workers=cfg.data.num_workers,
        pin_memory=resolve_device(cfg.device).type == "cuda",
        **common,
    )
    val = None
    if len(data.val):
        key_frames = student_frames if steps else None
        val = FrameFeed(
            data.arrays.frames,
            data.arrays.labels,
            data.val[rank::world],
            batch_size=cfg.evaluate.batch_size,
            teacher=not steps,
            student_steps=steps,
            student_frames=key_frames,
        )
    return train, val


# --- stages ----------------------------------------------------------------------------------


def train_teacher(
    cfg: Config,
    out: str | Path,
    *,
    data: PreparedData | None = None,
    resume: bool = False,
    force: bool = False,
    replace: bool = False,
) -> Path:
    """Stage 1. Returns the path of the best teacher checkpoint.

    ``out`` is checked first (:func:`hsd.train.rundir.prepare_run_dir`): a folder holding a run
    is refused unless ``resume`` (continue from its ``last.pt``) or ``force`` (move it aside);
    ``replace`` writes over it (for scratch folders such as the demo's)."""
    _prepare_out(out, resume=resume, force=force, replace=replace)
    data = data or prepare_data(cfg)
    run, device = _start_run(cfg, out, data, resume_stage="teacher" if resume else None)
    spec = {"name": cfg.model.name, "kwargs": _model_kwargs(cfg, data)}
    _admit_network(
        spec["name"],
        spec["kwargs"],
        batch=cfg.data.batch_size,
        steps=data.frames,
        training=True,
        keys=f"data.batch_size={cfg.data.batch_size}, model.width={cfg.model.width}",
    )
    model = create_model(spec["name"], **spec["kwargs"]).to(device)
    train_feed, val_feed = _feeds(cfg, data, steps=0, protocol="prefix", teacher=True)
    _fit(
        model,
        spec,
        cfg=cfg,
        data=data,
        run=run,
        stage="teacher",
        optim=cfg.teacher.optim,
        loss_fn=make_loss("ce"),
        train_feed=train_feed,
        val_feed=val_feed,
        input_key="teacher",
        val_steps=data.frames,
        device=device,
        resume=resume,
    )
    return run.best


def convert_checkpoint(
    teacher_path: str | Path, out: str | Path, *, force: bool = False, replace: bool = False
) -> Path:
    """Stage 2. Convert a teacher checkpoint (file or run directory) into an SNN checkpoint.

    ``out`` holding a run is refused unless ``force`` (moved aside) or ``replace``."""
    ckpt = load_checkpoint(teacher_path)
    if ckpt["model"]["spiking"]:
        raise CheckpointError(f"{ckpt['path']}: already a spiking network; nothing to convert")
    require(ckpt, "hsd convert", spiking=False, stages=("teacher",))
    _prepare_out(out, resume=False, force=force, replace=replace)
    snn = convert_to_snn(model_from_checkpoint(ckpt))
    run = RunDir(out)
    cfg = config_from_dict(ckpt["config"])
    run.save_config(cfg)
    payload = {
        **{k: v for k, v in ckpt.items() if k not in ("path", "optimizer", "scheduler", "format")},
        "model": {**ckpt["model"], "spiking": True},
        "state_dict": {k: v.detach().cpu() for k, v in snn.state_dict().items()},
        "stage": "converted",
        "teacher": str(ckpt["path"]),
        "epoch": 0,
    }
    save_checkpoint(payload, run.best)
    return run.best


def distill(
    cfg: Config,
    teacher_path: str | Path,
    out: str | Path,
    *,
    data: PreparedData | None = None,
    resume: bool = False,
    force: bool = False,
    replace: bool = False,
) -> Path:
    """Stage 3: convert the teacher and fine-tune the SNN at ``cfg.distill.steps`` steps.

    ``out``, ``resume``, ``force``, ``replace``: as for :func:`train_teacher`. The teacher must be
    an ANN teacher checkpoint with the classes of the data."""
    _prepare_out(out, resume=resume, force=force, replace=replace)
    ckpt = load_checkpoint(teacher_path)
    require(ckpt, "distill --teacher", spiking=False, stages=("teacher",))
    teacher = model_from_checkpoint(ckpt)  # architecture and weights checked before any work
    theirs = (ckpt.get("config") or {}).get("data", {}).get("dataset")
    if theirs is not None and theirs != cfg.data.dataset:
        raise ConfigError(
            f"{ckpt['path']}: the teacher was trained on dataset '{theirs}', this run uses "
            f"'{cfg.data.dataset}'; give a teacher of '{cfg.data.dataset}' (or the recipe of "
            f"'{theirs}')"
        )
    data = data or prepare_data(cfg)
    require(ckpt, "distill --teacher", classes=data.classes)
    if ckpt.get("manifest_hash") not in (None, data.manifest.hash):
        raise ConfigError(
            f"{ckpt['path']}: the teacher was trained on another split (manifest "
            f"{ckpt['manifest_hash'][:12]} != {data.manifest.hash[:12]}); its validation/test "
            "samples would leak into fine-tuning"
        )
    _admit_network(
        ckpt["model"]["name"],
        ckpt["model"]["kwargs"],
        batch=cfg.data.batch_size,
        steps=max(cfg.distill.steps, data.frames),
        training=True,
        keys=f"data.batch_size={cfg.data.batch_size}",
    )
    run, device = _start_run(
        cfg, out, data, resume_stage=f"distill-{cfg.distill.loss}" if resume else None
    )
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = convert_to_snn(teacher).to(device)
    for p in student.parameters():
        p.requires_grad_(True)
    d = cfg.distill
    loss_kwargs: dict[str, Any] = {}
    if d.loss in ("skd", "kd_mean", "anytime"):
        loss_kwargs = {"tau": d.tau, "alpha": d.alpha, "reduction": d.reduction}
    if d.loss == "anytime":
        loss_kwargs["prefix_weights"] = d.prefix_weights
        loss_kwargs["self_kd"] = d.self_kd
    needs_teacher = d.loss in ("skd", "kd_mean", "anytime")
    train_feed, val_feed = _feeds(cfg, data, steps=d.steps, protocol=d.protocol, teacher=True)
    if not needs_teacher:
        train_feed.teacher = False
    spec = {"name": ckpt["model"]["name"], "kwargs": ckpt["model"]["kwargs"]}
    _fit(
        student,
        spec,
        cfg=cfg,
        data=data,
        run=run,
        stage=f"distill-{d.loss}",
        optim=d.optim,
        loss_fn=make_loss(d.loss, **loss_kwargs),
        train_feed=train_feed,
        val_feed=val_feed,
        input_key="student",
        val_steps=d.steps,
        device=device,
        teacher=teacher if needs_teacher else None,
        resume=resume,
        teacher_target=d.teacher_target,
    )
    return run.best


def train_baseline(
    cfg: Config,
    out: str | Path,
    *,
    data: PreparedData | None = None,
    resume: bool = False,
    force: bool = False,
    replace: bool = False,
) -> Path:
    """Stage 4 (baseline): the same architecture as an SNN trained from scratch at T steps.

    ``out``, ``resume``, ``force``, ``replace``: as for :func:`train_teacher`."""
    _prepare_out(out, resume=resume, force=force, replace=replace)
    data = data or prepare_data(cfg)
    run, device = _start_run(
        cfg, out, data, resume_stage=f"baseline-{cfg.baseline.loss}" if resume else None
    )
    b = cfg.baseline
    spec = {"name": cfg.model.name, "kwargs": _model_kwargs(cfg, data, b.threshold)}
    _admit_network(
        spec["name"],
        spec["kwargs"],
        batch=cfg.data.batch_size,
        steps=b.steps,
        training=True,
        keys=f"data.batch_size={cfg.data.batch_size}, model.width={cfg.model.width}",
    )
    model = convert_to_snn(create_model(spec["name"], **spec["kwargs"])).to(device)
    train_feed, val_feed = _feeds(cfg, data, steps=b.steps, protocol=b.protocol, teacher=False)
    loss_fn = make_loss("tet", lamb=b.tet_lamb) if b.loss == "tet" else make_loss("ce")
    _fit(
        model,
        spec,
        cfg=cfg,
        data=data,
        run=run,
        stage=f"baseline-{b.loss}",
        optim=b.optim,
        loss_fn=loss_fn,
        train_feed=train_feed,
        val_feed=val_feed,
        input_key="student",
        val_steps=b.steps,
        device=device,
        resume=resume,
    )
    return run.best


# --- evaluation -------------------------------------------------------------------------------


def evaluate_model(
    model: nn.Module,
    data: PreparedData,
    steps: list[int],
    *,
    protocol: str = "prefix",
    split: str = "test",
    device: torch.device | None = None,
    batch_size: int = 256,
    progress: bool = False,
    per_sample: bool = False,
) -> dict[str, Any]:
    """Accuracy after each T in ``steps`` on ``split``, event time consumed, firing rates.

    ``prefix``: the network sees the first T of the N frames; one pass over max(steps) frames
    gives every T. ``rebin``: the whole stream re-cut into T frames, one pass per T.
    Returns ``{"accuracy": {T: acc}, "latency_ms": {T: ms}, "firing_rates": {layer: rate},
    "samples": S, "split": split, "protocol": protocol}``. With ``per_sample``, also
    ``"correct": {T: [0 or 1 per sample]}`` and ``"keys": [recording key]``, both in split order
    (the same recordings in the same order for every network evaluated on ``data``): what paired
    tests between networks need.
    """
    device = device or next(model.parameters()).device
    steps = sorted({int(t) for t in steps})
    index = data.split(split)
    if len(index) == 0:
        raise ConfigError(f"the {split} split is empty")
    spiking = is_spiking(model)
    accuracy: dict[str, float] = {}
    latency: dict[str, float] = {}
    rates: dict[str, float] = {}
    correct: dict[str, list[int]] = {}
    row_of = {int(pos): i for i, pos in enumerate(index)}

    def keep(t: int, logits: torch.Tensor, labels: torch.Tensor, order: np.ndarray) -> None:
        if per_sample:
            # the same running sum as prefix_accuracy, so the counts agree with "accuracy"
            hits = (logits.cumsum(1)[:, t - 1].argmax(1) == labels).numpy().astype(np.int64)
            aligned = np.zeros(len(index), dtype=np.int64)
            aligned[[row_of[int(pos)] for pos in order]] = hits
            correct[str(t)] = aligned.tolist()

    if protocol == "prefix":
        t_max = max(steps)
        if t_max > data.frames:
            raise ConfigError(
                f"prefix protocol: T={t_max} exceeds the {data.frames} frames per sample"
            )
        feed = FrameFeed(
            data.arrays.frames,
            data.arrays.labels,
            index,
            batch_size=batch_size,
            teacher=False,
            student_steps=t_max,
        )
        monitor = FiringRateMonitor(model) if spiking else None
        with monitor if monitor is not None else _null():
            logits, labels, order = predict_step_logits(
                model, feed, device=device, input_key="student", progress=progress
            )
        if monitor is not None:
            rates = monitor.rates()
        acc = prefix_accuracy(logits, labels)
        for t in steps:
            accuracy[str(t)] = acc[t - 1]
            latency[str(t)] = _mean_ms(data.arrays.end_times_us[order, t - 1])
            keep(t, logits, labels, order)
    elif protocol == "rebin":
        for t in steps:
            arrays = data.arrays_for(t)
            feed = FrameFeed(
                arrays.frames,
                arrays.labels,
                index,
                batch_size=batch_size,
                teacher=False,
                student_steps=t,
            )
            monitor = FiringRateMonitor(model) if spiking and t == max(steps) else None
            with monitor if monitor is not None else _null():
                logits, labels, order = predict_step_logits(
                    model, feed, device=device, input_key="student", progress=progress
                )
            if monitor is not None:
                rates = monitor.rates()
            accuracy[str(t)] = prefix_accuracy(logits, labels)[t - 1]
            latency[str(t)] = _mean_ms(arrays.end_times_us[order, t - 1])
            keep(t, logits, labels, order)
    else:
        raise ConfigError(f"unknown protocol '{protocol}' (prefix or rebin)")
    result: dict[str, Any] = {
        "accuracy": accuracy,
        "latency_ms": latency,
        "firing_rates": rates,
        "samples": len(index),
        "split": split,
        "protocol": protocol,
    }
    if per_sample:
        result["correct"] = correct
        result["keys"] = [str(data.arrays.keys[int(pos)]) for pos in index]
    return result


def _mean_ms(end_times_us: np.ndarray) -> float | None:
    """Mean event time consumed in milliseconds; None when unknown (stored frames carry -1)."""
    if np.any(end_times_us < 0):
        return None
    return float(end_times_us.astype(np.float64).mean() / 1000.0)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def evaluate_checkpoint(
    path: str | Path,
    steps: list[int],
    *,
    protocol: str = "prefix",
    split: str = "test",
    cfg: Config | None = None,
    data: PreparedData | None = None,
    progress: bool = True,
    per_sample: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint (file or run directory) on the split it was trained with
    (``per_sample``: see :func:`evaluate_model`)."""
    ckpt = load_checkpoint(path)
    cfg = cfg or config_from_dict(ckpt["config"])
    data = data or prepare_data(cfg)
    if ckpt.get("manifest_hash") not in (None, data.manifest.hash):
        raise ConfigError(
            f"{ckpt['path']}: trained on another split than the one configured now; "
            "evaluating it would mix training and test samples"
        )
    require(ckpt, "hsd evaluate", classes=data.classes)
    device = resolve_device(cfg.device)
    model = model_from_checkpoint(ckpt)
    _admit_network(
        ckpt["model"]["name"],
        ckpt["model"]["kwargs"],
        batch=cfg.evaluate.batch_size,
        steps=max(steps),
        training=False,
        keys=f"evaluate.batch_size={cfg.evaluate.batch_size}, --steps {max(steps)}",
    )
    model = model.to(device)
    if wants_compile(cfg.compile, device, train_steps=None):
        model = compile_network(model)
    result = evaluate_model(
        model,
        data,
        steps,
        protocol=protocol,
        split=split,
        device=device,
        batch_size=cfg.evaluate.batch_size,
        progress=progress,
        per_sample=per_sample,
    )
    result["checkpoint"] = ckpt["path"]
    result["stage"] = ckpt["stage"]
    result["spiking"] = bool(ckpt["model"]["spiking"])
    result["trained_steps"] = trained_steps(ckpt["stage"], config_from_dict(ckpt["config"]))
    return result


def trained_steps(stage: str, cfg: Config) -> int | str | None:
    """The number of steps a run of ``stage`` was trained at, from its saved config: N frames
    for the teacher, ``distill.steps`` / ``baseline.steps`` for the SNN stages (``"1..T"`` for
    anytime distillation, trained at every prefix), None for a converted network (not
    trained)."""
    if stage == "teacher":
        return cfg.data.frames
    if stage == "distill-anytime":
        return f"1..{cfg.distill.steps}"
    if stage.startswith("distill-"):
        return cfg.distill.steps
    if stage.startswith("baseline-"):
        return cfg.baseline.steps
    return None
