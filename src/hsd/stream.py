"""Online inference over an event stream: a decision at every step, early exit when sure.

:class:`StreamClassifier` takes events as they arrive (``push``), integrates them into frames of
event counts with :func:`hsd.events.frames.integrate_frames` (channel = polarity, the resize and
clip of the checkpoint's ``config["data"]``), and advances the network one step per completed
frame. Neuron state is kept between calls until :meth:`StreamClassifier.reset`.

Framing (exactly one of):

* ``frame_events=K``: a frame closes every ``K`` events;
* ``frame_ms=W``: frame ``i`` holds the events with ``t0 + i*W <= t < t0 + (i+1)*W`` (``t0`` the
  first event's time, ``W`` rounded to whole microseconds). A window closes when an event at or
  past its end arrives, so a silent gap yields empty frames, one step each (as ``split_by="time"``
  does offline).

There is no default: a live stream's length is unknown, and the training frames (``E // N``
events, or ``duration // N``, per recording) depend on it. :func:`training_framing` gives the
framing that reproduces the training frames of a *whole* recording; ``hsd stream`` uses it when
no framing is given.

Decision after step ``t`` (as in :mod:`hsd.train.engine`): the argmax of the mean of the logits
of steps ``1..t``; its confidence is the largest softmax probability of that mean, its margin the
difference between the two largest. :class:`ExitPolicy` says when that is sure enough; after an
exit the classifier stops (``push`` integrates nothing and returns ``[]``) until ``reset()``.
At the end of a stream the trailing partial frame is a step only when the caller asks for it
with :meth:`StreamClassifier.flush`.

Because frame boundaries depend only on event counts and times, feeding a recording in one piece
or in many pieces gives identical decisions.

Compilation (``compile``, as the ``compile`` config key of :mod:`hsd.train.compiled`; ``hsd
stream --set compile=true``): ``"true"`` runs the step network through
:func:`hsd.train.compiled.compile_network` (``torch.compile``, static shapes: one graph for the
first step after a reset, whose membranes start from ``lam / 2``, and one for the steps that carry
state; the graphs are cached on disk, so a second stream pays only the cache load). Outputs equal
the eager network's (float tolerance). ``"auto"`` means what it means for ``hsd evaluate``:
eager. Compiling does not pay for a stream on a CPU: measured on the loaded 2-core CPU
(2026-12-02, one thread, the width-1/4 demo network of the tests, 100-event frames), the first
stream waited 38 s for its first decision (19 s with the graphs already in the disk cache), and a
compiled step then took 2.5 ms against 1.3 ms eager (a batch of one frame: dynamo's guards and
the graph call cost more than the small kernels they replace), so ``auto`` stays eager
(on every device: no stream was measured where it pays; ``true`` is there to try it, e.g. on a
larger network or a GPU).

:func:`apply_policy` and :func:`exit_sweep` evaluate a policy offline on per-step logits
``[S, T, C]`` (e.g. from :func:`hsd.train.engine.predict_step_logits`): accuracy against mean
steps used, for a sweep of thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

import numpy as np
import torch

from hsd.errors import CheckpointError, ConfigError, EventFileError
from hsd.events.core import Events
from hsd.events.formats import read_events
from hsd.events.frames import integrate_frames
from hsd.models import reset_states
from hsd.pipeline import model_from_checkpoint
from hsd.train.checkpoint import load_checkpoint
from hsd.train.compiled import compile_network, wants_compile

__all__ = [
    "Decision",
    "EarlyExit",
    "ExitPolicy",
    "StreamClassifier",
    "SweepPoint",
    "apply_policy",
    "exit_sweep",
    "latency_summary",
    "open_recording",
    "replay",
    "running_scores",
    "stream_source",
    "training_framing",
    "training_sensor_size",
]

Criterion = Literal["confidence", "margin"]


def _scores(mean_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``mean_logits [..., C]`` -> (prediction int64, confidence, margin), each ``[...]``.

    Confidence: the largest softmax probability; margin: largest minus second largest (the
    largest itself when ``C == 1``).
    """
    probs = torch.softmax(mean_logits.float(), dim=-1)
    top = probs.topk(min(2, probs.shape[-1]), dim=-1).values
    confidence = top[..., 0]
    margin = confidence - top[..., 1] if top.shape[-1] > 1 else confidence
    return mean_logits.argmax(-1), confidence, margin


