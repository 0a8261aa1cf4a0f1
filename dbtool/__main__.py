"""The `dbtool` process: `python -m dbtool` and the installed command both start here."""

import gc


def main() -> None:
    # Start-up only loads code: some 40,000 long-lived objects and next to no garbage. At Python's
    # default threshold (a collection per 700 new objects) loading them costs about 100 collections,
    # and the collections at exit scan every one of them again: together a third of a no-op migrate.
    # A command that runs long still collects, every 100,000 new objects. Set before the command
    # line is imported, so that Typer's loading is spared too.
    gc.set_threshold(100_000)
    try:
        from .cli import main as command_line

        command_line()
    finally:
        gc.freeze()  # at exit: whatever is left goes with the process, unscanned


if __name__ == "__main__":
    main()
