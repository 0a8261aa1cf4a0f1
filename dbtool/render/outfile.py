"""Report files (--output): checked before a command runs anything, then written whole or not at all.

Both ask the one question of where a file goes: a device or a FIFO (/dev/stdout, a pipe) is
written into, since renaming over it would replace the node itself with a regular file; anything
else is written to a temporary file beside its target (a symlink's target: the link stays) and
renamed over it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import BadInput


def _written_into(path: Path) -> bool:
    """A device or a FIFO: written into directly, with no file made beside it."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        return False  # a new file, or a link to one not there yet
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(path: Path | None, option: str = "--output", example: str = "report.md") -> None:
    """Fail before anything runs when the file could not be written: a missing folder, a folder
    in its place, or a folder this user may not write (tried with a temporary file)."""
    if path is None or _written_into(path):
        return
    folder = path.resolve().parent  # where write_atomically puts its temporary file
    if not folder.is_dir():
        raise BadInput(f"{option} {path}: folder {folder} does not exist; create it or choose another path")
    if path.is_dir():
        raise BadInput(f"{option} {path}: is a folder; give a file name such as {example}")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}."):
            pass
    except OSError as exc:
        raise BadInput(f"{option} {path}: cannot write in {folder} ({exc.strerror or exc});"
                       " choose another path") from None


def write_atomically(path: Path, text: str) -> None:
    """Write a report whole or not at all; a failed write is the OSError it is, naming `path`, for
    the CLI's boundary."""
    try:
        if _written_into(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            _replace(path.resolve(), text)
    except OSError as exc:
        exc.filename = exc.filename or str(path)  # an error of write() or close() names no file
        raise


def _replace(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a report is an ordinary file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
