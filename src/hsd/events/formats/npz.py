"""SpikingJelly frame files (``.npz``): frames, not events."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.formats.registry import FileFormat, detect_format, register

_ZIP_MAGIC = b"PK\x03\x04"


def _sniff(path: Path, head: bytes) -> str:
    if not head.startswith(_ZIP_MAGIC):
        raise EventFileError(path, "not an .npz archive (no zip header)")
    return "frames-npz"


def read_frames_npz(path: str | Path) -> np.ndarray:
    """Frames ``[N, P, H, W]`` stored under key ``frames`` in a SpikingJelly ``.npz`` (dtype as
    stored). Raises for a missing key, ``ndim != 4`` or NaN/inf values."""
    path = Path(path)
    if detect_format(path) != "frames-npz":
        raise EventFileError(path, "not an .npz frame file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            frames = archive["frames"] if "frames" in keys else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EventFileError(path, f"corrupt .npz archive ({exc})") from None
    if frames is None:
        raise EventFileError(path, f"no 'frames' array (keys: {', '.join(keys) or 'none'})")
    if frames.ndim != 4:
        raise EventFileError(
            path, f"'frames' has shape {tuple(frames.shape)}; expected 4-D [N, P, H, W]"
        )
    if frames.dtype.kind not in "iufb":
        raise EventFileError(path, f"'frames' has non-numeric dtype {frames.dtype}")
    if frames.dtype.kind == "f" and not np.all(np.isfinite(frames)):
        bad = int(np.count_nonzero(~np.isfinite(frames)))
        raise EventFileError(path, f"'frames' holds {bad} NaN or infinite values")
    return frames


register(FileFormat("frames-npz", "SpikingJelly frames (.npz)", (".npz",), None), sniff=_sniff)
