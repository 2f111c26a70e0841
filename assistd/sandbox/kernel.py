"""One Jupyter kernel (ipykernel) running inside the bubblewrap sandbox.

The kernel talks ZeroMQ over unix sockets in a small control directory shared with the
sandbox: it has no network namespace to reach, and needs none. Files go in and out
through the kernel itself (small silent snippets), so the host never has to look into
the sandbox's private working directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient

from assistd.sandbox.bwrap import WORKDIR, Limits, sandbox_command

START_TIMEOUT_S = 30.0
# What one call may send back at most; the rest is dropped as it arrives, so code that
# prints or shows without end cannot fill the server's memory.
MAX_STREAM_CHARS = 1_000_000
MAX_IMAGES = 20
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class SandboxError(Exception):
    """The sandbox cannot start or died; the message says why, for the model and the log."""


@dataclass(slots=True)
class Execution:
    stdout: str = ""
    stderr: str = ""
    result: str | None = None  # the last expression's value, as text
    error: str | None = None  # the traceback, as text
    images: list[bytes] = field(default_factory=list)  # PNGs the code displayed
    timed_out: bool = False
    crashed: bool = False  # the kernel died (a limit, or the code killed it)
    limit: int = MAX_STREAM_CHARS  # of stdout and of stderr kept; the rest is dropped


def _list_files_code() -> str:
    return (
        "import os as _o, json as _j\n"
        "def _assistd_list(root):\n"
        "    out = {}\n"
        "    for d, _, fs in _o.walk(root):\n"
        "        for f in fs:\n"
        "            p = _o.path.join(d, f)\n"
        "            try:\n"
        "                st = _o.stat(p)\n"
        "                out[_o.path.relpath(p, root)] = [st.st_size, st.st_mtime_ns]\n"
        "            except OSError:\n"
        "                pass\n"
        "    return out\n"
        f"print(_j.dumps(_assistd_list({WORKDIR!r})))\n"
        "del _assistd_list, _o, _j\n"
    )


def _read_file_code(name: str, size: int) -> str:
    return (
        "import base64 as _b, os as _o\n"
        f"with open(_o.path.join({WORKDIR!r}, {name!r}), 'rb') as _f:\n"
        f"    print(_b.b64encode(_f.read({size})).decode())\n"
        "del _b, _o, _f\n"
    )


def _write_file_code(name: str, content: bytes) -> str:
    encoded = base64.b64encode(content).decode()
    return (
        "import base64 as _b, os as _o\n"
        f"_p = _o.path.join({WORKDIR!r}, {name!r})\n"
        "_o.makedirs(_o.path.dirname(_p), exist_ok=True)\n"
        "with open(_p, 'wb') as _f:\n"
        f"    _f.write(_b.b64decode({encoded!r}))\n"
        "del _b, _o, _f, _p\n"
    )


# Ends every other process of the sandbox (what the code forked and left running) and
# reaps the kernel's own children: they would keep holding the process cap (zombies too).
# kill(-1) reaches only the sandbox's PID namespace, spares the caller and that
# namespace's init, and no fork can slip past it.
_END_STRAYS_CODE = """\
import os as _o, signal as _s
try:
    _o.kill(-1, _s.SIGKILL)
except ProcessLookupError:
    pass
while True:
    try:
        _o.waitpid(-1, 0)
    except ChildProcessError:
        break
