"""The two streams (stdout, stderr), one-line errors and JSON output.
"""

from __future__ import annotations

import json as jsonlib
import os
import tempfile
from pathlib import Path

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)


err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    err.print(f"error: {message}", markup=False)


def line(text: str) -> None:
    out.print(text, markup=False)


def emit_json(data: object) -> None:
    # print() rather than rich: nothing but the JSON document may reach stdout.
    print(jsonlib.dumps(data, indent=2, default=str))


def write_atomically(path: Path, text: str) -> None:
    """Write a report to a temporary file beside it, then rename: a failure leaves no partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
