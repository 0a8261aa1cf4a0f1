"""What `dbtool server status` prints.
"""

from __future__ import annotations

from pathlib import Path

from .console import emit_json, line


def server_status(data_dir: Path, conninfo: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({"data_dir": str(data_dir), "running": conninfo is not None, "conninfo": conninfo})
    elif conninfo:
        line(f"embedded server running: {conninfo} (data in {data_dir})")
    else:
        line(f"embedded server not running (data in {data_dir}); 'dbtool server start' starts it")
