"""The ``moodump`` command line: a thin click layer over the library.

Each command lives in its own module of this package (``cli/<command>.py``) and follows
four beats: parse options, call one library function, render the result, map errors to
exit codes (that last beat is here, in :func:`main`, the only place that catches
:class:`~moodump.errors.MoodumpError`). Modules are discovered at import time, so adding
a command means adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
from types import FrameType

import click

from moodump.cli._group import cli
from moodump.errors import MoodumpError

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (Kubernetes stopping the pod, `kill`) takes the same clean path as Ctrl-C:
    # workers stop, partial files are removed, nothing is published.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the click group and map errors to exit codes."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        rv = cli.main(args=argv, prog_name="moodump", standalone_mode=False)
        if isinstance(rv, int) and rv:  # ctx.exit(n) returns n when not standalone
            sys.exit(rv)
    except MoodumpError as exc:
        click.echo(f"moodump: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("moodump: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("moodump: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


__all__ = ["cli", "main"]
