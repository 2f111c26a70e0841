"""The `assistd` command's entry: the long-running commands (`assistd serve`,
`assistd worker`) start themselves again on the C allocator (PYTHONMALLOC=malloc, which
the interpreter reads only as it starts) before anything else is imported, so that they
can give memory back after a load (see assistd.process_memory). An explicit PYTHONMALLOC
in the environment wins: PYTHONMALLOC=pymalloc keeps the interpreter's own allocator.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

LONG_RUNNING = frozenset({"serve", "worker"})
# The group's options that take a value: `assistd --data-dir d serve` is still `serve`.
_GROUP_VALUE_OPTIONS = frozenset({"--data-dir", "--config"})


def command_of(args: Sequence[str]) -> str | None:
    """The subcommand named on a command line (the arguments after the program)."""
    it = iter(args)
    for arg in it:
        if arg in _GROUP_VALUE_OPTIONS:
            next(it, None)
        elif not arg.startswith("-"):
            return arg
    return None


def restart_argv(
    executable: str, orig_argv: Sequence[str], args: Sequence[str], environ: Mapping[str, str]
) -> list[str] | None:
    """The command line to start again with, on the C allocator; None to go on as is.
    The interpreter is named by its full path: a bare `python` in argv[0] would be looked
    up on PATH again, and might not be this virtual environment's."""
    if "PYTHONMALLOC" in environ or command_of(args) not in LONG_RUNNING:
        return None
    return [executable, *orig_argv[1:]]


def use_c_allocator() -> None:
    """Starts this long-running command again on the C allocator (same process id, same
    arguments and interpreter options); returns at once for any other command."""
    argv = restart_argv(sys.executable, sys.orig_argv, sys.argv[1:], os.environ)
    if argv is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, {**os.environ, "PYTHONMALLOC": "malloc"})


def main() -> None:
    use_c_allocator()
    from assistd.cli import main as cli

    cli(prog_name="assistd")