del _o, _s
"""
_END_STRAYS_TIMEOUT_S = 10.0

# Waiting for a new kernel: how long one poll lasts (a message ends it at once), when to
# ask again, and how long a kernel_info's status may take to show on iopub.
_READY_POLL_S = 0.05
_READY_RESEND_S = 1.0
_READY_IOPUB_S = 0.25


class SandboxedKernel:
    def __init__(self, bwrap: str, limits: Limits, uid: int | None) -> None:
        self.bwrap = bwrap
        self.limits = limits
        self.uid = uid
        self.process: asyncio.subprocess.Process | None = None
        self.client: AsyncKernelClient | None = None
        self.control_dir: Path | None = None
        self.stderr_log: Path | None = None
        self.known_files: dict[str, list[int]] = {}

    # ---- life -------------------------------------------------------------------------

    async def start(self) -> None:
        self.control_dir = Path(tempfile.mkdtemp(prefix="assistd-kernel-"))
        if self.uid is not None:
            os.chown(self.control_dir, self.uid, self.uid)
        connection = self._connection_info(self.control_dir)
        connection_file = self.control_dir / "kernel.json"
        connection_file.write_text(json.dumps(connection))
        connection_file.chmod(0o644)
        command = sandbox_command(
            self.bwrap,
            [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file), "--quiet"],
            self.control_dir,
            self.limits,
            self.uid,
        )
        self.stderr_log = self.control_dir / "stderr.log"
        with self.stderr_log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        client = AsyncKernelClient()
        client.load_connection_info(connection)  # type: ignore[arg-type]
        client.start_channels()
        self.client = client
        try:
            await self._wait_ready()
        except Exception:
            await self.shutdown()
            raise
        self._lock_control_dir()

    def _lock_control_dir(self) -> None:
        """Once the kernel has made its sockets, the sandbox may not add files to the
        control directory: it lies on the host's disk, outside every quota. (Only when
        the sandbox has a uid of its own; otherwise it could undo this.)"""
        if self.uid is not None and self.control_dir is not None:
            os.chown(self.control_dir, 0, 0)
            self.control_dir.chmod(0o755)

    @staticmethod
    def _connection_info(control_dir: Path) -> dict[str, Any]:
        return {
            "transport": "ipc",
            "ip": str(control_dir / "k"),
            "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
            "key": secrets.token_hex(16),
            "signature_scheme": "hmac-sha256",
            "kernel_name": "",
        }  # fmt: skip

    async def _wait_ready(self) -> None:
        """Ready once the kernel has answered kernel_info on shell and a message of that
        request has come back on iopub (so the first call's output cannot be missed).

        Not jupyter_client's wait_for_ready: it goes by its heartbeat's whole seconds (a
        kernel up at 1.1 s is seen at about 2.2 s) and always ends with 0.2 s of waiting for
        iopub to fall silent. The request sent first waits in the socket until the kernel
        binds, so the reply comes as soon as the kernel runs; it is sent again now and then
        in case the kernel dropped it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        asked: set[str] = set()
        while loop.time() < deadline:
            if not self.alive:
                raise SandboxError(f"The sandboxed kernel exited at start: {self._stderr_tail()}")
            assert self.client is not None
            asked.add(self.client.kernel_info())
            resend_at = min(loop.time() + _READY_RESEND_S, deadline)
            if await self._answered(asked, "shell", resend_at) and await self._answered(
                asked, "iopub", loop.time() + _READY_IOPUB_S
            ):
                return
        raise SandboxError("The sandboxed kernel did not start in time.")

    async def _answered(self, asked: set[str], channel: str, until: float) -> bool:
        """Whether a message answering one of the `asked` requests arrives on `channel`
        by `until` (the loop's clock); looks at the process between short polls."""
        assert self.client is not None
        get = self.client.get_shell_msg if channel == "shell" else self.client.get_iopub_msg
        loop = asyncio.get_running_loop()
        while self.alive and (left := until - loop.time()) > 0:
            try:
                message = await get(timeout=min(left, _READY_POLL_S))
            except queue.Empty:
                continue
            if message.get("parent_header", {}).get("msg_id") in asked:
                return True
        return False

    def _stderr_tail(self) -> str:
        if self.stderr_log is None or not self.stderr_log.exists():
            return ""
        return self.stderr_log.read_text(errors="replace")[-800:].strip()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def shutdown(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        if self.control_dir is not None:
            shutil.rmtree(self.control_dir, ignore_errors=True)
            self.control_dir = None

    # ---- running code -------------------------------------------------------------------

    async def execute(
        self, code: str, timeout_s: float, silent: bool = False, limit: int = MAX_STREAM_CHARS
    ) -> Execution:
        if self.client is None or not self.alive:
            raise SandboxError("The kernel is not running.")
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False
        )
        result = Execution(limit=limit)
        try:
            await asyncio.wait_for(self._collect(msg_id, result), timeout_s)
        except TimeoutError:
            result.timed_out = True
            await self._interrupt(msg_id, result)
        if not silent and self.alive:
            await self.execute(_END_STRAYS_CODE, _END_STRAYS_TIMEOUT_S, silent=True)
        if not self.alive:
            result.crashed = True
        return result

    async def _collect(self, msg_id: str, result: Execution) -> None:
        assert self.client is not None
        while True:
            try:
                message = await self.client.get_iopub_msg(timeout=1.0)
            except Exception:  # queue.Empty: nothing yet; is the kernel still there?
                if not self.alive:
                    return
                continue
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if _absorb(message, result):
                return

    async def _interrupt(self, msg_id: str, result: Execution) -> None:
        """Stops a runaway call: an interrupt request to the kernel (its state survives,
        and the traceback says where the code was), then, if the kernel does not come
        back, the whole sandbox goes."""
        if self.client is None or not self.alive:
            return
        self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._collect(msg_id, result), 3.0)
            return
        await self.shutdown()

    # ---- files --------------------------------------------------------------------------

    async def put_file(self, name: str, content: bytes, timeout_s: float) -> None:
        done = await self.execute(_write_file_code(name, content), timeout_s, silent=True)
        if done.error or done.timed_out or done.crashed:
            raise SandboxError(f"Could not place '{name}' in the working directory.")

    async def list_files(self, timeout_s: float) -> dict[str, list[int]]:
        done = await self.execute(_list_files_code(), timeout_s, silent=True)
        if done.error or not done.stdout.strip():
            return {}
        listing: dict[str, list[int]] = json.loads(done.stdout.strip().splitlines()[-1])
        return listing

    async def read_file(self, name: str, size: int, timeout_s: float) -> bytes | None:
        """The file's content (`size` bytes as last listed), or None."""
        limit = (size + 2) // 3 * 4 + 16  # its base64 text and a newline
        done = await self.execute(_read_file_code(name, size), timeout_s, silent=True, limit=limit)
        if done.error or done.timed_out:
            return None
        return base64.b64decode(done.stdout.strip() or "")


def _absorb(message: dict[str, Any], result: Execution) -> bool:
    """Folds one iopub message into `result`; True once the call is over."""
    kind = message["msg_type"]
    content = message["content"]
    if kind == "stream":
        text = str(content.get("text", ""))
        if content.get("name") == "stderr":
            result.stderr += text[: result.limit - len(result.stderr)]
        else:
            result.stdout += text[: result.limit - len(result.stdout)]
    elif kind in ("execute_result", "display_data"):
        data = content.get("data", {})
        if "image/png" in data:
            if len(result.images) < MAX_IMAGES:
                result.images.append(base64.b64decode(data["image/png"]))
        elif kind == "execute_result" and "text/plain" in data:
            result.result = data["text/plain"]
    elif kind == "error":
        traceback = "\n".join(content.get("traceback", []))
        result.error = (
            _ANSI.sub("", traceback) or f"{content.get('ename')}: {content.get('evalue')}"
        )
    elif kind == "status" and content.get("execution_state") == "idle":
        return True
    return False
