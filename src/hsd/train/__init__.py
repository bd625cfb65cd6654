"""Training: losses, the engine, checkpoints, run directories."""

from hsd.train.losses import (
    LOSSES,
    ce_loss,
    kd_mean_loss,
    kl_divergence,
    make_loss,
    skd_loss,
    tet_loss,
)

__all__ = [
    "LOSSES",
    "ce_loss",
    "kd_mean_loss",
    "kl_divergence",
    "make_loss",
    "skd_loss",
    "tet_loss",
]
