"""Where hsd keeps what it generates (frame caches, the emulated digits-dvs events)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache folder: ``override`` if given, else ``$HSD_CACHE_DIR``, else ``~/.cache/hsd``.

    The folder is not created here; writers create what they need below it.
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("HSD_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "hsd"
