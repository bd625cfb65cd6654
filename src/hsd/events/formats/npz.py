"""SpikingJelly frame files (``.npz``): frames, not events."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from hsd.errors import EventFileError
from hsd.events.formats.registry import FileFormat, detect_format, register
from hsd.runtime import admit

_ZIP_MAGIC = b"PK\x03\x04"


def _sniff(path: Path, head: bytes) -> str:
    if not head.startswith(_ZIP_MAGIC):
        raise EventFileError(path, "not an .npz archive (no zip header)")
    return "frames-npz"


def _check_entry(path: Path, archive: zipfile.ZipFile, member: str) -> None:
    """Refuse, before numpy allocates it, a ``frames`` entry that is not a ``.npy`` array or
    whose header declares another size than the entry holds (a forged shape asking for
    gigabytes), and admit the array against the memory available."""
    info = archive.getinfo(member)
    with archive.open(info) as fh:
        if fh.read(6) != b"\x93NUMPY":
            raise EventFileError(path, f"'frames' ({member}) is not a .npy array")
        fh.seek(0)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        start = fh.tell()
    nbytes = dtype.itemsize * math.prod(int(s) for s in shape)
    if nbytes != info.file_size - start:
        raise EventFileError(
            path,
            f"'frames' declares shape {tuple(shape)} {dtype} ({nbytes} bytes) but the archive "
            f"holds {info.file_size - start} bytes of it (corrupt or forged header)",
        )
    admit(nbytes, f"{path}: 'frames' {tuple(shape)} {dtype}")


def read_frames_npz(path: str | Path) -> np.ndarray:
    """Frames ``[N, P, H, W]`` stored under key ``frames`` in a SpikingJelly ``.npz`` (dtype as
    stored). Raises for a missing key, ``ndim != 4`` or NaN/inf values."""
    path = Path(path)
    if detect_format(path) != "frames-npz":
        raise EventFileError(path, "not an .npz frame file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            frames = None
            if "frames" in keys:
                _check_entry(
                    path,
                    archive.zip,
                    "frames" if "frames" in archive.zip.namelist() else "frames.npy",
                )
                frames = archive["frames"]
    except EventFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
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
