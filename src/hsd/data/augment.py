"""Train-time augmentation of frame tensors (torch), the same transform for all frames of a sample.

As in the HSD authors' recipe: horizontal flip with probability ``flip_p`` and a
circular roll of up to ``max_roll`` pixels on both axes (``torch.roll``, so the event count is
preserved). Optionally ``crop = (h, w)``: a random ``h x w`` window, resized back to the frame
size by nearest neighbour (a random zoom-in; counts are not preserved). Evaluation uses no
augmentation; an :class:`Augment` whose parameters are all off is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Augment"]


@dataclass(frozen=True)
class Augment:
    """Random flip / roll / crop of ``[B, N, P, H, W]`` batches or ``[N, P, H, W]`` samples.

    Each sample draws, in this order from the generator: a uniform number (flip when below
    ``flip_p``), the roll ``(dy, dx)`` uniform in ``[-max_roll, max_roll]``, and the crop window's
    top-left corner; its N frames all get the same transform.
    """

    flip_p: float = 0.5
    max_roll: int = 5
    crop: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p}")
        if isinstance(self.max_roll, bool) or not isinstance(self.max_roll, int):
            raise ValueError(f"max_roll must be an integer, got {self.max_roll!r}")
        if self.max_roll < 0:
            raise ValueError(f"max_roll must be >= 0, got {self.max_roll}")
        if self.crop is not None:
            crop = tuple(int(c) for c in self.crop)
            if len(crop) != 2 or min(crop) < 1:
                raise ValueError(f"crop must be (height, width) >= 1, got {self.crop!r}")
            object.__setattr__(self, "crop", crop)

    @property
    def active(self) -> bool:
        """False when every transform is off (then :meth:`__call__` returns its input)."""
        return self.flip_p > 0 or self.max_roll > 0 or self.crop is not None

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augmented copy of ``x`` (``[B, N, P, H, W]`` or ``[N, P, H, W]``), same dtype."""
        if x.dim() not in (4, 5):
            raise ValueError(f"expected [B, N, P, H, W] or [N, P, H, W], got {tuple(x.shape)}")
        if not self.active:
            return x
        if x.dim() == 4:
            return self._batch(x[None], generator)[0]
        return self._batch(x, generator)

    def _batch(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Vectorised over the batch: the per-sample draws are made in the documented order
        (so the transforms are those of a per-sample loop, bit for bit), then flip, roll and
        crop are applied together as one gather of rows and columns, on ``x``'s device."""
        batch = x.shape[0]
        height, width = x.shape[-2:]
        if self.crop is not None and (self.crop[0] > height or self.crop[1] > width):
            raise ValueError(f"crop {self.crop} is larger than the {height}x{width} frames")
        rows = torch.empty(batch, height, dtype=torch.long)
        cols = torch.empty(batch, width, dtype=torch.long)
        base_h, base_w = torch.arange(height), torch.arange(width)
        for b in range(batch):
            flip = bool(torch.rand((), generator=generator) < self.flip_p)
            dy, dx = torch.randint(
                -self.max_roll, self.max_roll + 1, (2,), generator=generator
            ).tolist()
            # out[i, j] = in[(i - dy) % H, (j - dx) % W] after the roll, columns mirrored first.
            r = (base_h - dy) % height
            c = (base_w - dx) % width
            if flip:
                c = width - 1 - c
            if self.crop is not None:
                crop_h, crop_w = self.crop
                top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
                left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
                r = r[top + base_h * crop_h // height]
                c = c[left + base_w * crop_w // width]
            rows[b], cols[b] = r, c
        rows, cols = rows.to(x.device), cols.to(x.device)
        flat = x.reshape(batch, -1, height, width)
        index_b = torch.arange(batch, device=x.device)[:, None, None, None]
        index_c = torch.arange(flat.shape[1], device=x.device)[None, :, None, None]
        out = flat[index_b, index_c, rows[:, None, :, None], cols[:, None, None, :]]
        return out.reshape(x.shape)
