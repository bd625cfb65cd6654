"""What a training run prints, and the optional TensorBoard writer beside ``metrics.jsonl``.

One place decides the console conventions:

* progress bars (tqdm, on stderr) are drawn only when ``progress`` is on *and* stderr is a
  terminal; redirected output (``make demo > log``, CI, a batch job) never gets bar redraws;
* one line per epoch is always printed on stdout by the process of rank 0, whatever
  ``progress`` says (``progress=false`` drops only the bars);
* ``log.tensorboard=true`` also writes every numeric scalar of each ``metrics.jsonl`` record to
  ``<run>/tensorboard/`` (tag ``<stage>/<key>``, step = epoch), readable by ``tensorboard
  --logdir <run>``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import IO, Any

from hsd.errors import ConfigError


def bars_enabled(progress: bool, stream: IO[str] | None = None) -> bool:
    """True when progress bars should be drawn: ``progress`` and ``stream`` (default: stderr,
    where tqdm draws) is an interactive terminal."""
    if not progress:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def epoch_line(text: str, stream: IO[str] | None = None) -> None:
    """Print one per-epoch line on stdout (through tqdm.write, so that a bar being drawn on
    the terminal is not garbled)."""
    from tqdm.auto import tqdm

    tqdm.write(text, file=sys.stdout if stream is None else stream)
    (sys.stdout if stream is None else stream).flush()


class TensorBoardWriter:
    """Scalars of ``metrics.jsonl`` records, also as a TensorBoard event file in ``folder``.

    ``add(record)`` writes each finite numeric value of ``record`` (except ``epoch`` and
    ``time``) as tag ``<record['stage']>/<key>`` at step ``record['epoch']``.
    """

    def __init__(self, folder: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # tensorboard is not installed
            raise ConfigError(
                "log.tensorboard: needs the tensorboard package "
                "(the 'tensorboard' extra of hsd, or pip install tensorboard), "
                "or set log.tensorboard=false"
            ) from err
        self.folder = Path(folder)
        self._writer = SummaryWriter(log_dir=str(self.folder))

    def add(self, record: dict[str, Any]) -> None:
        stage = record.get("stage", "train")
        step = int(record.get("epoch", 0))
        for key, value in record.items():
            if key in ("epoch", "time", "stage") or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(f"{stage}/{key}", float(value), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
