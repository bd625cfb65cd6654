"""A DVS emulator that turns static grayscale images into N-MNIST-like event streams (numpy only).

The events made here are **emulated, not recorded**: no camera saw them. The model imitates how
N-MNIST was recorded (Orchard et al. 2015, an ATIS camera looking at a screen while it made three
saccades):

1. The image is scaled (bilinear, so small images are upscaled smoothly) to fit an
   ``image_px`` square and centred on the sensor.
2. It moves on the sensor along a closed polygon: ``n_saccades`` straight saccades of
   ``amplitude_px`` pixels each, ``duration_us / n_saccades`` microseconds each, starting and
   stopping at rest. With 3 saccades this is N-MNIST's triangle (down-right, up-right, left).
3. Each pixel sees the log intensity ``L = log(log_offset + I)``, sampled at ``substeps`` times per
   saccade. A pixel emits an ON event each time ``L`` rises by its ON threshold above its reference
   level and an OFF event each time it falls by its OFF threshold below it; the reference moves by
   one threshold per event. Event timestamps are interpolated linearly inside a sub-step.
4. Thresholds have per-pixel Gaussian mismatch (``threshold_sigma``), fixed for the emulated
   sensor by ``sensor_seed``. Each recording's ``seed`` draws the pixels' initial reference levels
   (a random phase within one threshold) and the background noise.
5. Optional refractory period: an event closer than ``refractory_us`` to the previous emitted event
   of the same pixel is dropped (its threshold crossing is lost).
6. Optional background noise: a Poisson process of ``noise_rate_hz`` events per pixel per second,
   uniform in time, pixel and polarity.

Same image, parameters and seed give identical events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hsd.events.core import Events, validate_events

__all__ = ["DVSEmulator"]

_CHUNK = 64


@dataclass(frozen=True)
class DVSEmulator:
    """Emulated DVS recording of a moving static image; see the module docstring for the model.

    Units: ``sensor_size`` is ``(width, height)`` pixels, times are microseconds, thresholds are
    in natural-log intensity units, ``noise_rate_hz`` is events per pixel per second.
    """

    sensor_size: tuple[int, int] = (34, 34)
    duration_us: int = 300_000
    n_saccades: int = 3
    amplitude_px: float = 4.5
    image_px: int = 24
    threshold: float = 0.2
    threshold_sigma: float = 0.03
    log_offset: float = 0.25
    substeps: int = 40
    refractory_us: int = 0
    noise_rate_hz: float = 0.2
    sensor_seed: int = 0

    def __post_init__(self) -> None:
        if len(self.sensor_size) != 2 or min(self.sensor_size) < 1:
            raise ValueError(f"sensor_size must be (width, height) > 0, got {self.sensor_size}")
        object.__setattr__(
            self, "sensor_size", (int(self.sensor_size[0]), int(self.sensor_size[1]))
        )
        checks = [
            (self.n_saccades >= 2, "n_saccades must be >= 2 (the motion is a closed polygon)"),
            (self.duration_us >= self.n_saccades * self.substeps, "duration_us is too short"),
            (self.amplitude_px >= 0, "amplitude_px must be >= 0"),
            (self.image_px >= 1, "image_px must be >= 1"),
            (self.threshold > 0, "threshold must be > 0"),
            (self.threshold_sigma >= 0, "threshold_sigma must be >= 0"),
            (self.log_offset > 0, "log_offset must be > 0"),
            (self.substeps >= 1, "substeps must be >= 1"),
            (self.refractory_us >= 0, "refractory_us must be >= 0"),
            (self.noise_rate_hz >= 0, "noise_rate_hz must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DVSEmulator: {message}")

    @property
    def n_steps(self) -> int:
        """Number of simulation sub-steps over the whole recording."""
        return self.n_saccades * self.substeps

    def motion_px(self, t_us: np.ndarray) -> np.ndarray:
        """Image offset ``(dx, dy)`` in pixels at times ``t_us``: ``float64 [len(t_us), 2]``.

        The path is a regular polygon with sides of ``amplitude_px``, centred on 0, ``y`` pointing
        down. The first saccade moves down-right at 60 degrees and each next one turns by
        ``360 / n_saccades`` degrees, so 3 saccades give N-MNIST's triangle (down-right, up-right,
        left). Within a saccade the position follows ``(1 - cos(pi u)) / 2`` of the side for
        ``u`` in ``[0, 1]``: the image starts and stops at rest and is fastest mid-saccade, as in
        N-MNIST, whose event rate peaks mid-saccade.
        """
        n = self.n_saccades
        directions = math.pi / 3 - 2 * math.pi * np.arange(n) / n
        legs = self.amplitude_px * np.stack([np.cos(directions), np.sin(directions)], axis=1)
        vertices = np.concatenate([np.zeros((1, 2)), np.cumsum(legs, axis=0)])
        vertices -= vertices[:n].mean(axis=0)
        phase = np.clip(np.asarray(t_us, dtype=np.float64) / self.duration_us, 0.0, 1.0) * n
        leg = np.minimum(np.floor(phase).astype(np.int64), n - 1)
        eased = ((1.0 - np.cos(math.pi * (phase - leg))) / 2.0)[:, None]
        return vertices[leg] * (1.0 - eased) + vertices[leg + 1] * eased

    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel ON and OFF thresholds, ``float32 [height * width]`` each (fixed per sensor)."""
        width, height = self.sensor_size
        rng = np.random.default_rng(self.sensor_seed)
        pair = rng.normal(self.threshold, self.threshold_sigma, size=(2, height * width))
        pair = np.maximum(pair, 0.1 * self.threshold).astype(np.float32)
        return pair[0], pair[1]

    def emulate(self, image: np.ndarray, seed: int) -> Events:
        """Emulated events of ``image`` (``[h, w]`` float in ``[0, 1]``, 1 = white).

        Returns time-sorted :class:`Events` on ``sensor_size`` with timestamps in
        ``[0, duration_us]`` microseconds.
        """
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-D [h, w], got shape {image.shape}")
        return self.emulate_batch(image[None], [seed])[0]

    def emulate_batch(self, images: np.ndarray, seeds: Sequence[int]) -> list[Events]:
        """Emulate many images of the same size at once: ``images`` ``[B, h, w]`` in ``[0, 1]``.

        ``emulate_batch(images, seeds)[i]`` equals ``emulate(images[i], seeds[i])``.
        """
        images = np.asarray(images)
        if images.ndim != 3 or min(images.shape) < 1:
            raise ValueError(f"images must be [B, h, w] with B, h, w >= 1, got {images.shape}")
        if images.dtype.kind not in "uif" or not np.all(np.isfinite(images)):
            raise ValueError("images must be finite numbers")
        if images.min() < 0 or images.max() > 1:
            raise ValueError(
                f"image values must lie in [0, 1], got [{images.min()}, {images.max()}]"
            )
        if len(seeds) != images.shape[0]:
            raise ValueError(f"got {len(seeds)} seeds for {images.shape[0]} images")
        images = images.astype(np.float32)
        rows, cols = self._sampling_matrices(images.shape[1], images.shape[2])
        on_threshold, off_threshold = self.thresholds()
        result: list[Events] = []
        for start in range(0, images.shape[0], _CHUNK):
            chunk = images[start : start + _CHUNK]
            rngs = [np.random.default_rng(s) for s in seeds[start : start + _CHUNK]]
            result.extend(self._emulate_chunk(chunk, rngs, rows, cols, on_threshold, off_threshold))
        return result

    def _sampling_matrices(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear resampling matrices per sub-step boundary: ``[S+1, H, h]`` and ``[S+1, W, w]``.

        Sensor pixel ``i`` at offset ``d`` samples image coordinate
        ``(i + 0.5 - H/2 - d) / scale + h/2 - 0.5``; outside the image is black.
        """
        width, height = self.sensor_size
        scale = self.image_px / max(h, w)
        times = np.arange(self.n_steps + 1) * (self.duration_us / self.n_steps)
        offsets = self.motion_px(times)

        def matrix(n_out: int, n_in: int, shift: np.ndarray) -> np.ndarray:
            pos = np.arange(n_out)[None, :] + 0.5 - n_out / 2 - shift[:, None]
            src = pos / scale + n_in / 2 - 0.5
            low = np.floor(src).astype(np.int64)
            weight = src - low
            out = np.zeros((shift.shape[0], n_out, n_in + 2), dtype=np.float32)
            steps, pixels = np.indices(low.shape)
            low_col = np.clip(low + 1, 0, n_in + 1)
            high_col = np.clip(low + 2, 0, n_in + 1)
            out[steps, pixels, low_col] += (1.0 - weight) * (low_col == low + 1)
            out[steps, pixels, high_col] += weight * (high_col == low + 2)
            return out[:, :, 1:-1]

        return matrix(height, h, offsets[:, 1]), matrix(width, w, offsets[:, 0])

    def _emulate_chunk(
        self,
        images: np.ndarray,
        rngs: list[np.random.Generator],
        rows: np.ndarray,
        cols: np.ndarray,
        on_threshold: np.ndarray,
        off_threshold: np.ndarray,
    ) -> list[Events]:
        width, height = self.sensor_size
        n_images, n_pixels = images.shape[0], width * height
        intensity = rows[:, None] @ images[None] @ np.swapaxes(cols, 1, 2)[:, None]
        intensity = intensity.reshape(self.n_steps + 1, -1)
        # Only (image, pixel) pairs whose intensity changes at all can emit events.
        active = np.flatnonzero(intensity.max(axis=0) > intensity.min(axis=0))
        log_i = np.log(self.log_offset + intensity[:, active])
        active_pixel = active % n_pixels
        on_t, off_t = on_threshold[active_pixel], off_threshold[active_pixel]
        phase = np.concatenate([rng.uniform(-1.0, 1.0, n_pixels) for rng in rngs])[active]
        reference = log_i[0] + phase.astype(np.float32) * np.minimum(on_t, off_t)
        step_us = self.duration_us / self.n_steps
        last_us = np.full(active.size, -np.inf)
        parts: list[tuple[np.ndarray, ...]] = []
        for step in range(1, self.n_steps + 1):
            before, now = log_i[step - 1], log_i[step]
            delta = now - reference
            hit = np.flatnonzero((delta >= on_t) | (delta <= -off_t))
            if hit.size == 0:
                continue
            up = delta[hit] > 0
            signed = np.where(up, on_t[hit], -off_t[hit])
            count = np.floor(delta[hit] / signed).astype(np.int64)
            level0 = reference[hit]
            reference[hit] = level0 + count * signed
            repeat = np.repeat(np.arange(hit.size), count)
            k = np.arange(repeat.size) - np.repeat(np.cumsum(count) - count, count) + 1
            level = level0[repeat] + k * signed[repeat]
            start, end = before[hit][repeat], now[hit][repeat]
            frac = np.clip((level - start) / (end - start), 0.0, 1.0)
            t_us = (step - 1 + frac.astype(np.float64)) * step_us
            ev_pair, ev_up = hit[repeat], up[repeat]
            if self.refractory_us > 0:
                keep = np.zeros(repeat.size, dtype=bool)
                for kk in range(1, int(count.max()) + 1):
                    sel = np.flatnonzero(k == kk)
                    sel = sel[t_us[sel] >= last_us[ev_pair[sel]] + self.refractory_us]
                    keep[sel] = True
                    last_us[ev_pair[sel]] = t_us[sel]
                ev_pair, ev_up, t_us = ev_pair[keep], ev_up[keep], t_us[keep]
            parts.append((active[ev_pair], ev_up.astype(np.uint8), np.floor(t_us).astype(np.int64)))
        if parts:
            all_pair, all_p, all_t = (np.concatenate(a) for a in zip(*parts, strict=True))
        else:
            all_pair, all_p, all_t = (
                np.zeros(0, np.int64),
                np.zeros(0, np.uint8),
                np.zeros(0, np.int64),
            )
        all_image, all_pixel = np.divmod(all_pair, n_pixels)
        order = np.argsort(all_image, kind="stable")
        all_image, all_pixel, all_p, all_t = (
            a[order] for a in (all_image, all_pixel, all_p, all_t)
        )
        bounds = np.searchsorted(all_image, np.arange(n_images + 1))
        events = []
        for i, rng in enumerate(rngs):
            lo, hi = bounds[i], bounds[i + 1]
            pixel, p, t = all_pixel[lo:hi], all_p[lo:hi], all_t[lo:hi]
            n_noise = rng.poisson(self.noise_rate_hz * n_pixels * self.duration_us * 1e-6)
            if n_noise:
                t = np.concatenate([t, rng.integers(0, self.duration_us, n_noise)])
                pixel = np.concatenate([pixel, rng.integers(0, n_pixels, n_noise)])
                p = np.concatenate([p, rng.integers(0, 2, n_noise).astype(np.uint8)])
            order = np.argsort(t, kind="stable")
            t, pixel, p = t[order], pixel[order], p[order]
            events.append(
                validate_events(
                    t, pixel % width, pixel // width, p, (width, height), allow_empty=True
                )
            )
        return events
