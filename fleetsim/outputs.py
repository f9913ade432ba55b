"""Where a run's files go (report, HTML page, JUnit verdicts): each path is checked before the
run, so that an unwritable one costs seconds, not the run; a path that still fails at the end
gets the file written to a fallback in the temporary directory, and says where.

Missing folders on the way to a path are created, as the writers create them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from fleetsim.errors import ConfigError

__all__ = ["Written", "check_output", "fallback_path", "write_or_fall_back"]


def _why(exc: OSError) -> str:
    why = exc.strerror or str(exc)
    return f"{why}: {exc.filename}" if exc.strerror and exc.filename else why


def check_output(path: Path | str, option: str) -> None:
    """Refuse, as `ConfigError` naming `option`, a path that cannot be written now: its folder
    cannot be made or written in, or it is a folder, or a file that cannot be opened to write.
    Missing folders are created."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option}: {path} is a directory; give a file name")
    for folder in path.parents:
        if folder.is_dir():
            break
        if folder.exists():
            raise ConfigError(f"{option}: cannot write {path}: {folder} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_file():  # /dev/stdout, a pipe: opening may block
            if not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied")
            return
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".check"):
            pass
        if path.exists():
            with path.open("ab"):
                pass
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write {path}: {_why(exc)}") from None


def fallback_path(path: Path | str) -> Path:
    """A fresh name for `path`'s file in the temporary directory (`TMPDIR`)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(tempfile.gettempdir()) / f"fleetsim-{stamp}-{os.getpid()}-{path.name}"


@attrs.frozen
class Written:
    """Where a file went: `path` is the one asked for, the fallback, or None if neither could
    be written; `error` says why it is not the one asked for."""

    path: Path | None
    error: str | None = None


def write_or_fall_back(path: Path | str, write: Callable[[Path], None]) -> Written:
    """`write(path)`; if that fails, `write` to a fallback path instead, and say so."""
    path = Path(path)
    try:
        write(path)
        return Written(path)
    except OSError as exc:
        failed = f"cannot write {path}: {_why(exc)}"
    fallback = fallback_path(path)
    try:
        write(fallback)
    except OSError as exc:
        return Written(None, f"{failed}, nor the fallback {fallback}: {_why(exc)}")
    return Written(fallback, f"{failed}; written to {fallback} instead")
