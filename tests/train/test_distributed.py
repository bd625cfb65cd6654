"""DistributedDataParallel on CPU: 2 processes, gloo backend, the torchrun environment variables.

* The engine: DDP over 2 shards of batch B/2 takes the same steps as one process with batch B
  (a network without BatchNorm, so the two are equal up to float rounding).
* The stages: teacher, distillation and the from-scratch baseline run unchanged; both ranks end
  with identical weights, only rank 0 writes a run directory, the frozen teacher stays unwrapped,
  and the teacher matches a single-process run with the same global batch within a stated
  tolerance (BatchNorm normalises each rank's half-batch with its own statistics; SyncBatchNorm,
  ``sync_bn``, has no CPU implementation).
"""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hsd.config import load_config
from hsd.models import create_model
from hsd.pipeline import prepare_data, train_teacher
from hsd.train.checkpoint import load_checkpoint

TINY = [
    "model.width=0.25",
    "data.limit=48",
    "teacher.optim.epochs=1",
    "teacher.optim.optimizer=sgd",
    "teacher.optim.lr=0.05",
    "distill.optim.epochs=1",
    "baseline.optim.epochs=1",
    "data.augment.max_roll=0",  # augmentation draws depend on the batch split
    "progress=false",
    "threads=1",
]
GLOBAL_BATCH = 16
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
    )


def _engine_worker(rank: int, port: int, out: str) -> None:
    from hsd.train import distributed

    _join(rank, port)
    torch.set_num_threads(1)
    distributed.setup("cpu")
    try:
        result = _linear_epoch(DistributedDataParallel(_linear()), GLOBAL_BATCH // WORLD, rank)
    finally:
        distributed.cleanup()
    torch.save(result, Path(out) / f"engine{rank}.pt")


def _linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(2), nn.Linear(2 * 34 * 34, 10))


def _linear_epoch(net: nn.Module, batch_size: int, rank: int) -> dict:
    from hsd.train import distributed
    from hsd.train.engine import train_one_epoch
    from hsd.train.feed import FrameFeed
    from hsd.train.losses import make_loss

    data = prepare_data(load_config(overrides=TINY))
    feed = FrameFeed(
        data.arrays.frames,
        data.arrays.labels,
        data.train,
        batch_size=batch_size,
        shuffle=True,
        shard=(rank, distributed.world_size()),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    metrics = train_one_epoch(
        net,
        feed,
        make_loss("ce"),
        optimizer,
        scheduler,
        device=torch.device("cpu"),
        epoch=0,
        input_key="teacher",
        progress=False,
    )
    module = net.module if isinstance(net, DistributedDataParallel) else net
    return {"state": {k: v.clone() for k, v in module.state_dict().items()}, "metrics": metrics}


def _stages_worker(rank: int, port: int, out: str) -> None:
    import hsd.pipeline as pipeline
    from hsd.train import distributed

    _join(rank, port)
    captured: dict = {"trained": [], "final": [], "teacher": []}
    real_epoch, real_fit = pipeline.train_one_epoch, pipeline._fit

    def recording_epoch(net, *args, **kwargs):
        metrics = real_epoch(net, *args, **kwargs)
        teacher = kwargs["teacher"]
        captured["teacher"].append(
            None
            if teacher is None
            else (
                isinstance(teacher, DistributedDataParallel),
                teacher.training,
                any(p.requires_grad for p in teacher.parameters()),
            )
        )
        assert isinstance(net, DistributedDataParallel)
        # parameters straight after the optimiser steps, before any broadcast by _fit
        params = {n: p.detach().clone() for n, p in net.module.named_parameters()}
        captured["trained"].append({"params": params, "metrics": metrics})
        return metrics

    def recording_fit(*args, **kwargs):
        model = real_fit(*args, **kwargs)
        captured["final"].append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    pipeline.train_one_epoch, pipeline._fit = recording_epoch, recording_fit
    cfg = load_config(overrides=[*TINY, f"data.batch_size={GLOBAL_BATCH // WORLD}"])
    base = Path(out) / f"rank{rank}"
    try:
        data = pipeline.prepare_data(cfg)
        pipeline.train_teacher(cfg, base / "teacher", data=data)
        teacher = Path(out) / "rank0" / "teacher"  # rank 0's file (one machine, shared disk)
        pipeline.distill(cfg, teacher, base / "distill", data=data)
        pipeline.train_baseline(cfg, base / "baseline", data=data)
    finally:
        distributed.cleanup()
    torch.save(captured, Path(out) / f"stages{rank}.pt")


def _spawn(worker, out: Path) -> None:
    mp.spawn(worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)


@pytest.fixture(scope="module")
def warm_cache():
    """Build the session's frame cache once, before the workers read it."""
    return prepare_data(load_config(overrides=TINY))


def test_ddp_engine_equals_one_process_with_the_same_global_batch(warm_cache, tmp_path):
    _spawn(_engine_worker, tmp_path)
    ranks = [torch.load(tmp_path / f"engine{r}.pt", weights_only=True) for r in range(WORLD)]
    single = _linear_epoch(_linear(), GLOBAL_BATCH, rank=0)
    half = _linear_epoch(_linear(), GLOBAL_BATCH // WORLD, rank=0)
    for key, expected in single["state"].items():
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key])
        torch.testing.assert_close(ranks[0]["state"][key], expected, rtol=0, atol=1e-6)
        assert not torch.allclose(half["state"][key], expected, rtol=0, atol=1e-4)
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert ranks[0]["metrics"]["samples"] == len(warm_cache.train) == 48
    assert ranks[0]["metrics"]["loss"] == pytest.approx(single["metrics"]["loss"], abs=1e-6)