def running_scores(step_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decision after every step: ``step_logits [..., T, C]`` -> (prediction, confidence, margin),
    each ``[..., T]``, from the running mean of the logits of steps ``1..t``."""
    steps = torch.arange(1, step_logits.shape[-2] + 1, dtype=torch.float32)
    mean = step_logits.float().cumsum(-2) / steps[:, None]
    return _scores(mean)


@dataclass(frozen=True)
class ExitPolicy:
    """When a decision is final.

    Exit after step ``t`` when ``t >= min_steps`` and (confidence ``>= confidence`` or margin
    ``>= margin``), a criterion set to ``None`` being off; always exit at ``max_steps`` (``None``:
    no limit). Both criteria off and no ``max_steps``: never exit early.
    """

    confidence: float | None = 0.9
    margin: float | None = None
    min_steps: int = 1
    max_steps: int | None = None

    def __post_init__(self) -> None:
        for name in ("confidence", "margin"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"exit {name} threshold must be in (0, 1], got {value}")
        if self.min_steps < 1:
            raise ConfigError(f"exit min_steps must be >= 1, got {self.min_steps}")
        if self.max_steps is not None and self.max_steps < self.min_steps:
            raise ConfigError(
                f"exit max_steps ({self.max_steps}) is below min_steps ({self.min_steps})"
            )

    def satisfied(
        self, confidence: torch.Tensor, margin: torch.Tensor, step: torch.Tensor | int
    ) -> torch.Tensor:
        """Element-wise exit test; ``step`` is 1-based and broadcasts against the scores."""
        step = torch.as_tensor(step)
        sure = torch.zeros_like(confidence, dtype=torch.bool)
        if self.confidence is not None:
            sure |= confidence >= self.confidence
        if self.margin is not None:
            sure |= margin >= self.margin
        sure &= step >= self.min_steps
        if self.max_steps is not None:
            sure |= step >= self.max_steps
        return sure


@dataclass(frozen=True)
class Decision:
    """The decision after ``step`` frames (1-based).

    ``time_us``: event time consumed, microseconds since the stream's first event (count framing:
    the time of the frame's last event; time framing: the window's end, or the last event's time
    for a partial window closed by ``flush``). ``events``: events integrated so far. ``exit``:
    the policy is satisfied and this is the final decision. ``latency_ms``: wall time from the
    arrival of the events that completed this step (the ``arrived`` of the :meth:`push` that
    brought them, by default the moment ``push`` was called) to this decision, in ms; it is left
    out of ``==`` so that decisions of two runs compare by what was decided.
    """

    step: int
    label: int
    class_name: str
    confidence: float
    margin: float
    time_us: int
    events: int
    exit: bool
    latency_ms: float | None = field(default=None, compare=False)

    @property
    def time_ms(self) -> float:
        return self.time_us / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time_ms": self.time_ms}


def training_framing(
    ckpt: dict[str, Any], events: Events | tuple[int, int]
) -> dict[str, int | float]:
    """Framing that cuts a whole recording as training did (``config["data"]``): ``frames = N``
    and ``split_by`` ``count`` -> ``{"frame_events": max(1, E // N)}``, ``time`` ->
    ``{"frame_ms": max(1, duration_us // N) / 1000}``. Replaying the recording then completes
    exactly ``N`` frames, of which the first ``N - 1`` equal the training frames; the last lacks
    the remainder (``E % N`` events, or the events past ``t0 + N * dt``) that training folds into
    it, which is left as a partial frame (see :func:`replay`).

    ``events`` may be the recording or its ``(number of events, duration_us)`` (e.g. from
    :func:`hsd.events.sources.count_events`, without holding the recording in memory)."""
    n_events, duration_us = (
        (len(events), events.duration_us) if isinstance(events, Events) else events
    )
    data = ckpt["config"]["data"]
    n_frames = int(data["frames"])
    if data["split_by"] == "time" and data.get("frame_us") is not None:
        return {"frame_ms": int(data["frame_us"]) / 1000.0}  # fixed-duration frames
    if data["split_by"] == "time":
        return {"frame_ms": max(1, int(duration_us) // n_frames) / 1000.0}
    return {"frame_events": max(1, int(n_events) // n_frames)}


def training_sensor_size(ckpt: dict[str, Any]) -> tuple[int, int] | None:
    """``(S, S)`` for a network of input size ``S`` trained on frames at sensor resolution
    (``config["data"]["size"]`` unset); ``None`` when frames were resized, as the sensor size is
    then not recorded (the stream's own ``sensor_size`` is used)."""
    if ckpt["config"]["data"].get("size") is not None:
        return None
    side = int(ckpt["model"]["kwargs"]["input_size"])
    return side, side


class StreamClassifier:
    """Classify one event stream step by step (see the module docstring).

    ``checkpoint``: a checkpoint file, run directory or loaded checkpoint dict. ``sensor_size``
    ``(width, height)``: the sensor the network was trained on; default: ``(S, S)`` for a network
    of input size ``S`` trained without resizing, else each pushed stream's own ``sensor_size``.
    Frames are ``float32 [1, P, H, W]`` on ``device``. ``compile``: ``"true"``, ``"false"`` or
    ``"auto"`` (eager, as for evaluation; module docstring).
    """

    def __init__(
        self,
        checkpoint: str | Path | dict[str, Any],
        *,
        frame_events: int | None = None,
        frame_ms: float | None = None,
        policy: ExitPolicy | None = None,
        sensor_size: tuple[int, int] | None = None,
        device: str | torch.device = "cpu",
        compile: str = "auto",
    ) -> None:
        if compile not in ("auto", "true", "false"):
            raise ConfigError(f"compile must be 'auto', 'true' or 'false', got {compile!r}")
        if (frame_events is None) == (frame_ms is None):
            raise ConfigError("give exactly one of frame_events (events per frame) or frame_ms")
        if frame_events is not None and (isinstance(frame_events, bool) or int(frame_events) < 1):
            raise ConfigError(f"frame_events must be a positive integer, got {frame_events!r}")
        if frame_ms is not None and not (
            math.isfinite(float(frame_ms)) and 1 <= round(float(frame_ms) * 1000) <= 2**53
        ):
            raise ConfigError(
                f"frame_ms must be in [0.001, 2^53 / 1000] ms (1 us up to the longest time an "
                f"event file can hold), got {frame_ms!r}"
            )
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        self.checkpoint = ckpt
        if not isinstance(ckpt.get("classes"), list | tuple) or "model" not in ckpt:
            where = ckpt.get("path", "<checkpoint>")
            raise CheckpointError(
                f"{where}: not a checkpoint hsd wrote (no class names or architecture); "
                "StreamClassifier needs one from `hsd distill` / `hsd baseline` / `hsd convert`"
            )
        if not ckpt["model"].get("spiking", False):
            raise CheckpointError(
                f"{ckpt.get('path', '<checkpoint>')}: is an ANN ({ckpt.get('stage', 'teacher')}), "
                "which sees each frame alone and has no state to carry from step to step; stream a "
                "spiking network (`hsd convert`, `hsd distill` or `hsd baseline` make one)"
            )
        self.classes = [str(c) for c in ckpt["classes"]]
        self.frame_events = None if frame_events is None else int(frame_events)
        self.frame_us = None if frame_ms is None else round(float(frame_ms) * 1000)
        self.policy = policy or ExitPolicy()
        self.device = torch.device(device)
        self.model = model_from_checkpoint(ckpt).to(self.device).eval()
        #: what ``_step`` calls: the model, or its compiled form (same parameters and state)
        self.network = (
            compile_network(self.model)
            if wants_compile(compile, self.device, train_steps=None)
            else self.model
        )
        data = ckpt["config"]["data"]
        self._size = (
            None if data.get("size") is None else (int(data["size"][0]), int(data["size"][1]))
        )
        self._resize = data.get("resize", "events")
        self._clip = data.get("clip")
        kwargs = ckpt["model"]["kwargs"]
        side = int(kwargs["input_size"])
        self.frame_shape = (int(kwargs["in_channels"]), side, side)
        if sensor_size is None:
            sensor_size = training_sensor_size(ckpt)
        self.sensor_size = (
            None if sensor_size is None else (int(sensor_size[0]), int(sensor_size[1]))
        )
        self._fixed_sensor = self.sensor_size is not None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: neuron state, pending events, decisions."""
        reset_states(self.model)
        self.decisions: list[Decision] = []
        self._pending: list[Events] = []
        self._pending_count = 0
        self._t0: int | None = None
        self._last_t: int | None = None
        self._window = 0
        self._consumed = 0
        self._logit_sum: torch.Tensor | None = None
        self._arrived = 0.0
        if not self._fixed_sensor:
            self.sensor_size = None

    @property
    def finished(self) -> bool:
        """True once the policy has exited; ``push`` then ignores events until ``reset()``."""
        return bool(self.decisions) and self.decisions[-1].exit

    @property
    def final(self) -> Decision | None:
        """The latest decision (the exit decision once finished), ``None`` before the first."""
        return self.decisions[-1] if self.decisions else None

    @property
    def steps(self) -> int:
        return len(self.decisions)

    def push(self, events: Events, *, arrived: float | None = None) -> list[Decision]:
        """Integrate ``events`` (time-ordered, not earlier than those pushed before); returns the
        decisions of the frames they complete, in order (empty when none completes).

        ``arrived``: the ``time.perf_counter()`` second the events arrived (default: now); each
        decision's ``latency_ms`` is measured from it."""
        if self.finished or len(events) == 0:
            return []
        self._arrived = perf_counter() if arrived is None else float(arrived)
        events = self._check(events)
        if self._t0 is None:
            self._t0 = int(events.t[0])
        self._last_t = int(events.t[-1])
        if self.frame_events is not None:
            return self._push_count(events)
        return self._push_time(events)

    def flush(self, *, arrived: float | None = None) -> list[Decision]:
        """End of stream: the pending partial frame, when it holds events, becomes one more step
        (its latency measured from ``arrived``, default now: the moment the end was known)."""
        if self.finished or self._pending_count == 0:
            return []
        self._arrived = perf_counter() if arrived is None else float(arrived)
        frame = self._take_pending()
        end = self._last_t - self._t0
        if self.frame_us is not None:
            self._window += 1
        return [self._step(frame, end)]

    # --- internals ----------------------------------------------------------------------------

    def _check(self, events: Events) -> Events:
        if self._last_t is not None and int(events.t[0]) < self._last_t:
            raise EventFileError(
                None,
                f"events go back in time: this chunk starts at {int(events.t[0])} us, before the "
                f"last event pushed ({self._last_t} us); push chunks in time order",
            )
        if self.sensor_size is None:
            self.sensor_size = events.sensor_size
        width, height = self.sensor_size
        if events.sensor_size != self.sensor_size:
            if int(events.x.max()) >= width or int(events.y.max()) >= height:
                raise EventFileError(
                    None,
                    f"events up to x={int(events.x.max())}, y={int(events.y.max())} do not fit the "
                    f"{width}x{height} sensor this classifier integrates on",
                )
            events = events.with_sensor_size(self.sensor_size)
        return events

    def _take_pending(self) -> Events:
        if not self._pending:
            return Events.empty(self.sensor_size)
        frame = Events.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_count = [], 0
        return frame

    def _push_count(self, events: Events) -> list[Decision]:
        out: list[Decision] = []
        start = 0
        while not self.finished:
            need = self.frame_events - self._pending_count
            if len(events) - start < need:
                break
            self._pending.append(events.select(slice(start, start + need)))
            start += need
            frame = self._take_pending()
            out.append(self._step(frame, int(frame.t[-1]) - self._t0))
        if not self.finished and start < len(events):
            rest = events.select(slice(start, None))
            self._pending.append(rest)
            self._pending_count += len(rest)
        return out

    def _push_time(self, events: Events) -> list[Decision]:
        out: list[Decision] = []
        windows = (events.t - self._t0) // self.frame_us
        start = 0
        last_window = int(windows[-1])
        while not self.finished and self._window < last_window:
            end = int(np.searchsorted(windows, self._window, side="right"))
            if end > start:
                self._pending.append(events.select(slice(start, end)))
                self._pending_count += end - start
                start = end
            frame = self._take_pending()
            self._window += 1
            out.append(self._step(frame, self._window * self.frame_us))
        if not self.finished and start < len(events):
            rest = events.select(slice(start, None))
            self._pending.append(rest)
            self._pending_count += len(rest)
        return out

    @torch.no_grad()
    def _step(self, frame_events: Events, time_us: int) -> Decision:
        counts = integrate_frames(
            frame_events, 1, "count", size=self._size, resize=self._resize, clip=self._clip
        )[0]
        if counts.shape != self.frame_shape:
            raise ConfigError(
                f"events of a {self.sensor_size[0]}x{self.sensor_size[1]} sensor give frames "
                f"{'x'.join(map(str, counts.shape))}, but the network expects "
                f"{'x'.join(map(str, self.frame_shape))}; pass the training sensor_size"
            )
        x = torch.from_numpy(counts).to(self.device, torch.float32)
        logits = self.network(x[None, None])[0, 0].float().cpu()
        self._logit_sum = logits if self._logit_sum is None else self._logit_sum + logits
        self._consumed += len(frame_events)
        step = len(self.decisions) + 1
        label, confidence, margin = _scores(self._logit_sum / step)
        decision = Decision(
            step=step,
            label=int(label),
            class_name=self.classes[int(label)],
            confidence=float(confidence),
            margin=float(margin),
            time_us=int(time_us),
            events=self._consumed,
            exit=bool(self.policy.satisfied(confidence, margin, step)),
            latency_ms=(perf_counter() - self._arrived) * 1000.0,
        )
        self.decisions.append(decision)
        return decision


def open_recording(
    checkpoint: str | Path | dict[str, Any],
    path: str | Path,
    *,
    frame_events: int | None = None,
    frame_ms: float | None = None,
    policy: ExitPolicy | None = None,
    sensor_size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    compile: str = "auto",
) -> tuple[StreamClassifier, Events]:
    """Read an event file of any supported format and build a classifier for replaying it.

    The file is read on ``sensor_size`` (default :func:`training_sensor_size`, else the file's
    own); without ``frame_events``/``frame_ms`` the framing is :func:`training_framing` of the
    whole recording. ``compile``: as for :class:`StreamClassifier`.
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if sensor_size is None:
        sensor_size = training_sensor_size(ckpt)
    events = read_events(path, sensor_size=sensor_size)
    if frame_events is None and frame_ms is None:
        framing = training_framing(ckpt, events)
    else:
        framing = {"frame_events": frame_events, "frame_ms": frame_ms}
    classifier = StreamClassifier(
        ckpt,
        **framing,
        policy=policy,
        sensor_size=events.sensor_size,
        device=device,
        compile=compile,
    )
    return classifier, events


def replay(
    classifier: StreamClassifier,
    events: Events,
    *,
    chunk_events: int = 1024,
    flush: bool = False,
) -> Iterator[Decision]:
    """Feed a whole recording to ``classifier`` in chunks of ``chunk_events`` events, yielding
    each decision as it is made; stops as soon as the classifier exits.

    The trailing partial frame (fewer than ``frame_events`` events, or a window cut short) is
    dropped unless ``flush``: it is not a frame like the others, and with
    :func:`training_framing` it holds only the few events that training folds into the last
    frame, so counting it as a step would distort the decision.
    """
    if chunk_events < 1:
        raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
    for start in range(0, len(events), chunk_events):
        yield from classifier.push(events.select(slice(start, start + chunk_events)))
        if classifier.finished:
            return
    if flush:
        yield from classifier.flush()


def stream_source(
    classifier: StreamClassifier, source: Iterable[Events], *, flush: bool = False
) -> Iterator[Decision]:
    """Feed the chunks of ``source`` (any iterable of :class:`Events`, e.g. an
    :class:`hsd.events.sources.EventSource`) to ``classifier`` as they come, yielding each
    decision as it is made; stops as soon as the classifier exits. Each chunk's arrival time is
    the source's ``last_arrival`` when it has one (else the moment it is pushed). When the
    source ends, the trailing partial frame becomes one more step only with ``flush`` (as in
    :func:`replay`)."""
    for chunk in source:
        yield from classifier.push(chunk, arrived=getattr(source, "last_arrival", None))
        if classifier.finished:
            return
    if flush:
        yield from classifier.flush()


def latency_summary(decisions: Sequence[Decision]) -> dict[str, float | int | None]:
    """``{"decisions": n, "median_ms", "p99_ms"}`` of the decisions' ``latency_ms`` (linear
    interpolation between ranks; ``None`` without measured latencies)."""
    values = np.array([d.latency_ms for d in decisions if d.latency_ms is not None], np.float64)
    if len(values) == 0:
        return {"decisions": 0, "median_ms": None, "p99_ms": None}
    return {
        "decisions": len(values),
        "median_ms": float(np.median(values)),
        "p99_ms": float(np.percentile(values, 99)),
    }


# --- offline evaluation of a policy ----------------------------------------------------------


@dataclass(frozen=True)
class EarlyExit:
    """Outcome of a policy per sample: ``steps`` int64 ``[S]`` (1-based step of the decision),
    ``predictions`` int64 ``[S]``, ``exited`` bool ``[S]`` (False: the policy never fired and
    the decision is the one after the last step)."""

    steps: torch.Tensor
    predictions: torch.Tensor
    exited: torch.Tensor


def apply_policy(step_logits: torch.Tensor, policy: ExitPolicy) -> EarlyExit:
    """Run ``policy`` over per-step logits ``[S, T, C]`` as :class:`StreamClassifier` would."""
    if step_logits.dim() != 3 or step_logits.shape[1] < 1:
        raise ValueError(
            f"step_logits must be [S, T, C] with T >= 1, got {tuple(step_logits.shape)}"
        )
    predictions, confidence, margin = running_scores(step_logits)
    n_steps = step_logits.shape[1]
    fired = policy.satisfied(confidence, margin, torch.arange(1, n_steps + 1))
    exited = fired.any(1)
    index = torch.where(
        exited, fired.int().argmax(1), torch.full_like(exited, n_steps - 1, dtype=torch.long)
    )
    return EarlyExit(
        steps=index + 1,
        predictions=predictions.gather(1, index[:, None])[:, 0],
        exited=exited,
    )


@dataclass(frozen=True)
class SweepPoint:
    """One threshold of :func:`exit_sweep`: accuracy in [0, 1], mean steps used, fraction of
    samples whose policy fired before the steps ran out, mean event time to decision in ms
    (``None`` when no end times were given or some are unknown)."""

    threshold: float
    accuracy: float
    mean_steps: float
    exited: float
    mean_latency_ms: float | None


def exit_sweep(
    step_logits: torch.Tensor,
    labels: torch.Tensor,
    thresholds: Sequence[float],
    *,
    criterion: Criterion = "confidence",
    min_steps: int = 1,
    end_times_us: np.ndarray | None = None,
) -> list[SweepPoint]:
    """Accuracy against steps used for each threshold of ``criterion``.

    ``step_logits [S, T, C]``, ``labels [S]``; ``end_times_us`` int ``[S, T]``: event time at which
    frame ``t`` of sample ``s`` is complete (e.g. ``FrameArrays.end_times_us`` rows in the same
    order, negative = unknown).
    """
    if criterion not in ("confidence", "margin"):
        raise ValueError(f"criterion must be 'confidence' or 'margin', got {criterion!r}")
    if end_times_us is not None:
        end_times_us = np.asarray(end_times_us)
        if end_times_us.shape[:2] != tuple(step_logits.shape[:2]):
            raise ValueError(
                f"end_times_us {end_times_us.shape} does not match step_logits "
                f"{tuple(step_logits.shape[:2])}"
            )
    points = []
    for threshold in thresholds:
        policy = ExitPolicy(
            confidence=threshold if criterion == "confidence" else None,
            margin=threshold if criterion == "margin" else None,
            min_steps=min_steps,
        )
        result = apply_policy(step_logits, policy)
        latency = None
        if end_times_us is not None:
            times = end_times_us[np.arange(len(result.steps)), result.steps.numpy() - 1]
            if not np.any(times < 0):
                latency = float(times.astype(np.float64).mean() / 1000.0)
        points.append(
            SweepPoint(
                threshold=float(threshold),
                accuracy=float((result.predictions == labels).float().mean()),
                mean_steps=float(result.steps.float().mean()),
                exited=float(result.exited.float().mean()),
                mean_latency_ms=latency,
            )
        )
    return points
