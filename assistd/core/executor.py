"""The run loop: context -> model stream -> tool calls -> steps and messages -> events.

State is committed before its event is published. Token deltas are only published; the
finished message is written once. Function tool calls stop the run in requires_action;
built-in tools run here and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from assistd.core import runs as rs
from assistd.core.context import build_context
from assistd.core.events import EventBus, MessageDelta, StepDelta, run_event_name
from assistd.core.ids import new_id, now_ms
from assistd.core.objects import JsonDict, Message, Run, RunStep
from assistd.core.run_files import RunFiles, input_file_ids
from assistd.core.service import Service
from assistd.core.turn import CallKey, Turn, mark_repeats, round_outputs, step_usage
from assistd.logs import log_context
from assistd.models.base import ModelError, ModelRequest, TextDelta, ToolCallDelta, Usage
from assistd.models.registry import ModelRegistry, ResolvedModel
from assistd.queue.base import CancelSignals, RunJob
from assistd.settings import Settings
from assistd.store.base import Store
from assistd.tools.base import ToolContext
from assistd.tools.registry import OfferedTool, ToolRegistry, parse_arguments

log = logging.getLogger("assistd.executor")


class RunCancelled(Exception):
    pass


class Executor:
    def __init__(
        self,
        objects: Service,
        bus: EventBus,
        models: ModelRegistry,
        tools: ToolRegistry,
        cancels: CancelSignals,
        settings: Settings,
    ) -> None:
        self.objects = objects
        self.store: Store = objects.store
        self.bus = bus
        self.models = models
        self.tools = tools
        self.cancels = cancels
        self.settings = settings
        # Images and files that tools made during a run, for the run's next reply.
        self._attachments: dict[str, ToolOutputs] = {}

    # ---- persistence helpers: commit, then publish ------------------------------------

    async def _publish(self, run: Run, name: str, data: Any) -> None:
        await self.bus.publish(run.id, name, data)

    # ---- entry point --------------------------------------------------------------------

    async def execute(self, job: RunJob) -> None:
        with log_context(run_id=job.run_id, workspace=job.workspace_id):
            await self._execute(job)

    async def _execute(self, job: RunJob) -> None:
        started = time.monotonic()
        run = await self._start(job)
        if run is None:
            self.cancels.clear(job.run_id)  # e.g. deleted while queued, with a cancel asked
            return
        turn: Turn | None = None
        try:
            turn = Turn()
            await self._loop(job, run, turn)
        except RunCancelled:
            await self._end(job, run, turn, rs.RunStatus.CANCELLED, None)
        except ModelError as exc:
            if exc.detail:  # the upstream's own words, for the operator only
                log.error("model endpoint error %s on model %s: %s", exc.error_id, run.model,
                          exc.detail)  # fmt: skip
            await self._end(
                job, run, turn, rs.RunStatus.FAILED, {"code": exc.code, "message": exc.message}
            )
        except Exception:
            log.exception("run %s failed on an internal error", run.id)
            error = {
                "code": "server_error",
                "message": "The server hit an internal error running this run.",
            }
            await self._end(job, run, turn, rs.RunStatus.FAILED, error)
        finally:
            self.cancels.clear(run.id)
            self._attachments.pop(run.id, None)
            self._log_end(run, time.monotonic() - started)

    def _log_end(self, run: Run, seconds: float) -> None:
        """One line per run (per leg, when it stops for tool outputs)."""
        usage = run.usage or {}
        code = (run.last_error or {}).get("code") if run.status == rs.RunStatus.FAILED else None
        fields = {
            "status": str(run.status), "error_code": code, "model": run.model,
            "route": self.models.route_name(run.model), "duration_s": round(seconds, 3),
            **{k: int(usage.get(k, 0)) for k in ("total_tokens", "prompt_tokens",
                                                 "completion_tokens")},
        }  # fmt: skip
        log.info(
            "run %s: %s, model %s via route %s, %d tokens (%d prompt, %d completion), %.2f s",
            run.id, f"{run.status} ({code})" if code else run.status, run.model, fields["route"],
            fields["total_tokens"], fields["prompt_tokens"], fields["completion_tokens"], seconds,
            extra={"fields": fields},
        )  # fmt: skip

    async def _start(self, job: RunJob) -> Run | None:
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            run = await unit.runs.get(job.thread_id, job.run_id)
            if run is None or run.status != rs.RunStatus.QUEUED:
                return None  # cancelled, expired or deleted while queued
            rs.transition(run, rs.RunStatus.IN_PROGRESS, now_ms())
            await unit.runs.replace(run)
        await self._publish(run, run_event_name(run), replace(run))
        return run

    async def _loop(self, job: RunJob, run: Run, turn: Turn) -> None:
        resolved = self.models.resolve(run.model)
        await self.tools.load(str(tool.get("type")) for tool in run.tools)
        withheld: set[str] = set()
        rounds, previous = await self._tool_history(job, run)
        must_answer = retried_empty = False
        while True:
            # A built-in found unconfigured is not offered again, and once the tool rounds
            # are spent (or the model repeated its last round) it is offered no tools at
            # all, so it has to answer.
            spent = must_answer or rounds >= self.settings.max_tool_rounds
            definitions, offered = self.tools.offer([] if spent else run.tools, frozenset(withheld))
            turn.reset()
            turn.offered = offered
            answer = self._model_turn(job, run, resolved, definitions, turn, retried_empty)
            await self._cancellable(run, answer)
            if turn.message is None and not turn.calls and definitions:
                # Neither a reply nor a usable call (e.g. a tool call cut off by the token
                # cap): ask once more with no tools, so the run ends with an answer.
                must_answer = True
                continue
            if turn.message is None and not turn.calls:
                # A blank answer (no message was opened for it): ask once more, telling the
                # backend the reply may not end before it starts; a second one fails the run.
                _add_usage(run, turn.usage)
                if retried_empty:
                    raise ModelError("empty_reply", "The model returned no text, twice.")
                retried_empty = True
                continue
            await self._close_message(job, run, turn)
            if not turn.calls:
                await self._complete(job, run)
                return
            if spent:
                raise ModelError("max_tool_rounds", _still_calling(rounds, self.settings))
            rounds += 1
            withheld |= {
                c.name
                for c in turn.calls.values()
                if not self.tools.is_configured(turn.type_of(c.name))
            }
            calls = turn.finished_calls()
            must_answer = mark_repeats(calls, previous)  # not run again; answer instead
            if await self._tool_round(job, run, turn, offered, calls):
                return  # waiting for the client's tool outputs
            previous = round_outputs(calls)

    async def _tool_history(self, job: RunJob, run: Run) -> tuple[int, dict[CallKey, str | None]]:
        """Tool-call rounds the run already had (it may be resuming after tool outputs),
        and what the calls of the last one returned."""
        async with self.store.workspace(job.workspace_id) as unit:
            rounds = [s for s in await unit.steps.all_of(run.id) if s.type == "tool_calls"]
        last = (rounds[-1].step_details.get("tool_calls") or []) if rounds else []
        return len(rounds), round_outputs(last)

    async def _cancellable(self, run: Run, work: Any) -> None:
        """Runs one model turn, abandoning it as soon as a cancel is requested."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.cancels.wait(run.id))
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task in done:
            task.result()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise RunCancelled

    # ---- one model turn -----------------------------------------------------------------

    async def _model_turn(
        self,
        job: RunJob,
        run: Run,
        resolved: ResolvedModel,
        definitions: list[JsonDict],
        turn: Turn,
        nonempty: bool = False,
    ) -> None:
        reserve = run.sampling.max_tokens or min(1024, resolved.context_window // 4)
        async with self.store.workspace(job.workspace_id) as unit:
            context = await build_context(unit, run, resolved.context_window, reserve)
        request = ModelRequest(
            model=resolved.upstream_model,
            messages=context.messages,
            tools=definitions,
            temperature=run.sampling.temperature,
            top_p=run.sampling.top_p,
            top_k=run.sampling.top_k,
            max_tokens=run.sampling.max_tokens or resolved.max_output_tokens,
            nonempty=nonempty,
        )
        async for chunk in resolved.backend.stream(request):
            if isinstance(chunk, TextDelta):
                await self._on_text(job, run, turn, chunk.text)
            elif isinstance(chunk, ToolCallDelta):
                await self._on_tool_delta(job, run, turn, chunk)
            elif isinstance(chunk, Usage):
                turn.usage = chunk

    async def _on_text(self, job: RunJob, run: Run, turn: Turn, text: str) -> None:
        turn.text.append(text)
        if turn.message is None:
            # The message opens with the first visible character, so a blank answer leaves
            # no empty message behind; the blank text before it goes out with that character.
            if not text.strip():
                return
            await self._open_message(job, run, turn)
            text = "".join(turn.text)
        assert turn.message is not None
        await self._publish(run, "thread.message.delta", MessageDelta(turn.message.id, text))

    async def _open_message(self, job: RunJob, run: Run, turn: Turn) -> None:
        now = now_ms()
        message = Message(
            id=new_id("msg"), thread_id=run.thread_id, created_at=now, role="assistant", content=[],
            assistant_id=run.assistant_id, run_id=run.id, status="in_progress",
        )  # fmt: skip
        step = self._new_step(
            run,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message.id}},
        )
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            await unit.steps.insert(step)
            await unit.messages.insert_many([message])
        turn.message, turn.message_step = message, step
        for name, data in (
            ("thread.run.step.created", step), ("thread.run.step.in_progress", step),
            ("thread.message.created", message), ("thread.message.in_progress", message),
        ):  # fmt: skip
            await self._publish(run, name, replace(data))

    def _new_step(self, run: Run, kind: str, details: JsonDict) -> RunStep:
        return RunStep(
            id=new_id("step"), run_id=run.id, thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            created_at=now_ms(), type=kind, status="in_progress", step_details=details,
        )  # fmt: skip

    async def _on_tool_delta(self, job: RunJob, run: Run, turn: Turn, delta: ToolCallDelta) -> None:
        if turn.tool_step is None:
            step = self._new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
            async with self.store.workspace(job.workspace_id, write=True) as unit:
                await unit.steps.insert(step)
            turn.tool_step = step
            await self._publish(run, "thread.run.step.created", replace(step))
            await self._publish(run, "thread.run.step.in_progress", replace(step))
        fragment = turn.add_tool_delta(delta)
        await self._publish(run, "thread.run.step.delta", StepDelta(turn.tool_step.id, [fragment]))

    async def _close_message(
        self, job: RunJob, run: Run, turn: Turn, status: str = "completed"
    ) -> None:
        if (
            turn.message is None
            or turn.message_step is None
            or turn.message.status != "in_progress"
        ):
            return
        now = now_ms()
        message, step = turn.message, turn.message_step
        attached = self._attachments.pop(run.id, ToolOutputs())
        message.content = [
            *({"type": "image_file", "image_file": {"file_id": f}} for f in attached.images),
            {"type": "text", "text": {"value": "".join(turn.text), "annotations": []}},
        ]
        message.file_ids = [*message.file_ids, *attached.files]
        message.status = status
        message.completed_at = now if status == "completed" else None
        step.status = "completed" if status == "completed" else "cancelled"
        setattr(step, "completed_at" if status == "completed" else "cancelled_at", now)
        if not turn.calls:
            step.usage = step_usage(turn.usage)
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            await unit.messages.replace(message)
            await unit.steps.replace(step)
        event = "thread.message.completed" if status == "completed" else "thread.message.incomplete"
        await self._publish(run, event, replace(message))
        await self._publish(run, f"thread.run.step.{step.status}", replace(step))
        _add_usage(run, turn.usage if not turn.calls else None)

    # ---- tools ------------------------------------------------------------------------

    async def _tool_round(
        self,
        job: RunJob,
        run: Run,
        turn: Turn,
        offered: dict[str, OfferedTool],
        calls: list[JsonDict],
    ) -> bool:
        """Runs the built-in calls that have no output yet; returns True when the run now
        waits for function outputs."""
        assert turn.tool_step is not None
        step = turn.tool_step
        context = ToolContext(
            job.workspace_id, run.thread_id, run.id, files=RunFiles(self.objects, job.workspace_id),
            input_file_ids=await input_file_ids(self.objects, job.workspace_id, run),
        )  # fmt: skip
        for call in calls:
            await self._run_call(run, call, offered, context)
        step.step_details = {"type": "tool_calls", "tool_calls": calls}
        step.usage = step_usage(turn.usage)
        _add_usage(run, turn.usage)
        pending = [c for c in calls if c["type"] == "function" and c["function"]["output"] is None]
        if pending:
            await self._require_action(job, run, step, pending)
            return True
        step.status, step.completed_at = "completed", now_ms()
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            await unit.steps.replace(step)
        await self._publish(run, "thread.run.step.completed", replace(step))
        return False

    async def _run_call(
        self, run: Run, call: JsonDict, offered: dict[str, OfferedTool], context: ToolContext
    ) -> None:
        """Runs a built-in call, or checks a function call's arguments before the client
        sees them; either way a problem becomes an output the model can correct from."""
        kind = call["type"]
        if kind == "function":
            tool = offered.get(call["function"]["name"])
            if tool is not None and call["function"]["output"] is None:
                schema = tool.config.get("function", {}).get("parameters")
                _, problem = parse_arguments(call["function"]["arguments"], schema)
                call["function"]["output"] = problem
            return
        tool = offered.get(kind)
        if tool is None or call[kind]["output"] is not None:
            return  # not offered, or answered already (a repeated call)
        result = await self.tools.run(
            tool, call[kind]["input"], replace(context, config=tool.config)
        )
        call[kind]["output"] = result.output
        held = self._attachments.setdefault(run.id, ToolOutputs())
        held.images.extend(result.image_file_ids)
        held.files.extend(result.file_ids)

    async def _require_action(
        self, job: RunJob, run: Run, step: RunStep, pending: list[JsonDict]
    ) -> None:
        tool_calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {
                    "name": c["function"]["name"],
                    "arguments": c["function"]["arguments"],
                },
            }
            for c in pending
        ]
        rs.transition(run, rs.RunStatus.REQUIRES_ACTION, now_ms())
        run.required_action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": tool_calls},
        }
        run.expires_at = now_ms() + self.settings.run_expiry_s * 1000
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            current = await unit.runs.get(run.thread_id, run.id)
            if current is not None and current.status == rs.RunStatus.CANCELLING:
                raise RunCancelled
            await unit.steps.replace(step)
            await unit.runs.replace(run)
        await self._publish(run, run_event_name(run), replace(run))

    # ---- endings ------------------------------------------------------------------------

    async def _complete(self, job: RunJob, run: Run) -> None:
        await self._finish(job, run, rs.RunStatus.COMPLETED, None)

    async def _finish(
        self, job: RunJob, run: Run, status: rs.RunStatus, error: JsonDict | None
    ) -> None:
        async with self.store.workspace(job.workspace_id, write=True) as unit:
            current = await unit.runs.get(run.thread_id, run.id)
            if current is None:
                # Deleted with its thread: streams still reading it are told it ended.
                rs.transition(run, rs.RunStatus.CANCELLED, now_ms())
                await self._publish(run, run_event_name(run), replace(run))
                return
            if rs.is_terminal(current.status):
                return  # already ended (e.g. expired while the last turn ran)
            if current.status == rs.RunStatus.CANCELLING and status == rs.RunStatus.COMPLETED:
                status = rs.RunStatus.CANCELLED
            run.status = current.status
            rs.transition(run, status, now_ms(), last_error=error)
            await unit.runs.replace(run)
        await self._publish(run, run_event_name(run), replace(run))

    async def _end(
        self, job: RunJob, run: Run, turn: Turn | None, status: rs.RunStatus, error: JsonDict | None
    ) -> None:
        """Ends a run that stopped early: what was open is closed as incomplete/cancelled."""
        try:
            if turn is not None:
                await self._close_message(job, run, turn, status="incomplete")
                if turn.tool_step is not None and turn.tool_step.status == "in_progress":
                    turn.tool_step.status = (
                        "cancelled" if status == rs.RunStatus.CANCELLED else "failed"
                    )
                    turn.tool_step.last_error = error
                    async with self.store.workspace(job.workspace_id, write=True) as unit:
                        await unit.steps.replace(turn.tool_step)
                    await self._publish(
                        run, f"thread.run.step.{turn.tool_step.status}", replace(turn.tool_step)
                    )
            await self._finish(job, run, status, error)
        except Exception:
            log.exception("could not record the end of run %s", run.id)


@dataclass(slots=True)
class ToolOutputs:
    images: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _add_usage(run: Run, usage: Usage | None) -> None:
    if usage is None:
        return
    total = dict(run.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    total["prompt_tokens"] += usage.prompt_tokens
    total["completion_tokens"] += usage.completion_tokens
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    run.usage = total


def _still_calling(rounds: int, settings: Settings) -> str:
    """Why a run ends when the model calls tools on the turn that had to answer."""
    if rounds >= settings.max_tool_rounds:
        return (
            f"The model still called tools after {rounds} rounds of tool calls, the most "
            "a run allows (max_tool_rounds)."
        )
    return "The model called tools again when it was asked to answer without them."