def test_every_stage_under_ddp_identical_ranks_rank0_writes_close_to_one_process(
    warm_cache, tmp_path
):
    _spawn(_stages_worker, tmp_path)
    ranks = [torch.load(tmp_path / f"stages{r}.pt", weights_only=True) for r in range(WORLD)]
    for a, b in zip(ranks[0]["trained"], ranks[1]["trained"], strict=True):
        assert a["metrics"] == b["metrics"]
        for name in a["params"]:
            assert torch.equal(a["params"][name], b["params"][name]), name
    assert len(ranks[0]["final"]) == 3  # teacher, distill, baseline
    for a, b in zip(ranks[0]["final"], ranks[1]["final"], strict=True):
        for key in a:  # parameters and BatchNorm statistics
            assert torch.equal(a[key], b[key]), key
    # the distillation teacher: unwrapped, in eval mode, frozen (teacher and baseline have none)
    assert ranks[0]["teacher"] == [None, (False, False, False), None]

    assert not (tmp_path / "rank1").exists()
    ddp_last = load_checkpoint(tmp_path / "rank0" / "teacher" / "checkpoints" / "last.pt")
    for stage in ("teacher", "distill", "baseline"):
        assert (tmp_path / "rank0" / stage / "checkpoints" / "best.pt").is_file()
    env = (tmp_path / "rank0" / "teacher" / "environment.json").read_text()
    assert '"world_size": 2' in env and '"backend": "gloo"' in env

    cfg = load_config(overrides=[*TINY, f"data.batch_size={GLOBAL_BATCH}"])
    train_teacher(cfg, tmp_path / "single", data=warm_cache)
    single = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    torch.manual_seed(cfg.seed)  # the initial weights, as _start_run + create_model make them
    init = create_model(single["model"]["name"], **single["model"]["kwargs"]).state_dict()
    names = [n for n in init if n.endswith(("weight", "bias", "lam"))]

    def distance(a: dict, b: dict) -> float:
        return float(torch.cat([(a[n] - b[n]).flatten() for n in names]).norm())

    moved = distance(single["state_dict"], init)
    gap = distance(ddp_last["state_dict"], single["state_dict"])
    assert ddp_last["metrics"]["train_samples"] == single["metrics"]["train_samples"] == 48
    # Tolerance: the DDP parameters lie within 20% of the epoch's movement of the single-process
    # ones (measured: 9%; BatchNorm normalises each rank's 8 samples, not all 16). A run with
    # the per-rank batch of 8 alone lands 170% away: the test tells the two apart.
    assert gap <= 0.2 * moved, (gap, moved)
