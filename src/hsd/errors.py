"""Exceptions raised for bad user input. The CLI turns them into one-line messages."""

from __future__ import annotations

from pathlib import Path


class HSDError(Exception):
    """Base class of every error hsd reports to the user without a traceback."""


class EventFileError(HSDError, ValueError):
    """An event file cannot be read, or holds events that are not valid.

    The message always names the file and the fault.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = "<in-memory events>" if path is None else str(path)
        super().__init__(f"{where}: {problem}")


class DatasetError(HSDError, ValueError):
    """A dataset root is missing, has the wrong layout, or holds no usable samples."""


class ConfigError(HSDError, ValueError):
    """A configuration value or command-line override is invalid."""


class CheckpointError(HSDError, ValueError):
    """A checkpoint is missing, truncated, corrupted or refused for safety."""


class ConversionError(HSDError, ValueError):
    """A network cannot be converted to a spiking one (max pooling, ReLU, no QCFS layer)."""


class ResourceError(HSDError, ValueError):
    """A request cannot fit in the memory available (raised by :func:`hsd.runtime.admit`)."""


class HSDWarning(UserWarning):
    """Something the user should know that does not stop the command (an old checkpoint without
    a digest, a damaged cache entry rebuilt). The CLI prints it as ``hsd: warning: <message>``."""


class RunDirError(HSDError, ValueError):
    """A run directory cannot be used as asked: it already holds a run (and neither ``--resume``
    nor ``--force`` was given), ``--resume`` finds nothing to resume, or the path is a file."""


class SourceError(HSDError, ValueError):
    """An event source (a file, ``dv://HOST:PORT`` or ``camera[:SERIAL]``) cannot be opened or
    read. The message names the source as the user gave it, then the fault."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


#: The name hsd is published under on the package index (``hsd`` there is another project);
#: the import name and the command stay ``hsd``.
DISTRIBUTION = "hsd-snn"


def install_hint(extra: str) -> str:
    """``pip install 'hsd-snn[<extra>]'``: how to install an optional part of hsd. The
    distribution is read from the installed metadata (so a fork installed under another name
    gets its own), :data:`DISTRIBUTION` when it cannot be found (a source tree on PYTHONPATH)."""
    dist = DISTRIBUTION
    try:
        from importlib.metadata import packages_distributions

        names = packages_distributions().get("hsd")
        if names:
            dist = names[0]
    except Exception:  # metadata is a nicety here: never fail an error message on it
        pass
    return f"pip install '{dist}[{extra}]'"
