"""`code_interpreter`: Python in a sandboxed, per-thread Jupyter kernel.

Files attached to the assistant or the thread's messages are placed in the working
directory before the code runs; files the code writes and figures it shows become
assistd Files. When no sandbox can start, the code is not run (never unsandboxed) and
the model is told why.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import ClassVar

from assistd.sandbox.bwrap import Limits
from assistd.sandbox.kernel import Execution, SandboxError
from assistd.sandbox.pool import KernelPool, _Slot
from assistd.settings import Settings
from assistd.tools.base import SANDBOX_FILES_URL, JsonDict, ToolContext, ToolResult

FILE_OP_TIMEOUT_S = 20.0
MAX_OUTPUT_FILES = 20


class CodeInterpreter:
    name = "code_interpreter"
    description = (
        "Runs Python code in a stateful sandbox (variables persist between calls). Files the "
        "user attached are in the working directory; files you write there and plots you show "
        "are given to the user. There is no network access."
    )
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
    }

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        limits = Limits(
            memory_bytes=settings.code_memory_bytes,
            processes=settings.code_processes,
            cpu_seconds_total=settings.code_cpu_s,
            disk_bytes=settings.code_disk_bytes,
        )
        self.pool = KernelPool(
            limits, settings.code_idle_s, settings.code_max_kernels, bwrap=settings.code_bwrap
        )

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        reason = await asyncio.to_thread(self.pool.unavailable_reason)
        if reason:
            return ToolResult(
                output=f"The code was not run: the code interpreter is unavailable here ({reason})."
            )
        try:
            slot = await self.pool.slot(context.workspace_id, context.thread_id)
        except SandboxError as exc:
            return ToolResult(output=f"The code was not run: the sandbox could not start ({exc}).")
        async with slot.lock:
            self.pool.touch(slot)
            try:
                return await self._run_in(slot, str(args.get("code", "")), context)
            finally:
                self.pool.touch(slot)

    async def _run_in(self, slot: _Slot, code: str, context: ToolContext) -> ToolResult:
        notes: list[str] = []
        if slot.restarted:
            notes.append(
                "Note: the previous kernel of this thread stopped; "
                "variables from earlier calls are gone."
            )
            slot.restarted = False
        notes += await self._place_inputs(slot, context)
        kernel = slot.kernel
        before = await kernel.list_files(FILE_OP_TIMEOUT_S)
        execution = await kernel.execute(code, self.settings.code_wall_s)
        written: list[tuple[str, str]] = []
        if kernel.alive:
            after = await kernel.list_files(FILE_OP_TIMEOUT_S)
            written = await self._collect_files(slot, before, after, context)
        images = (
            [
                await context.files.save(f"figure-{i + 1}.png", png)
                for i, png in enumerate(execution.images)
            ]
            if context.files
            else []
        )
        output = self._describe(execution, written, len(images), notes)
        if not kernel.alive:
            slot.restarted = True
        return ToolResult(
            output=output, image_file_ids=tuple(images), file_ids=tuple(f for _, f in written)
        )

    async def _place_inputs(self, slot: _Slot, context: ToolContext) -> list[str]:
        if context.files is None:
            return []
        notes = []
        for file_id in context.input_file_ids:
            if file_id in slot.uploaded:
                continue
            found = await context.files.read(file_id)
            if found is None:
                continue
            name = PurePosixPath(found[0]).name or file_id
            try:
                await slot.kernel.put_file(name, found[1], FILE_OP_TIMEOUT_S)
            except SandboxError as exc:
                notes.append(f"Note: {exc}")
                continue
            slot.uploaded.add(file_id)
        return notes

    async def _collect_files(
        self,
        slot: _Slot,
        before: dict[str, list[int]],
        after: dict[str, list[int]],
        context: ToolContext,
    ) -> list[tuple[str, str]]:
        if context.files is None:
            return []
        changed = [name for name, stat in after.items() if before.get(name) != stat][
            :MAX_OUTPUT_FILES
        ]
        saved: list[tuple[str, str]] = []
        for name in changed:
            if after[name][0] > self.settings.max_file_bytes:
                continue
            content = await slot.kernel.read_file(name, after[name][0], FILE_OP_TIMEOUT_S)
            if content is not None:
                saved.append((name, await context.files.save(PurePosixPath(name).name, content)))
        return saved

    def _describe(
        self, execution: Execution, written: list[tuple[str, str]], images: int, notes: list[str]
    ) -> str:
        """What the model reads. Only the code's own output is cut to code_output_chars;
        what happened to the call (time limit, kernel death, files) always gets through."""
        output = list(notes)
        if execution.stdout:
            output.append(f"stdout:\n{execution.stdout}")
        if execution.stderr:
            output.append(f"stderr:\n{execution.stderr}")
        if execution.result is not None:
            output.append(f"result:\n{execution.result}")
        if execution.error:
            output.append(f"error:\n{execution.error}")
        text = "\n\n".join(output)
        limit = self.settings.code_output_chars
        if len(text) > limit:
            text = text[:limit] + f"\n[... output cut at {limit} characters]"
        parts = [text] if text else []
        if execution.timed_out:
            parts.append(
                f"The code was stopped after {self.settings.code_wall_s:g} s "
                "(the time limit per call)."
            )
        if execution.crashed:
            parts.append(
                "The kernel died (a memory, process or CPU limit was hit, or the code ended it); "
                "it will be restarted on the next call, and its variables and files are lost."
            )
        if written:
            saved = ", ".join(f"{SANDBOX_FILES_URL}{n} ({f})" for n, f in written)
            parts.append(f"Files saved for the user (link them by these paths): {saved}")
        if images:
            parts.append(f"{images} image(s) shown to the user.")
        return "\n\n".join(parts) or "The code ran and printed nothing."

    async def close(self) -> None:
        await self.pool.close()


def factory(settings: Settings) -> CodeInterpreter:
    return CodeInterpreter(settings)
